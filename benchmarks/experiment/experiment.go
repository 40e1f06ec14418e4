// Package experiment is the lock-scheme laboratory behind "bank
// experiment": it runs a grid of cells — lock policy × lock order × skew
// (a Zipf θ sweep and a hot account) × business servers × workers — and
// proves every cell correct before it reports its speed.
//
// Per cell it starts a fresh bank in this process (a data server of
// Settings.Accounts accounts and the cell's business servers on
// 127.0.0.1:0), drives it with the load generator (package loadgen) in a
// closed loop while recording the history as "bank bench --history" does
// (every operation as invoked and returned, consistent snapshots of the
// balances), and stops it. The cell's verdict is "proven" only when the
// history passes the bank checker and porcupine's linearizability check
// (package check) and the load generator's conservation check passes: a
// cell that is not proven is reported as failed, whatever its speed.
//
// Run writes DIR/NAME.md (the table, the findings and PNG plots
// DIR/NAME-*.png: throughput, abort rate and p99 against θ per policy, and
// the request-against-ascending contrast), DIR/NAME.csv (one row per
// cell) and DIR/NAME.json (the run's metadata and one object per cell,
// with the same fields). A failed cell's history is kept as
// DIR/NAME-cell-N.jsonl for "bank check".
//
// A new policy is an entry of policyDefs (how to configure the servers,
// which outcomes are aborts of which Cause); a new transport is a runner
// in runners.
package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bank/gobank/actors/teller"
)

// Config is one run of the experiment.
type Config struct {
	Grid     Grid
	Settings Settings
	// Dir and Name: the outputs are Dir/Name.md, .csv, .json and
	// Dir/Name-*.png.
	Dir, Name string
	// Command is the command line, as the report quotes it.
	Command string
	// Stdout receives a line per finished cell; Stderr the progress (a
	// bar on a terminal). Nil discards.
	Stdout, Stderr io.Writer
}

// Meta describes the run as a whole.
type Meta struct {
	Name       string
	Command    string
	Date       time.Time
	NumCPU     int
	GOMAXPROCS int
	GoVersion  string
	OSArch     string
	Wall       time.Duration
	Cells      int // cells planned
	// LoadBefore and LoadAfter are the load averages (1, 5, 15 min) before
	// and after the grid, "" when unknown.
	LoadBefore, LoadAfter string
	Interrupted           bool
	Plots                 []Plot // written next to the markdown
	Grid                  Grid
	Settings              Settings
}

// Files are the paths of a run's outputs.
type Files struct{ Markdown, CSV, JSON string }

// OutputFiles returns where a run named name writes into dir.
func OutputFiles(dir, name string) Files {
	base := filepath.Join(dir, name)
	return Files{Markdown: base + ".md", CSV: base + ".csv", JSON: base + ".json"}
}

// Validate reports whether g can run: every dimension has values, every
// policy and transport is known, and some transport runs every width.
func (g Grid) Validate() error {
	switch {
	case len(g.Policies) == 0, len(g.Orders) == 0, len(g.Skews) == 0, len(g.Servers) == 0, len(g.Workers) == 0:
		return errors.New("every dimension needs at least one value (policies, orders, skews, servers, workers)")
	}
	for _, t := range g.transports() {
		if runners[t] == nil {
			return fmt.Errorf("unknown transport %q", t)
		}
	}
	for _, st := range g.stores() {
		if !slices.Contains(Stores, st) {
			return fmt.Errorf("unknown store %q (want %s)", st, joinNames(Stores))
		}
	}
	for _, p := range g.Policies {
		if _, ok := p.def(); !ok {
			return fmt.Errorf("unknown policy %q (want %s)", p, joinNames(Policies()))
		}
	}
	for _, n := range slices.Concat(g.Servers, g.Workers) {
		if n < 1 {
			return fmt.Errorf("servers and workers must be at least 1, got %d", n)
		}
	}
	for _, l := range g.legs() {
		if l < 2 || l > teller.MaxLegs {
			return fmt.Errorf("legs %d: want 2 to %d accounts per transaction", l, teller.MaxLegs)
		}
		if !g.Runs(l) {
			return fmt.Errorf("legs %d: the %s transport runs transfers (2 legs) only; wider transactions run in-process (--transports %s)", l, TransportHTTP, TransportInprocess)
		}
	}
	return nil
}

