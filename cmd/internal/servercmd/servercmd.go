// Package servercmd holds the command-line front ends of the data server and
// the business server, shared by their own commands and by `bank`, which
// runs them as child processes.
package servercmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// parseInterleaved parses flags that may stand before, between or after the
// positional arguments, as users of the original typed them
// (`business_server URL 5001 --log x` as well as `--log x URL 5001`).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// flagSet returns a FlagSet that reports errors instead of exiting, with a
// usage text of synopsis and description above the flags.
func flagSet(name, synopsis, description string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n\n%s\n\nflags:\n", synopsis, strings.TrimSpace(description))
		fs.PrintDefaults()
	}
	return fs
}

// ErrUsage marks a command-line error; the message was already printed.
var ErrUsage = errors.New("usage error")

func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), format+"\n", args...)
	fs.Usage()
	return ErrUsage
}

// newLogger returns the servers' diagnostic logger: text on stderr. It never
// receives credentials.
func newLogger(stderr io.Writer, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("server", name)
}

// server is what serve needs of either server.
type server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// serve runs srv on ln until ctx is cancelled, then shuts it down within
// grace. It prints "listening on URL" to stderr once the socket is open, so
// that parents (bank up, tests) know when to connect.
func serve(ctx context.Context, srv server, ln net.Listener, grace time.Duration, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening on " + listenURL(ln.Addr()))
	select {
	case err := <-errc:
		return fmt.Errorf("serving %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// listenURL names addr as a client on this host would dial it.
func listenURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Main runs a server command as a program: SIGINT or SIGTERM cancel its
// context (a graceful shutdown), and the process exits 0 on success, 2 on
// a usage error and 1 on any other error, printed after name.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
		os.Exit(0)
	case errors.Is(err, ErrUsage):
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(1)
}
