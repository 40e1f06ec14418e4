package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bank/gobank/benchmarks/experiment"
)

const experimentDescription = `Runs the lock-scheme laboratory (package benchmarks/experiment): a grid of
cells, policy x lock order x skew x business servers x workers, each against
a fresh bank of its own started in this process (a data server of 100
accounts and the cell's business servers on free loopback ports), loaded by
the closed-loop load generator of "bank bench" for --duration.

Every cell is proven correct or reported as FAILED, whatever its speed: its
history is recorded as "bank bench --history" records one (every operation
as invoked and returned, a consistent snapshot of every balance every
second), then the bank checker and porcupine's linearizability check of
"bank check" judge it, and the load generator checks conservation. For
porcupine to decide, each cell's accounts are split into one group per
--workers-per-group workers (bank bench --groups): no transfer crosses
groups, which lowers the contention of skewed cells (see the report's
method notes). A failed cell's history is kept as DIR/NAME-cell-N.jsonl.

Per cell: committed transactions/s, p50/p99/p99.9 latency, aborts by cause
(refused: fail-fast's 403; timeout: a wait that ran out), abort rate,
attempts per commit, the data server's mean lock wait, and the verdict. One
line per cell is printed as it ends; a progress bar (cells done, elapsed,
time left, the current cell) is drawn on stderr when it is a terminal, a
status line per cell otherwise.

Outputs, in --out DIR:
  NAME.md         the report: the table, the findings, the plots
  NAME-*.png      committed/s, abort rate and p99 against Zipf θ, one line
                  per policy; request order against ascending
  NAME.csv        one row per cell, every figure and the verdict
  NAME.json       {"meta": command, date, CPUs, Go version, grid, settings;
                   "cells": one object per cell, the CSV's columns}

Lists are comma-separated. Policies: fail-fast, wait, wait+lease, and the
schemes wait-die, wound-wait, detect, occ (docs/lock-schemes.md). Orders:
ascending, request. Skews in "bank bench --dist" syntax: uniform (= zipf:0),
zipf:θ, hot:K:P.

The full grid (the defaults) is 98 cells of 6s, about 16 minutes; --quick
is 28 cells of 2s, about a minute and a half. A flag given with --quick
overrides the quick grid's value.

Exit status: 0 every cell was proven; 1 a cell failed or could not run, or
the outputs could not be written; 2 the command line is wrong; 130
interrupted (Ctrl-C: the running cell ends, the outputs of the cells that
ran are written).`

// experimentFlags are "bank experiment"'s flags.
type experimentFlags struct {
	quick                                     bool
	policies, orders, skews, servers, workers string
	duration                                  time.Duration
	workersPerGroup                           int
	out, name                                 string
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
	fs.BoolVar(&f.quick, "quick", false, fmt.Sprintf("the quick grid (%d cells of %s, about a minute and a half): for CI", len(quick.Cells()), experiment.QuickDuration))
	fs.StringVar(&f.policies, "policies", names(full.Policies), "lock `policies`; --quick: "+names(quick.Policies))
	fs.StringVar(&f.orders, "orders", names(full.Orders), "lock `orders`; --quick: "+names(quick.Orders))
	fs.StringVar(&f.skews, "skews", skewSpecs(full), "account `skews`; --quick: "+skewSpecs(quick))
	fs.StringVar(&f.servers, "servers", counts(full.Servers), "numbers of business `servers`; --quick: "+counts(quick.Servers))
	fs.StringVar(&f.workers, "workers", counts(full.Workers), "numbers of closed-loop `workers` (clients); --quick: "+counts(quick.Workers))
	fs.DurationVar(&f.duration, "duration", s.Duration, "load per cell; --quick: "+experiment.QuickDuration.String())
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
		"  bank experiment --workers 16,64 --duration 10s --name workers\n",
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
		if !set["name"] {
			f.name = quickExperimentName
		}
	}
	// A dimension given on the command line replaces the grid's.
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
	if f.workersPerGroup < 0 {
		return experiment.Config{}, usagef("--workers-per-group %d: must not be negative", f.workersPerGroup)
	}
	if f.name == "" || strings.ContainsAny(f.name, `/\`) {
		return experiment.Config{}, usagef("--name %q: want a plain file name", f.name)
	}
	if f.out == "" {
		return experiment.Config{}, usagef("--out: empty")
	}
	s.Duration = f.duration
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
