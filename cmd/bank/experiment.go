package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/benchmarks/experiment"
)

const experimentDescription = `Runs the lock-scheme laboratory (package benchmarks/experiment): a grid of
cells, transport x legs x policy x lock order x skew x business servers x
workers, each against a fresh bank of its own started in this process:
  http       a data server of 1,000 accounts and the cell's business servers
             on free loopback ports, loaded by the closed-loop load generator
             of "bank bench" for --duration (the seed's routes: transfers of
             two accounts, deposits and withdrawals);
  inprocess  the cell's "servers" as Tellers over the account actors, no
             socket, in a closed loop for --inprocess-duration: transactions
             of --legs accounts (2 to 16; a 2-leg one is a transfer), as
             DBx1000's touch 16 rows.
HTTP cells run 2 legs only: a --legs value other than 2 runs in-process.

Every cell is proven correct or reported as FAILED, whatever its speed: its
history is recorded (every operation as invoked and returned; over HTTP a
consistent snapshot of every balance every second, in-process the balances
before and after), then the bank checker and porcupine's linearizability
check of "bank check" judge it, and conservation is checked. For porcupine
to decide, each cell's accounts are split into one group per
--workers-per-group workers (bank bench --groups): no transaction crosses
groups, which lowers the contention of skewed cells (see the report's
method notes). A failed cell's history is kept as DIR/NAME-cell-N.jsonl.

Per cell: committed transactions/s, p50/p99/p99.9 latency, aborts by cause
(refused: fail-fast's; timeout: a wait that ran out; died, wounded,
deadlock, validation: the schemes' retried aborts), abort rate, attempts
per commit, the mean lock wait, how soon the deadlock detector broke a
cycle, and the verdict. One line per cell is printed as it ends; a
progress bar (cells done, elapsed, time left, the current cell) is drawn
on stderr when it is a terminal, a status line per cell otherwise.

Outputs, in --out DIR:
  NAME.md         the report: the table, the findings, the comparison with
                  Yu et al. (VLDB 2014), the plots
  NAME-*.png      committed/s, abort rate and p99 against Zipf θ, one line
                  per policy; request order against ascending
  NAME.csv        one row per cell, every figure and the verdict
  NAME.json       {"meta": command, date, CPUs, Go version, grid, settings;
                   "cells": one object per cell, the CSV's columns}

Lists are comma-separated. Transports: http, inprocess. Stores: memory,
pebble, pebble-elr (a fresh pebble store per cell in a temporary
directory, removed after it; -elr: early lock release). Policies:
fail-fast, wait, wait+lease, and the schemes wait-die, wound-wait, detect,
occ (docs/lock-schemes.md). Orders: ascending, request. Skews in "bank
bench --dist" syntax: uniform (= zipf:0), zipf:θ, hot:K:P.

The full grid (the defaults) is 98 HTTP cells of 4s and 196 in-process
cells of 1s, about 25 minutes; --quick is 28 HTTP cells of 2s and 56
in-process cells of 500ms, about two minutes and a half. A flag given with
--quick overrides the quick grid's value.

Exit status: 0 every cell was proven; 1 a cell failed or could not run, or
the outputs could not be written; 2 the command line is wrong; 130
interrupted (Ctrl-C: the running cell ends, the outputs of the cells that
ran are written).`

// experimentFlags are "bank experiment"'s flags.
type experimentFlags struct {
	quick                                                               bool
	transports, stores, policies, orders, skews, servers, workers, legs string
	duration, inprocessDuration                                         time.Duration
	workersPerGroup                                                     int
	out, name                                                           string
}

// Defaults of bank experiment's output.
const (
	defaultExperimentName = "lock-semantics"
	quickExperimentName   = "lock-semantics-quick"
)

func skewSpecs(g experiment.Grid) string {
	s := make([]string, len(g.Skews))
	for i, sk := range g.Skews {
		s[i] = sk.Spec
	}
	return strings.Join(s, ",")
}

func counts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func names[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ",")
}

