// Command experiment runs the lock-semantics experiment: how the business
// servers' way of taking a contended lock (fail-fast, wait in the data
// server's FIFO queue, wait with a lease on every grant) and their lock
// order change successful-transfer throughput, latency and refusals, over
// account skew and the number of business servers.
//
//	go run ./benchmarks/experiment [--name NAME] [--long] [--out DIR]
//
// It starts everything in this process: per cell of the grid a fresh
// data server (accounts of 1000) and N business servers on 127.0.0.1:0,
// loads them with the load generator (package loadgen) in a closed loop,
// checks that no money was created or destroyed, and stops them. It
// prints one line per finished cell, then writes DIR/NAME.md with the
// table, the findings and PNG plots (DIR/NAME-*.png) next to it.
//
// The exit status is 1 when any cell failed its conservation check or
// could not run, 2 for a usage error, 130 when interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command line's.
type options struct {
	name     string
	out      string
	long     bool
	duration time.Duration
	workers  int
	cells    []Cell // nil: FullGrid
}

func parseArgs(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("experiment", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{}
	fs.StringVar(&o.name, "name", "lock-semantics", "report name: writes `NAME`.md and NAME-*.png")
	fs.StringVar(&o.out, "out", filepath.Join("benchmarks", "results"), "output `directory` (created if missing)")
	fs.BoolVar(&o.long, "long", false, fmt.Sprintf("longer cells: %s of load each instead of %s", LongDuration, DefaultSettings().Duration))
	fs.DurationVar(&o.duration, "duration", 0, "load per cell, overriding the default and --long")
	fs.IntVar(&o.workers, "workers", 0, fmt.Sprintf("closed-loop clients per cell (default %d)", DefaultSettings().Workers))
	only := fs.String("only", "", "run only the cells whose name (`POLICY/ORDER/SKEW/N servers`) contains one of these comma-separated strings")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./benchmarks/experiment [--name NAME] [--long] [--out DIR]\n\n"+
			"Runs the lock-semantics grid (policy × lock order × skew × business servers, %d cells)\n"+
			"against in-process servers and writes DIR/NAME.md with PNG plots.\n\n", len(FullGrid()))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.name == "" || strings.ContainsAny(o.name, `/\`) {
		return o, fmt.Errorf("--name %q: want a plain file name", o.name)
	}
	if *only != "" {
		pats := strings.Split(*only, ",")
		o.cells = []Cell{}
		for _, c := range FullGrid() {
			for _, pat := range pats {
				if pat != "" && strings.Contains(c.String(), pat) {
					o.cells = append(o.cells, c)
					break
				}
			}
		}
		if len(o.cells) == 0 {
			return o, fmt.Errorf("--only %q matches no cell", *only)
		}
	}
	if o.duration < 0 || o.workers < 0 {
		return o, errors.New("--duration and --workers must not be negative")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "experiment:", err)
		return 2
	}
	s := DefaultSettings()
	if o.long {
		s.Duration = LongDuration
	}
	if o.duration > 0 {
		s.Duration = o.duration
	}
	if o.workers > 0 {
		s.Workers = o.workers
	}
	cells := o.cells
	if cells == nil {
		cells = FullGrid()
	}
	cmd := "go run ./benchmarks/experiment"
	if len(args) > 0 {
		cmd += " " + strings.Join(args, " ")
	}
	results, meta, err := Experiment(ctx, s, cells, o.out, o.name, cmd, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "experiment:", err)
		return 1
	}
	failed := 0
	for _, r := range results {
		if r.Failed() {
			failed++
		}
	}
	fmt.Fprintf(stdout, "\nwrote %s (%d cells in %s)\n", filepath.Join(o.out, o.name+".md"), len(results), meta.Wall.Round(time.Second))
	for _, p := range meta.Plots {
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(o.out, p.File))
	}
	if h, ok := headline(newIndex(results), headlineCondition); ok {
		fmt.Fprintf(stdout, "\nheadline (3 servers, uniform, ascending): fail-fast %s ok transfers/s, %s%% refused; wait %s ok transfers/s, %s%% refused; wait/fail-fast %s\n",
			fmtRate(h.FailFast.OKTransfersPerSec), fmtPct(h.FailFast.RefusalRate),
			fmtRate(h.Wait.OKTransfersPerSec), fmtPct(h.Wait.RefusalRate), fmtRatio(h.Ratio))
	}
	switch {
	case failed > 0:
		fmt.Fprintf(stderr, "\n!!! %d CELL(S) FAILED THE CONSERVATION CHECK OR COULD NOT RUN: see the report. This is a bug. !!!\n", failed)
		return 1
	case meta.Interrupted:
		return 130
	}
	return 0
}

// Experiment runs cells with settings s, printing a line per finished cell
// to stdout and progress to stderr, then writes dir/name.md and its plots.
// An interrupted ctx still writes the report of the cells that ran.
func Experiment(ctx context.Context, s Settings, cells []Cell, dir, name, cmd string,
	stdout, stderr io.Writer) ([]Result, Meta, error) {
	meta := Meta{
		Name: name, Command: cmd, Date: time.Now(),
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH,
		Cells: len(cells), LoadBefore: loadAverage(),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, meta, err
	}
	fmt.Fprintf(stdout, "lock-semantics experiment: %d cells, %s of load each, %d workers, %d accounts; %d CPUs, GOMAXPROCS %d, %s\n\n",
		len(cells), s.Duration, s.Workers, s.Accounts, meta.NumCPU, meta.GOMAXPROCS, meta.GoVersion)
	writeLineHeader(stdout)
	// loadgen's own progress line only on a terminal: in a log it would
	// print a line a second.
	var progress io.Writer
	if isTerminal(stderr) {
		progress = stderr
	}
	start := time.Now()
	status := func(i int, c Cell, elapsed time.Duration) {
		eta := ""
		if i > 0 {
			left := time.Duration(float64(elapsed) / float64(i) * float64(len(cells)-i))
			eta = fmt.Sprintf(", ~%s left", left.Round(time.Second))
		}
		fmt.Fprintf(stderr, "[%d/%d %s%s] %s\n", i+1, len(cells), elapsed.Round(time.Second), eta, c)
	}
	done := func(i int, r Result) { writeLine(stdout, i, r) }
	results := RunGrid(ctx, s, cells, progress, status, done)
	meta.Wall = time.Since(start)
	meta.LoadAfter = loadAverage()
	meta.Interrupted = ctx.Err() != nil

	plots, err := WritePlots(dir, name, results)
	meta.Plots = plots
	if err != nil {
		return results, meta, fmt.Errorf("plots: %w", err)
	}
	path := filepath.Join(dir, name+".md")
	f, err := os.Create(path)
	if err != nil {
		return results, meta, err
	}
	if err := WriteMarkdown(f, meta, s, results); err != nil {
		_ = f.Close()
		return results, meta, err
	}
	return results, meta, f.Close()
}

// loadAverage returns the 1, 5 and 15-minute load averages from
// /proc/loadavg, or "" where there is none: other work on the machine
// skews every figure.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// isTerminal reports whether w is a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
