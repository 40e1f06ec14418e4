package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/benchmarks/experiment"
)

func TestParseExperiment(t *testing.T) {
	full, quick, s := experiment.FullGrid(), experiment.QuickGrid(), experiment.DefaultSettings()
	mustSkews := func(spec string) []experiment.Skew {
		sk, err := experiment.ParseSkews(spec)
		if err != nil {
			t.Fatal(err)
		}
		return sk
	}
	for _, tc := range []struct {
		name     string
		args     []string
		cells    int
		grid     func(g experiment.Grid) bool // nil: any
		duration time.Duration
		report   string
	}{
		{"defaults: the full grid", nil, len(full.Cells()), nil, s.Duration, "lock-semantics"},
		{"quick", []string{"--quick"}, len(quick.Cells()), nil, experiment.QuickDuration, "lock-semantics-quick"},
		{"quick with a dimension", []string{"--quick", "--policies", "wait", "--duration", "1s", "--name", "q"}, len(quick.Orders) * len(quick.Skews) * 3,
			func(g experiment.Grid) bool {
				return slices.Equal(g.Policies, []experiment.Policy{experiment.PolicyWait}) && slices.Equal(g.Servers, quick.Servers)
			}, time.Second, "q"},
		{"every dimension", []string{"--policies=fail-fast,wait+lease", "--orders", "request", "--skews", "zipf:0,zipf:0.8,hot:2:0.9",
			"--servers", "2,4", "--workers", "8,16", "--out", "/tmp/x", "--transports", "http", "--legs", "2"}, 2 * 1 * 3 * 2 * 2,
			func(g experiment.Grid) bool {
				return slices.Equal(g.Orders, []experiment.Order{experiment.OrderRequest}) && slices.Equal(g.Skews, mustSkews("uniform,zipf:0.8,hot:2:0.9")) &&
					slices.Equal(g.Workers, []int{8, 16})
			}, s.Duration, "lock-semantics"},
		{"wider transactions in-process", []string{"--transports", "inprocess", "--legs", "2,4,8,16", "--policies", "detect", "--orders", "request"},
			4 * len(full.Skews),
			func(g experiment.Grid) bool {
				return slices.Equal(g.Transports, []experiment.Transport{experiment.TransportInprocess}) && slices.Equal(g.Legs, []int{2, 4, 8, 16})
			}, s.Duration, "lock-semantics"},
		{"stores", []string{"--quick", "--stores", "memory,pebble-elr"}, 2 * len(quick.Cells()),
			func(g experiment.Grid) bool {
				return slices.Equal(g.Stores, []experiment.Store{experiment.StoreMemory, experiment.StorePebbleELR})
			}, experiment.QuickDuration, "lock-semantics-quick"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseExperiment(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(cfg.Grid.Cells()); n != tc.cells {
				t.Errorf("%d cells, want %d", n, tc.cells)
			}
			if tc.grid != nil && !tc.grid(cfg.Grid) {
				t.Errorf("grid %+v", cfg.Grid)
			}
			if cfg.Settings.Duration != tc.duration || cfg.Name != tc.report || cfg.Settings.WorkersPerGroup != s.WorkersPerGroup {
				t.Errorf("duration %v, name %q, workers per group %d", cfg.Settings.Duration, cfg.Name, cfg.Settings.WorkersPerGroup)
			}
			if err := cfg.Grid.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--policies", ""}, "--policies: empty list"},
		{[]string{"--policies", "wait,"}, "empty policy"},
		{[]string{"--policies", "wait-dies"}, `unknown policy "wait-dies"`},
		{[]string{"--policies", "wait,wait"}, "given twice"},
		{[]string{"--orders", "random"}, `unknown lock order "random"`},
		{[]string{"--skews", "zipf:abc"}, "--skews"},
		{[]string{"--skews", "uniform,,hot:1:0.5"}, "empty skew"},
		{[]string{"--skews", "uniform,zipf:0"}, "given twice"},
		{[]string{"--servers", "0"}, "from 1 to 64"},
		{[]string{"--servers", "1,x"}, `servers "x"`},
		{[]string{"--workers", "-4"}, "--workers"},
		{[]string{"--duration", "0"}, "--duration 0s: must be positive"},
		{[]string{"--inprocess-duration", "0"}, "--inprocess-duration 0s: must be positive"},
		{[]string{"--legs", "17"}, "from 1 to 16"},
		{[]string{"--legs", "1"}, "legs 1: want 2 to 16"},
		{[]string{"--legs", "16", "--transports", "http"}, "runs transfers (2 legs) only"},
		{[]string{"--transports", "pigeon"}, `unknown transport "pigeon"`},
		{[]string{"--stores", "tape"}, `--stores: unknown store "tape"`},
		{[]string{"--duration", "soon"}, "invalid value"},
		{[]string{"--workers-per-group", "-1"}, "must not be negative"},
		{[]string{"--name", "a/b"}, "plain file name"},
		{[]string{"--quick", "extra"}, "takes no arguments"},
		{[]string{"--bogus"}, "not defined"},
	} {
		_, err := parseExperiment(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one with %q", tc.args, err, tc.want)
		}
		var out, errb strings.Builder
		if code := run(context.Background(), append([]string{"experiment"}, tc.args...), func(string) string { return "" }, &out, &errb); code != exitUsage {
			t.Errorf("bank experiment %q: exit %d, want %d", tc.args, code, exitUsage)
		}
	}
}

func TestExperimentUsage(t *testing.T) {
	for _, args := range [][]string{{"experiment", "--help"}, {"help", "experiment"}} {
		var out, errb strings.Builder
		if code := run(context.Background(), args, func(string) string { return "" }, &out, &errb); code != exitOK {
			t.Fatalf("%q: exit %d: %s", args, code, errb.String())
		}
		for _, want := range []string{"--quick", "--transports", "--stores", "pebble-elr", "--legs", "--inprocess-duration", "--policies", "--skews", "--workers-per-group", "NAME.csv", "porcupine", "Exit status", "130"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%q lacks %q", args, want)
			}
		}
	}
	if !strings.Contains(mainUsage, "bank experiment") {
		t.Error("bank help does not list experiment")
	}
}

// TestExperimentRuns runs one short cell through the command and checks
// its exit status and outputs; then an interrupted run.
func TestExperimentRuns(t *testing.T) {
	dir := t.TempDir()
	var out, errb strings.Builder
	args := []string{"experiment", "--policies", "wait", "--orders", "ascending", "--skews", "zipf:0.9", "--servers", "1",
		"--workers", "4", "--duration", "500ms", "--out", dir, "--name", "one", "--transports", "http"}
	if code := run(context.Background(), args, func(string) string { return "" }, &out, &errb); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"1 of 1 cells proven", "wrote " + filepath.Join(dir, "one.md"), "wrote " + filepath.Join(dir, "one.json")} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "one.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "`bank experiment --policies wait --orders ascending") {
		t.Error("the report does not quote the command")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out.Reset()
	if code := run(ctx, args, func(string) string { return "" }, &out, &errb); code != exitInterrupted {
		t.Fatalf("interrupted: exit %d, want %d\n%s", code, exitInterrupted, errb.String())
	}
	md, err = os.ReadFile(filepath.Join(dir, "one.md"))
	if err != nil || !strings.Contains(string(md), "The run was interrupted: 0 of 1 cells ran") {
		t.Errorf("the interrupted run's report: %v\n%s", err, md)
	}
}