func newExperimentFlagSet(f *experimentFlags) *flag.FlagSet {
	full, quick, s := experiment.FullGrid(), experiment.QuickGrid(), experiment.DefaultSettings()
	fs := newFlagSet("experiment")
	fs.BoolVar(&f.quick, "quick", false, fmt.Sprintf("the quick grid (%d cells of %s over HTTP and %s in-process, about two minutes and a half): for CI",
		len(quick.Cells()), experiment.QuickDuration, experiment.QuickInprocessDuration))
	fs.StringVar(&f.transports, "transports", names(full.Transports), "`transports`: http (business servers over loopback), inprocess (Tellers over the actors); --quick: "+names(quick.Transports))
	fs.StringVar(&f.stores, "stores", names(full.Stores), "`stores` of the balances: memory, pebble (every commit synced before its locks go),\npebble-elr (pebble with early lock release: the locks go once the commit is ordered in the WAL)")
	fs.StringVar(&f.legs, "legs", counts(full.Legs), "accounts per transaction (`legs`, 2 to 16; HTTP runs 2 only); --quick: "+counts(quick.Legs))
	fs.StringVar(&f.policies, "policies", names(full.Policies), "lock `policies`; --quick: "+names(quick.Policies))
	fs.StringVar(&f.orders, "orders", names(full.Orders), "lock `orders`; --quick: "+names(quick.Orders))
	fs.StringVar(&f.skews, "skews", skewSpecs(full), "account `skews`; --quick: "+skewSpecs(quick))
	fs.StringVar(&f.servers, "servers", counts(full.Servers), "numbers of business `servers`; --quick: "+counts(quick.Servers))
	fs.StringVar(&f.workers, "workers", counts(full.Workers), "numbers of closed-loop `workers` (clients); --quick: "+counts(quick.Workers))
	fs.DurationVar(&f.duration, "duration", s.Duration, "load per HTTP cell; --quick: "+experiment.QuickDuration.String())
	fs.DurationVar(&f.inprocessDuration, "inprocess-duration", s.InprocessDuration, "load per in-process cell; --quick: "+experiment.QuickInprocessDuration.String())
	fs.IntVar(&f.workersPerGroup, "workers-per-group", s.WorkersPerGroup, "a cell's accounts are split into one group per N workers, which porcupine checks apart;\n0: one group (porcupine cannot decide more than ~16 workers in one)")
	fs.StringVar(&f.out, "out", filepath.Join("benchmarks", "results"), "output `directory` (created if missing)")
	fs.StringVar(&f.name, "name", defaultExperimentName, "report `name`: NAME.md, NAME.csv, NAME.json, NAME-*.png; --quick: "+quickExperimentName)
	return fs
}

func experimentUsage() string {
	var f experimentFlags
	fs := newExperimentFlagSet(&f)
	return fmt.Sprintf("usage: bank experiment [flags]\n\n%s\n\nflags:\n%s\nexamples:\n"+
		"  bank experiment                                   # the full grid -> benchmarks/results/lock-semantics.md\n"+
		"  bank experiment --quick --out /tmp/exp\n"+
		"  bank experiment --policies fail-fast,wait --orders request --skews zipf:0.9,zipf:0.99 --servers 3\n"+
		"  bank experiment --workers 16,64 --duration 10s --name workers\n"+
		"  bank experiment --transports inprocess --legs 2,4,8,16 --orders request --name legs\n"+
		"  bank experiment --stores memory,pebble,pebble-elr --policies wait,detect --skews uniform,hot:1:0.5 --name stores\n",
		experimentDescription, describeFlags(fs))
}

