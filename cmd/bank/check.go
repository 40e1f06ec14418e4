package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bank/gobank/benchmarks/check"
)

const checkUsage = `bank check: check a history recorded by "bank bench --history FILE".

usage:
  bank check [flags] FILE

Every record is validated first (times, amounts, results, account numbers, the
header's consistency...): a malformed history is refused with "line N: what is
wrong" and no checker runs. A history covers the accounts its header names
("covers", or 1..accounts in a version 1 history); the checkers judge those.

Checkers:
  bank             every snapshot (bank bench --snapshot-every) sums to the initial total
                   plus the deposits minus the withdrawals acknowledged before it, within
                   the amounts of those concurrent with it or of unknown outcome; no
                   balance is negative, in a snapshot or in an answer
  linearizability  porcupine finds an order of all operations, consistent with real time,
                   that explains every answer (operations of unknown outcome may or may
                   not have taken effect); partitioned by account group (bank bench
                   --groups). On failure porcupine's visualization is written to FILE.html

Prints, per checker, PASS, FAIL or UNKNOWN (could not decide: no snapshot, or the
search timed out), the entries checked and the time taken, and the violations.

Exit status: 0 every checker passed; 1 one did not, or FILE is unreadable or
malformed; 2 the command line is wrong.

Flags:
`

// runCheck is "bank check".
func runCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	checkers := fs.String("checkers", "bank,linearizability", "checkers to run, comma-separated: bank, linearizability")
	timeout := fs.Duration("timeout", check.DefaultLinearTimeout, "bound of the linearizability search (then UNKNOWN)")
	html := fs.String("html", "", "where to write the visualization of a non-linearizable history (default FILE.html)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var b strings.Builder
			b.WriteString(checkUsage)
			fs.SetOutput(&b)
			fs.PrintDefaults()
			fmt.Fprint(stdout, b.String())
			return exitOK
		}
		fmt.Fprintf(stderr, "bank check: %v (see bank check --help)\n", err)
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "bank check: want exactly one history FILE (see bank check --help)")
		return exitUsage
	}
	path := fs.Arg(0)
	if *html == "" {
		*html = path + ".html"
	}
	run := map[string]bool{}
	for c := range strings.SplitSeq(*checkers, ",") {
		switch c = strings.TrimSpace(c); c {
		case "bank", "linearizability":
			run[c] = true
		default:
			fmt.Fprintf(stderr, "bank check: --checkers: unknown checker %q\n", c)
			return exitUsage
		}
	}
	t0 := time.Now()
	h, err := check.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "bank check: %v\n", err)
		return exitFail
	}
	first, last := h.Header.Span()
	fmt.Fprintf(stdout, "history %s: %d operations, %d snapshots, %d accounts (%d..%d) in %d group(s); read in %v\n",
		path, len(h.Ops), len(h.Snapshots), h.Header.Accounts, first, last, max(h.Header.Groups, 1), time.Since(t0).Round(time.Millisecond))
	if h.Trimmed > 0 {
		fmt.Fprintf(stdout, "  note: %d snapshot(s) of this version %d history list more accounts than the %d it covers: only accounts %d..%d are judged\n",
			h.Trimmed, h.Header.Version, h.Header.Accounts, first, last)
	}
	var results []check.Result
	if run["bank"] {
		results = append(results, check.Bank(h))
	}
	if run["linearizability"] {
		results = append(results, check.Linearizable(h, check.LinearOptions{Timeout: *timeout, Visualization: *html}))
	}
	status := exitOK
	for _, r := range results {
		fmt.Fprintf(stdout, "%-16s %-7s %d entries checked in %v\n", r.Name, r.Verdict(), r.Checked, r.Duration.Round(time.Microsecond))
		if r.Note != "" {
			fmt.Fprintf(stdout, "  note: %s\n", r.Note)
		}
		for _, v := range r.Violations {
			fmt.Fprintf(stdout, "  violation: %s\n", v.Message)
			for _, e := range v.Entries {
				fmt.Fprintf(stdout, "    %s\n", e)
			}
		}
		if r.Visualization != "" {
			fmt.Fprintf(stdout, "  visualization: %s (open it in a browser)\n", r.Visualization)
		}
		if !r.OK {
			status = exitFail
		}
	}
	return status
}
