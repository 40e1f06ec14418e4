package main

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/http/business"
)

// TestTinyGrid runs the command on the three policies of the headline
// condition, with short cells and few workers, and checks what it wrote.
func TestTinyGrid(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"--only", "ascending/uniform/3 servers", "--duration", "300ms", "--workers", "8",
		"--out", dir, "--name", "tiny"}
	start := time.Now()
	code := run(context.Background(), args, &stdout, &stderr)
	t.Logf("ran in %s\n%s\n%s", time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}

	// One line per cell on stdout, each passing the conservation check.
	for _, p := range Policies {
		if !strings.Contains(stdout.String(), string(p)+" ") {
			t.Errorf("stdout has no line for %s", p)
		}
	}
	if n := strings.Count(stdout.String(), "  PASS"); n != 3 {
		t.Errorf("stdout: %d cells passed the conservation check, want 3", n)
	}

	md, err := os.ReadFile(filepath.Join(dir, "tiny.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(md)
	for i, p := range Policies {
		row := "| " + string(rune('1'+i)) + " | " + string(p) + " | ascending | uniform | 3 | "
		if !strings.Contains(text, row) {
			t.Errorf("markdown has no table row starting %q", row)
		}
	}
	for _, want := range []string{
		"## Headline", "wait / fail-fast successful-transfer throughput", "## What this shows",
		"**Conservation check:** PASS in every cell", "GOMAXPROCS", "--only ascending/uniform/3 servers",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(text, "FAIL") {
		t.Errorf("markdown reports a failure:\n%s", text)
	}
	if n := strings.Count(text, "| PASS |"); n != 3 {
		t.Errorf("markdown: %d rows with conservation PASS, want 3", n)
	}

	for _, m := range metrics {
		file := "tiny-" + m.suffix + ".png"
		if !strings.Contains(text, "]("+file+")") {
			t.Errorf("markdown does not embed %s", file)
		}
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		_ = f.Close()
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 400 {
			t.Errorf("%s: %v: too small", file, b)
		}
	}
}

func TestFullGrid(t *testing.T) {
	cells := FullGrid()
	if len(cells) != 54 {
		t.Fatalf("%d cells, want 54", len(cells))
	}
	seen := map[Cell]bool{}
	for _, c := range cells {
		if seen[c] {
			t.Errorf("cell %s twice", c)
		}
		seen[c] = true
		if _, err := loadgen.ParseDist(c.Skew.Spec); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
	if _, err := loadgen.ParseMix(DefaultSettings().Mix); err != nil {
		t.Error(err)
	}
}

func TestServerConfigs(t *testing.T) {
	s := DefaultSettings()
	for _, tc := range []struct {
		p        Policy
		dataTTL  time.Duration
		mode     business.LockMode
		bizTTL   time.Duration
		leaseOff bool
	}{
		{PolicyFailFast, -1, business.ModeFailFast, 0, true},
		{PolicyWait, -1, business.ModeWait, 0, true},
		{PolicyWaitLease, 0, business.ModeWait, s.Lease, false},
	} {
		for _, o := range Orders {
			dc, bc := serverConfigs(s, Cell{Policy: tc.p, Order: o, Skew: SkewUniform, Servers: 1})
			if (dc.LockTTL < 0) != tc.leaseOff || bc.LockMode != tc.mode || bc.LockTTL != tc.bizTTL || bc.LockWait != s.LockWait {
				t.Errorf("%s: data LockTTL %v, business mode %q LockTTL %v LockWait %v", tc.p, dc.LockTTL, bc.LockMode, bc.LockTTL, bc.LockWait)
			}
			want := business.OrderAscending
			if o == OrderRequest {
				want = business.OrderRequest
			}
			if bc.LockOrder != want {
				t.Errorf("%s/%s: lock order %q", tc.p, o, bc.LockOrder)
			}
		}
	}
}

// TestMarkdownReportsFailuresLoudly feeds the report a cell that failed
// its conservation check and one that could not run.
func TestMarkdownReportsFailuresLoudly(t *testing.T) {
	ok := fakeResult(Cell{PolicyFailFast, OrderAscending, SkewUniform, 3}, 1000, 0.5)
	bad := fakeResult(Cell{PolicyWait, OrderAscending, SkewUniform, 3}, 2000, 0)
	bad.Report.Conservation.OK = false
	bad.Report.Conservation.Reason = "money created: the balances sum to 7 more than the acknowledged operations allow"
	bad.derive()
	broken := Result{Cell: Cell{PolicyWaitLease, OrderAscending, SkewUniform, 3}, Err: errors.New("starting the servers: boom")}
	var b bytes.Buffer
	meta := Meta{Name: "x", Command: "go run ./benchmarks/experiment", Date: time.Now(), Cells: 3}
	if err := WriteMarkdown(&b, meta, DefaultSettings(), []Result{ok, bad, broken}); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"2 CELL(S) FAILED", "money created", "boom", "**FAIL in 2 cell(s)**",
		"| 2 | wait | ascending | uniform | 3 |", "**FAIL** money created",
		"wait / fail-fast successful-transfer throughput: 2.00×",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("markdown lacks %q:\n%s", want, text)
		}
	}
	var line bytes.Buffer
	writeLine(&line, 1, bad)
	if !strings.Contains(line.String(), "FAIL !!!") {
		t.Errorf("stdout line does not shout: %q", line.String())
	}
}

func fakeResult(c Cell, okTransfers int64, refusalShare float64) Result {
	req := okTransfers * 2
	refused := int64(refusalShare * float64(req))
	r := Result{Cell: c, Report: &loadgen.Report{
		DurationSeconds: 1, Requests: req, OK: req - refused, ThroughputTotal: float64(req),
		Outcomes:     map[string]int64{labelOK: req - refused, labelLocked: refused},
		Ops:          map[string]loadgen.OpStats{"transferencia": {Requests: req, OK: okTransfers}},
		Latency:      loadgen.Latency{P50: 900, P99: 12_000, P999: 2_100_000},
		Conservation: &loadgen.Conservation{OK: true, Reason: "after == before + deposited - withdrawn"},
	}}
	r.derive()
	return r
}