// parseExperiment parses "bank experiment"'s command line into the run's
// configuration (without its writers and command).
func parseExperiment(args []string) (experiment.Config, error) {
	var f experimentFlags
	fs := newExperimentFlagSet(&f)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return experiment.Config{}, err
	}
	if len(pos) > 0 {
		return experiment.Config{}, usagef("experiment takes no arguments, got %q", pos)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	grid, s := experiment.FullGrid(), experiment.DefaultSettings()
	if f.quick {
		grid = experiment.QuickGrid()
		if !set["duration"] {
			f.duration = experiment.QuickDuration
		}
		if !set["inprocess-duration"] {
			f.inprocessDuration = experiment.QuickInprocessDuration
		}
		if !set["name"] {
			f.name = quickExperimentName
		}
	}
	// A dimension given on the command line replaces the grid's.
	if set["transports"] {
		if grid.Transports, err = experiment.ParseTransports(f.transports); err != nil {
			return experiment.Config{}, usagef("--transports: %v", err)
		}
	}
	if set["stores"] {
		if grid.Stores, err = experiment.ParseStores(f.stores); err != nil {
			return experiment.Config{}, usagef("--stores: %v", err)
		}
	}
	if set["legs"] {
		if grid.Legs, err = experiment.ParseCounts(f.legs, "legs", teller.MaxLegs); err != nil {
			return experiment.Config{}, usagef("--legs: %v", err)
		}
	} else {
		// The default widths that the transports chosen run: --transports
		// http alone means transfers.
		grid.Legs = slices.DeleteFunc(grid.Legs, func(l int) bool { return !grid.Runs(l) })
	}
	if set["policies"] {
		if grid.Policies, err = experiment.ParsePolicies(f.policies); err != nil {
			return experiment.Config{}, usagef("--policies: %v", err)
		}
	}
	if set["orders"] {
		if grid.Orders, err = experiment.ParseOrders(f.orders); err != nil {
			return experiment.Config{}, usagef("--orders: %v", err)
		}
	}
	if set["skews"] {
		if grid.Skews, err = experiment.ParseSkews(f.skews); err != nil {
			return experiment.Config{}, usagef("--skews: %v", err)
		}
	}
	if set["servers"] {
		if grid.Servers, err = experiment.ParseCounts(f.servers, "servers", 64); err != nil {
			return experiment.Config{}, usagef("--servers: %v", err)
		}
	}
	if set["workers"] {
		if grid.Workers, err = experiment.ParseCounts(f.workers, "workers", 4096); err != nil {
			return experiment.Config{}, usagef("--workers: %v", err)
		}
	}
	if f.duration <= 0 {
		return experiment.Config{}, usagef("--duration %v: must be positive", f.duration)
	}
	if f.inprocessDuration <= 0 {
		return experiment.Config{}, usagef("--inprocess-duration %v: must be positive", f.inprocessDuration)
	}
	if err := grid.Validate(); err != nil {
		return experiment.Config{}, usagef("%v", err)
	}
	if f.workersPerGroup < 0 {
		return experiment.Config{}, usagef("--workers-per-group %d: must not be negative", f.workersPerGroup)
	}
	if f.name == "" || strings.ContainsAny(f.name, `/\`) {
		return experiment.Config{}, usagef("--name %q: want a plain file name", f.name)
	}
	if f.out == "" {
		return experiment.Config{}, usagef("--out: empty")
	}
	s.Duration, s.InprocessDuration = f.duration, f.inprocessDuration
	s.WorkersPerGroup = f.workersPerGroup
	return experiment.Config{Grid: grid, Settings: s, Dir: f.out, Name: f.name}, nil
}

// runExperiment is "bank experiment".
func runExperiment(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseExperiment(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, experimentUsage())
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "bank experiment: %v\nrun \"bank help experiment\" for usage\n", err)
		return exitUsage
	}
	cfg.Command = strings.TrimSpace("bank experiment " + strings.Join(args, " "))
	cfg.Stdout, cfg.Stderr = stdout, stderr
	results, meta, err := experiment.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bank experiment: %v\n", err)
		return exitFail
	}
	failed := 0
	for i := range results {
		if results[i].Failed() {
			failed++
		}
	}
	files := experiment.OutputFiles(cfg.Dir, cfg.Name)
	fmt.Fprintf(stdout, "\n%d of %d cells proven in %s\n", len(results)-failed, len(results), meta.Wall.Round(time.Second))
	for _, p := range []string{files.Markdown, files.CSV, files.JSON} {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	for _, p := range meta.Plots {
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(cfg.Dir, p.File))
	}
	switch {
	case failed > 0:
		fmt.Fprintf(stderr, "\n!!! %d CELL(S) NOT PROVEN CORRECT (a check failed, could not decide, or the cell could not run): see %s. This is a bug. !!!\n", failed, files.Markdown)
		return exitFail
	case meta.Interrupted:
		fmt.Fprintf(stderr, "bank experiment: interrupted after %d of %d cells\n", len(results), meta.Cells)
		return exitInterrupted
	}
	return exitOK
}