// Runs reports whether some transport of g runs transactions of legs
// accounts.
func (g Grid) Runs(legs int) bool {
	return slices.ContainsFunc(g.transports(), func(t Transport) bool { return t.runs(legs) })
}

// Run runs the grid's cells one after another, printing a line per
// finished cell, then writes the report, the plots, the CSV and the JSON.
// A cancelled ctx stops the grid after the running cell (whose
// interrupted result is kept) and still writes the outputs of the cells
// that ran. The error is for a run that could not be made or outputs that
// could not be written; failed cells are in the results (Result.Failed).
func Run(ctx context.Context, cfg Config) ([]Result, Meta, error) {
	stdout, stderr := cfg.Stdout, cfg.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	s := cfg.Settings
	cells := cfg.Grid.Cells()
	meta := Meta{
		Name: cfg.Name, Command: cfg.Command, Date: time.Now(),
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH,
		Cells: len(cells), LoadBefore: loadAverage(), Grid: cfg.Grid, Settings: s,
	}
	if err := cfg.Grid.Validate(); err != nil {
		return nil, meta, err
	}
	if err := s.validate(); err != nil {
		return nil, meta, err
	}
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, `/\`) {
		return nil, meta, fmt.Errorf("name %q: want a plain file name", cfg.Name)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, meta, err
	}
	fmt.Fprintf(stdout, "lock-scheme experiment: %d cells, %s of load each over HTTP and %s in-process, %d accounts, histories checked in groups of up to %d workers; %d CPUs, GOMAXPROCS %d, %s\n\n",
		len(cells), s.Duration, s.InprocessDuration, s.Accounts, s.WorkersPerGroup, meta.NumCPU, meta.GOMAXPROCS, meta.GoVersion)
	fmt.Fprint(stdout, lineHeader())

	keep := func(index int) (string, string) {
		base := filepath.Join(cfg.Dir, cfg.Name+"-cell-"+strconv.Itoa(index))
		return base + ".jsonl", base + ".html"
	}
	var load time.Duration
	for _, c := range cells {
		load += s.duration(c) + 3*time.Second // a guess at setup, checks and teardown
	}
	bar := newProgress(stderr, len(cells), load/time.Duration(max(len(cells), 1)))
	start := time.Now()
	var results []Result
	for i, c := range cells {
		if ctx.Err() != nil {
			break
		}
		bar.begin(i, c)
		r := runCell(ctx, s, c, i+1, keep)
		results = append(results, r)
		bar.print(stdout, line(r))
	}
	bar.close()
	meta.Wall = time.Since(start)
	meta.LoadAfter = loadAverage()
	meta.Interrupted = ctx.Err() != nil
	return results, meta, writeOutputs(cfg.Dir, &meta, results)
}

// writeOutputs writes the plots, the markdown, the CSV and the JSON.
func writeOutputs(dir string, meta *Meta, results []Result) error {
	files := OutputFiles(dir, meta.Name)
	plots, err := WritePlots(dir, meta.Name, results)
	meta.Plots = plots
	if err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	write := func(path string, f func(io.Writer) error) error {
		out, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := f(out); err != nil {
			_ = out.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		return out.Close()
	}
	return errors.Join(
		write(files.Markdown, func(w io.Writer) error { return WriteMarkdown(w, *meta, results) }),
		write(files.CSV, func(w io.Writer) error { return WriteCSV(w, results) }),
		write(files.JSON, func(w io.Writer) error { return WriteJSON(w, *meta, results) }),
	)
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
