package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the operation failed
	exitUsage = 2 // the command line was wrong
	// exitInterrupted: a run cut short by SIGINT or SIGTERM (bank experiment).
	exitInterrupted = 130
)

// usageError is a command-line mistake: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// newFlagSet returns a FlagSet that reports errors instead of printing or
// exiting: callers print the message and the usage themselves.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseInterleaved parses flags placed before, between or after the
// positional arguments ("bank saque 1 1000 --server URL" as well as
// "bank saque --server URL 1 1000"). A negative number ("-5") is a
// positional argument, not a flag, and everything after "--" is positional.
// It returns flag.ErrHelp for -h, -help and --help, and a *usageError for
// any other mistake.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for i := 0; i < len(args); {
		a := args[i]
		if a == "--" {
			return append(positional, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' || isInteger(a) {
			positional = append(positional, a)
			i++
			continue
		}
		// One flag: "-x", "--x", "-x=v", "--x=v", or "-x v" when x takes a value.
		n := 1
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if !strings.Contains(name, "=") {
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
				n = 2
			}
		}
		if err := fs.Parse(args[i : i+n]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error()}
		}
		if fs.NArg() != 0 { // cannot happen: a lone flag leaves nothing
			return nil, usagef("cannot parse %q", args[i:i+n])
		}
		i += n
	}
	return positional, nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// isInteger reports whether s is a decimal integer, optionally signed.
func isInteger(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// parseInts parses the positional arguments named by names, in order.
func parseInts(cmd string, names []string, args []string) ([]int64, error) {
	if len(args) != len(names) {
		return nil, usagef("%s needs %d argument(s), %s; got %d", cmd, len(names), strings.Join(names, " "), len(args))
	}
	out := make([]int64, len(args))
	for i, a := range args {
		v, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return nil, usagef("%s: %s must be an integer, got %q", cmd, names[i], a)
		}
		out[i] = v
	}
	return out, nil
}

// envOr returns getenv(key), or def when it is unset or empty.
func envOr(getenv func(string) string, key, def string) string {
	if v := strings.TrimSpace(getenv(key)); v != "" {
		return v
	}
	return def
}
