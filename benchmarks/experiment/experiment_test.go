package experiment

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/http/business"
)

// TestTinyGrid runs three one-second cells through the library against
// real servers on loopback and checks what it wrote: every verdict
// proven, one CSV row and one JSON object per cell, the report and its
// plots.
func TestTinyGrid(t *testing.T) {
	dir := t.TempDir()
	s := DefaultSettings()
	s.Duration, s.InprocessDuration = time.Second, 300*time.Millisecond
	grid := Grid{
		Transports: Transports,
		Policies:   Policies(),
		Orders:     []Order{OrderAscending},
		Skews:      []Skew{mustSkew("zipf:0.9")},
		Servers:    []int{2},
		Workers:    []int{16},
		Legs:       []int{2, 16},
	}
	var stdout, stderr bytes.Buffer
	start := time.Now()
	results, meta, err := Run(context.Background(), Config{
		Grid: grid, Settings: s, Dir: dir, Name: "tiny", Command: "bank experiment --tiny",
		Stdout: &stdout, Stderr: &stderr,
	})
	t.Logf("ran in %s\n%s\n%s", time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * len(Policies()) // HTTP at 2 legs, in-process at 2 and 16
	if len(results) != n || meta.Cells != n || meta.Interrupted {
		t.Fatalf("%d results of %d cells (interrupted %v), want %d", len(results), meta.Cells, meta.Interrupted, n)
	}
	for _, r := range results {
		v := r.Verdict
		if r.Failed() || v.Bank != "PASS" || v.Linearizability != "PASS" || v.Conservation != "PASS" {
			t.Errorf("#%d %s: not proven: %+v (err %v)", r.Index, r.Cell, v, r.Err)
		}
		// HTTP snapshots before, during and after the load; in-process,
		// after it (the header has the balances before).
		snapshots, load := 2, s.Duration
		if r.Transport == TransportInprocess {
			snapshots, load = 1, s.InprocessDuration
		}
		if v.HistoryOps == 0 || v.HistorySnapshots < snapshots || v.Groups != 2 {
			t.Errorf("#%d %s: history of %d ops, %d snapshots, %d groups: want ops, at least %d snapshots, 2 groups", r.Index, r.Cell, v.HistoryOps, v.HistorySnapshots, v.Groups, snapshots)
		}
		if r.Wall < load || r.Transport == TransportHTTP && r.Setup <= 0 || v.CheckTime <= 0 {
			t.Errorf("#%d %s: wall %v, setup %v, checks %v", r.Index, r.Cell, r.Wall, r.Setup, v.CheckTime)
		}
		if r.Policy == "detect" && r.Aborts[CauseDeadlock] != r.Deadlocks || r.Deadlocks > 0 && (r.DeadlockResolved <= 0 || r.DeadlockMax < r.DeadlockResolved) {
			t.Errorf("#%d %s: %d deadlock aborts, %d deadlocks timed (%v, %v)", r.Index, r.Cell, r.Aborts[CauseDeadlock], r.Deadlocks, r.DeadlockResolved, r.DeadlockMax)
		}
		if r.Commits == 0 || r.CommitsPerSec <= 0 || r.P99 <= 0 || r.LockWaits == 0 {
			t.Errorf("#%d %s: no figures: %+v", r.Index, r.Cell, r.Metrics)
		}
		if r.Policy == PolicyFailFast && r.Aborts[CauseTimeout] != 0 || r.Policy != PolicyFailFast && r.Aborts[CauseRefused] != 0 {
			t.Errorf("#%d %s: aborts by cause %v: fail-fast refuses, the waiting policies time out", r.Index, r.Cell, r.Aborts)
		}
		// Each scheme's own aborts, counted by the business servers.
		if want, ok := map[Policy]Cause{"wait-die": CauseDied, "wound-wait": CauseWounded, "occ": CauseValidation}[r.Policy]; ok && r.Aborts[want] == 0 {
			t.Errorf("#%d %s: aborts by cause %v: none %s", r.Index, r.Cell, r.Aborts, want)
		}
	}
	if got := strings.Count(stdout.String(), "  proven\n"); got != n {
		t.Errorf("stdout: %d lines end proven, want %d", got, n)
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("[1/%d ", n)) || !strings.Contains(stderr.String(), fmt.Sprintf("[%d/%d ", n, n)) {
		t.Errorf("stderr has no status line per cell:\n%s", stderr.String())
	}

	files := OutputFiles(dir, "tiny")
	md, err := os.ReadFile(files.Markdown)
	if err != nil {
		t.Fatal(err)
	}
	text := string(md)
	for _, want := range []string{
		fmt.Sprintf("**proven in every cell** (%d of %d)", n, n), "## What this shows", "| 1 | http | 2 | fail-fast | ascending | zipf 0.9 | 0.9 | 2 | 16 |",
		fmt.Sprintf("| %d | inprocess | 16 | fail-fast | ascending | zipf 0.9 | 0.9 | 2 | 16 |", 2*len(Policies())+1),
		"bank experiment --tiny", "GOMAXPROCS", "[`tiny.csv`](tiny.csv)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(text, "FAILED") {
		t.Errorf("markdown reports a failure:\n%s", text)
	}

	rows := readCSV(t, files.CSV)
	if len(rows) != n+1 {
		t.Fatalf("CSV: %d rows, want a header and %d cells", len(rows), n)
	}
	col := slices.Index(rows[0], "verdict")
	theta := slices.Index(rows[0], "theta")
	if col < 0 || theta < 0 {
		t.Fatalf("CSV header lacks verdict or theta: %q", rows[0])
	}
	for _, row := range rows[1:] {
		if row[col] != "proven" || row[theta] != "0.9" {
			t.Errorf("CSV row: verdict %q, theta %q", row[col], row[theta])
		}
	}

	raw, err := os.ReadFile(files.JSON)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Meta struct {
			Command     string          `json:"command"`
			NumCPU      int             `json:"num_cpu"`
			GoVersion   string          `json:"go_version"`
			CellsRun    int             `json:"cells_run"`
			CellsProven int             `json:"cells_proven"`
			Settings    map[string]any  `json:"settings"`
			Grid        map[string]any  `json:"grid"`
			Plots       []Plot          `json:"plots"`
			Date        string          `json:"date"`
			Extra       json.RawMessage `json:"-"`
		} `json:"meta"`
		Cells []map[string]any `json:"cells"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, raw)
	}
	m := doc.Meta
	if m.Command != "bank experiment --tiny" || m.NumCPU < 1 || m.GoVersion == "" || m.Date == "" || m.CellsRun != n || m.CellsProven != n ||
		m.Settings["duration_s"] != 1.0 || m.Settings["workers_per_group"] != 8.0 || len(m.Plots) != 3 {
		t.Errorf("JSON meta: %+v", m)
	}
	if len(doc.Cells) != n {
		t.Fatalf("JSON: %d cells, want %d", len(doc.Cells), n)
	}
	for i, c := range doc.Cells {
		if c["verdict"] != "proven" || c["theta"] != 0.9 || c["policy"] != string(Policies()[i%len(Policies())]) || len(c) != len(columns) {
			t.Errorf("JSON cell %d: %v", i, c)
		}
	}

	for _, pl := range m.Plots {
		if !strings.Contains(text, "]("+pl.File+")") {
			t.Errorf("markdown does not embed %s", pl.File)
		}
		checkPNG(t, filepath.Join(dir, pl.File))
	}
	if _, err := os.Stat(filepath.Join(dir, "tiny-order.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an order contrast from a run of one order: %v", err)
	}
}

// TestStoresGrid runs the hot account over both durable stores, in-process
// and over HTTP: every cell proven, the store named in the lines, the
// table and the CSV, and every cell's pebble directory removed after it.
func TestStoresGrid(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the cells' stores go (os.MkdirTemp)
	dir := t.TempDir()
	s := DefaultSettings()
	s.Duration, s.InprocessDuration = time.Second, 300*time.Millisecond
	grid := Grid{
		Transports: Transports,
		Stores:     []Store{StorePebble, StorePebbleELR},
		Policies:   []Policy{PolicyWait},
		Orders:     []Order{OrderAscending},
		Skews:      []Skew{SkewHot},
		Servers:    []int{1},
		Workers:    []int{8},
		Legs:       []int{2},
	}
	var stdout, stderr bytes.Buffer
	results, _, err := Run(context.Background(), Config{Grid: grid, Settings: s, Dir: dir, Name: "stores",
		Command: "bank experiment --stores pebble,pebble-elr", Stdout: &stdout, Stderr: &stderr})
	t.Logf("%s\n%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("%d results, want 4", len(results))
	}
	for _, r := range results {
		if r.Failed() || r.Commits == 0 || r.Store == "" {
			t.Errorf("#%d %s: not proven or no commits: %+v (err %v)", r.Index, r.Cell, r.Verdict, r.Err)
		}
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the cells left %d entries in TMPDIR, first %s", len(left), left[0].Name())
	}
	for _, want := range []string{"http/pebble ", "http/pebble-elr ", "inprocess/pebble-elr "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	md, err := os.ReadFile(OutputFiles(dir, "stores").Markdown)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| 2 | http/pebble-elr | 2 | wait | ascending | hot 1 @ 50% |") {
		t.Errorf("markdown has no row for cell 2 over pebble-elr:\n%s", md)
	}
	rows := readCSV(t, OutputFiles(dir, "stores").CSV)
	col := slices.Index(rows[0], "store")
	if col < 0 {
		t.Fatalf("CSV header lacks store: %q", rows[0])
	}
	var stores []string
	for _, row := range rows[1:] {
		stores = append(stores, row[col])
	}
	if want := []string{"pebble", "pebble-elr", "pebble", "pebble-elr"}; !slices.Equal(stores, want) {
		t.Errorf("CSV stores %q, want %q", stores, want)
	}
}

// TestClusterStores checks what a cell's store makes of its bank: memory
// none, pebble a store without early lock release, pebble-elr one with it;
// stop removes the store's directory.
func TestClusterStores(t *testing.T) {
	s := DefaultSettings()
	for _, tc := range []struct {
		store        Store
		durable, elr bool
	}{{"", false, false}, {StoreMemory, false, false}, {StorePebble, true, false}, {StorePebbleELR, true, true}} {
		cl, err := startCluster(s, Cell{Transport: TransportHTTP, Store: tc.store, Policy: PolicyWait, Order: OrderAscending, Skew: SkewHot, Servers: 1, Workers: 1, Legs: 2})
		if err != nil {
			t.Fatal(err)
		}
		dir := cl.storeDir
		if (cl.store != nil) != tc.durable || cl.bank.EarlyLockRelease() != tc.elr {
			t.Errorf("store %q: durable %v, early lock release %v; want %v, %v", tc.store, cl.store != nil, cl.bank.EarlyLockRelease(), tc.durable, tc.elr)
		}
		if err := cl.stop(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(dir); tc.durable && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("store %q: %s remains after stop: %v", tc.store, dir, err)
		}
	}
}

// readCSV reads the CSV file at path.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 300 {
		t.Errorf("%s: %v: too small", path, b)
	}
}

// TestJudgeFailsBadHistories feeds the verdict histories the real
// checkers must refuse, and one they must pass.
func TestJudgeFailsBadHistories(t *testing.T) {
	const header = `{"type":"header","version":2,"start":"2026-11-27T00:00:00Z","target":"business","accounts":2,"groups":0,"initial":[1000,1000],"covers":[1,2]}` + "\n"
	deposit := `{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":0,"ret":10,"result":"ok","saldo":1010}` + "\n"
	snapshot := func(saldos string) string {
		return `{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":` + saldos + "}\n"
	}
	s := DefaultSettings()
	for _, tc := range []struct {
		name, hist string
		conserved  bool
		proven     bool
		bank, lin  string
		reason     string
	}{
		{"good", header + deposit + snapshot("[1010,1000]"), true, true, "PASS", "PASS", ""},
		{"money lost", header + deposit + snapshot("[1000,1000]"), true, false, "FAIL", "FAIL", "money destroyed"},
		{"no snapshot", header + deposit, true, false, "UNKNOWN", "PASS", "no successful snapshot"},
		{"conservation failed", header + deposit + snapshot("[1010,1000]"), false, false, "PASS", "PASS", "conservation FAIL: money created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := check.Read(strings.NewReader(tc.hist))
			if err != nil {
				t.Fatal(err)
			}
			m := Measurement{History: h, Conservation: true, Conserved: tc.conserved, ConservationNote: "money created"}
			v := judge(m, s, 1, filepath.Join(t.TempDir(), "viz.html"))
			if v.Proven != tc.proven || v.Bank != tc.bank || v.Linearizability != tc.lin || !strings.Contains(v.Reason, tc.reason) || tc.proven != (v.Reason == "") {
				t.Errorf("verdict %+v; want proven %v, bank %s, linearizability %s, reason with %q", v, tc.proven, tc.bank, tc.lin, tc.reason)
			}
		})
	}
	h, _ := check.Read(strings.NewReader(header + deposit + snapshot("[1010,1000]")))
	if v := judge(Measurement{History: h}, s, 1, ""); v.Proven || v.Conservation != notRun || !strings.Contains(v.Reason, "conservation: not checked") {
		t.Errorf("no conservation check: %+v; want not proven", v)
	}
}

func TestGrids(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grid  Grid
		cells int
	}{
		// HTTP runs 2 legs, in-process 2 and 16.
		{"full", FullGrid(), len(Policies()) * 2 * 7 * 3},
		{"quick", QuickGrid(), len(Policies()) * 2 * 2 * 3},
	} {
		cells := tc.grid.Cells()
		if len(cells) != tc.cells {
			t.Errorf("%s: %d cells, want %d", tc.name, len(cells), tc.cells)
		}
		if err := tc.grid.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		seen := map[Cell]bool{}
		for _, c := range cells {
			if seen[c] {
				t.Errorf("%s: cell %s twice", tc.name, c)
			}
			seen[c] = true
			if _, err := loadgen.ParseDist(c.Skew.Spec); err != nil || !c.Transport.runs(c.Legs) {
				t.Errorf("%s: %s: %v, transport %q, %d legs", tc.name, c, err, c.Transport, c.Legs)
			}
		}
		// The policies of a condition run back to back.
		for i := 0; i+len(tc.grid.Policies) <= len(cells); i += len(tc.grid.Policies) {
			for j, p := range tc.grid.Policies {
				if c := cells[i+j]; c.Policy != p || c.condition() != cells[i].condition() {
					t.Fatalf("%s: cell %d is %s", tc.name, i+j, c)
				}
			}
		}
	}
	if err := (Grid{Policies: []Policy{"no-such"}, Orders: Orders, Skews: []Skew{SkewHot}, Servers: []int{1}, Workers: []int{1}}).Validate(); err == nil {
		t.Error("an unknown policy validated")
	}
	if err := (Grid{Policies: Policies(), Orders: Orders, Skews: []Skew{SkewHot}, Workers: []int{1}}).Validate(); err == nil {
		t.Error("a grid without servers validated")
	}
	one := Grid{Policies: Policies(), Orders: Orders, Skews: []Skew{SkewHot}, Servers: []int{1}, Workers: []int{1}}
	for name, g := range map[string]Grid{
		"16 legs over HTTP only": {Policies: one.Policies, Orders: one.Orders, Skews: one.Skews, Servers: one.Servers, Workers: one.Workers, Legs: []int{2, 16}},
		"17 legs":                {Transports: []Transport{TransportInprocess}, Policies: one.Policies, Orders: one.Orders, Skews: one.Skews, Servers: one.Servers, Workers: one.Workers, Legs: []int{17}},
		"a transport unknown":    {Transports: []Transport{"carrier-pigeon"}, Policies: one.Policies, Orders: one.Orders, Skews: one.Skews, Servers: one.Servers, Workers: one.Workers},
		"a store unknown":        {Stores: []Store{"tape"}, Policies: one.Policies, Orders: one.Orders, Skews: one.Skews, Servers: one.Servers, Workers: one.Workers},
	} {
		if err := g.Validate(); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
	if _, err := loadgen.ParseMix(DefaultSettings().Mix); err != nil {
		t.Error(err)
	}
}

func TestParseLists(t *testing.T) {
	sk, err := ParseSkews("uniform, zipf:0.5,zipf:0.99,hot:1:0.5")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range sk {
		got = append(got, s.Name()+"|"+s.ThetaText()+"|"+s.Label())
	}
	want := []string{"uniform|0|θ 0", "zipf 0.5|0.5|θ 0.5", "zipf 0.99|0.99|θ 0.99", "hot 1 @ 50%|–|hot 1 @ 50%"}
	if !slices.Equal(got, want) {
		t.Errorf("skews %q, want %q", got, want)
	}
	if z, err := ParseSkew("zipf:0"); err != nil || z != sk[0] {
		t.Errorf("zipf:0 is %+v, %v; want uniform", z, err)
	}
	if !math.IsNaN(sk[3].ThetaValue()) || sk[1].ThetaValue() != 0.5 {
		t.Errorf("theta values %v %v", sk[3].ThetaValue(), sk[1].ThetaValue())
	}
	for _, bad := range []string{"", "uniform,", "zipf", "zipf:-1", "hot:0:0.5", "uniform,zipf:0", "normal"} {
		if _, err := ParseSkews(bad); err == nil {
			t.Errorf("skews %q parsed", bad)
		}
	}
	if p, err := ParsePolicies("wait,fail-fast"); err != nil || !slices.Equal(p, []Policy{PolicyWait, PolicyFailFast}) {
		t.Errorf("policies %v, %v", p, err)
	}
	for _, bad := range []string{"", "wait,,fail-fast", "wait-dies", "wait,wait"} {
		if _, err := ParsePolicies(bad); err == nil {
			t.Errorf("policies %q parsed", bad)
		}
	}
	if st, err := ParseStores("pebble-elr,memory"); err != nil || !slices.Equal(st, []Store{StorePebbleELR, StoreMemory}) {
		t.Errorf("stores %v, %v", st, err)
	}
	for _, bad := range []string{"", "pebble,pebble", "disk"} {
		if _, err := ParseStores(bad); err == nil {
			t.Errorf("stores %q parsed", bad)
		}
	}
	if _, err := ParseOrders("ascending,random"); err == nil {
		t.Error("order random parsed")
	}
	if n, err := ParseCounts("1, 3,8", "servers", 64); err != nil || !slices.Equal(n, []int{1, 3, 8}) {
		t.Errorf("counts %v, %v", n, err)
	}
	for _, bad := range []string{"0", "-1", "x", "65", "3,3"} {
		if _, err := ParseCounts(bad, "servers", 64); err == nil {
			t.Errorf("counts %q parsed", bad)
		}
	}
}

func TestGroups(t *testing.T) {
	s := DefaultSettings()
	s.Accounts = 100
	for _, tc := range []struct{ workers, legs, want int }{
		{1, 2, 1}, {8, 2, 1}, {9, 2, 2}, {64, 2, 8}, {1000, 2, 50}, {64, 16, 6}, {1000, 16, 6},
	} {
		if g := s.Groups(tc.workers, tc.legs); g != tc.want {
			t.Errorf("%d workers, %d legs: %d groups, want %d", tc.workers, tc.legs, g, tc.want)
		}
	}
	s.WorkersPerGroup = 0
	if g := s.Groups(64, 2); g != 1 {
		t.Errorf("no grouping: %d groups", g)
	}
}

func TestServerConfigs(t *testing.T) {
	s := DefaultSettings()
	for _, tc := range []struct {
		p        Policy
		mode     business.LockMode
		bizTTL   time.Duration
		leaseOff bool
	}{
		{PolicyFailFast, business.ModeFailFast, 0, true},
		{PolicyWait, business.ModeWait, 0, true},
		{PolicyWaitLease, business.ModeWait, s.Lease, false},
	} {
		for _, o := range Orders {
			dc, bc, err := serverConfigs(s, Cell{Policy: tc.p, Order: o, Skew: SkewHot, Servers: 1, Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
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
	if _, _, err := serverConfigs(s, Cell{Policy: "no-such"}); err == nil {
		t.Error("an unknown policy configured servers")
	}
}

// TestReportsFailuresLoudly feeds the outputs a cell that failed its
// checks and one that could not run.
func TestReportsFailuresLoudly(t *testing.T) {
	c := Cell{Transport: TransportHTTP, Order: OrderAscending, Skew: mustSkew("uniform"), Servers: 3, Workers: 64, Legs: 2}
	ok := fakeResult(1, c, PolicyFailFast, 1000, 0.5)
	bad := fakeResult(2, c, PolicyWait, 2000, 0)
	bad.Verdict = Verdict{Bank: "FAIL", Linearizability: "PASS", Conservation: "PASS", History: "x-cell-2.jsonl",
		Reason: "bank FAIL: money created: the snapshot sums to 7 more"}
	broken := Result{Index: 3, Cell: c, Err: errors.New("starting the servers: boom"),
		Verdict: Verdict{Bank: notRun, Linearizability: notRun, Conservation: notRun, Reason: "starting the servers: boom"}}
	broken.Policy = PolicyWaitLease
	broken.rates()
	results := []Result{ok, bad, broken}
	meta := Meta{Name: "x", Command: "bank experiment", Date: time.Now(), Cells: 3, Settings: DefaultSettings(),
		Grid: Grid{Policies: Policies(), Orders: []Order{OrderAscending}, Skews: []Skew{c.Skew}, Servers: []int{3}, Workers: []int{64}}}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, meta, results); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"2 CELL(S) FAILED", "money created", "boom", "**FAILED in 2 of 3 cell(s)**", "`bank check x-cell-2.jsonl`",
		"| 2 | http | 2 | wait | ascending | uniform | 0 | 3 | 64 |", "**FAILED** |",
		"wait / fail-fast committed transactions per second: 2.00×",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("markdown lacks %q:\n%s", want, text)
		}
	}
	if l := line(bad); !strings.Contains(l, "FAILED !!! bank FAIL") {
		t.Errorf("the cell's line does not shout: %q", l)
	}
	if l := line(broken); !strings.Contains(l, "FAILED: could not run: starting the servers: boom") {
		t.Errorf("the cell's line: %q", l)
	}
	var csvOut, jsonOut bytes.Buffer
	if err := WriteCSV(&csvOut, results); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&jsonOut, meta, results); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&csvOut).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("CSV: %d rows, %v", len(rows), err)
	}
	var doc struct {
		Meta  map[string]any   `json:"meta"`
		Cells []map[string]any `json:"cells"`
	}
	if err := json.Unmarshal(jsonOut.Bytes(), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, jsonOut.String())
	}
	if doc.Meta["cells_failed"] != 2.0 || doc.Cells[1]["verdict"] != "FAILED" || doc.Cells[2]["error"] != "starting the servers: boom" ||
		doc.Cells[2]["attempts_per_commit"] != nil || doc.Cells[1]["aborts_per_commit"] != 0.0 {
		t.Errorf("JSON: meta %v\ncells %v", doc.Meta, doc.Cells)
	}
}

// TestPlotsBothOrders draws every figure, the order contrast included,
// from figures of both orders and two skews.
func TestPlotsBothOrders(t *testing.T) {
	var results []Result
	for _, o := range Orders {
		for _, sk := range []Skew{mustSkew("uniform"), mustSkew("zipf:0.9"), SkewHot} {
			for _, p := range Policies() {
				c := Cell{Transport: TransportHTTP, Order: o, Skew: sk, Servers: 3, Workers: 64}
				rate := int64(1000)
				if o == OrderRequest && p != PolicyFailFast {
					rate = 3
				}
				results = append(results, fakeResult(len(results)+1, c, p, rate, 0.2))
			}
		}
	}
	dir := t.TempDir()
	plots, err := WritePlots(dir, "both", results)
	if err != nil {
		t.Fatal(err)
	}
	if len(plots) != len(figures) {
		t.Fatalf("%d plots, want %d", len(plots), len(figures))
	}
	for _, pl := range plots {
		checkPNG(t, filepath.Join(dir, pl.File))
	}
}

func TestProgressBar(t *testing.T) {
	var bar, out bytes.Buffer
	p := newProgress(&bar, 2, time.Second)
	p.tty = true // as on a terminal
	c := Cell{Policy: PolicyWait, Order: OrderAscending, Skew: SkewHot, Servers: 1, Workers: 4}
	p.begin(0, c)
	p.print(&out, "line 1\n")
	p.begin(1, c)
	p.close()
	s := bar.String()
	for _, want := range []string{"\r[", "] 0/2", "] 1/2", "elapsed", "left", "wait/ascending/hot 1 @ 50%", "\r\x1b[K"} {
		if !strings.Contains(s, want) {
			t.Errorf("bar lacks %q: %q", want, s)
		}
	}
	if out.String() != "line 1\n" {
		t.Errorf("printed %q", out.String())
	}
}

func fakeResult(index int, c Cell, p Policy, okTransfers int64, abortShare float64) Result {
	c.Policy = p
	req := okTransfers * 2
	aborted := int64(abortShare * float64(req))
	rep := &loadgen.Report{
		DurationSeconds: 1, Requests: req, OK: req - aborted, ThroughputTotal: float64(req),
		Outcomes:     map[string]int64{labelOK: req - aborted, labelLocked: aborted},
		Ops:          map[string]loadgen.OpStats{"transferencia": {Requests: req, OK: okTransfers}},
		Latency:      loadgen.Latency{P50: 900, P99: 12_000, P999: 2_100_000},
		Conservation: &loadgen.Conservation{OK: true, Reason: "after == before + deposited - withdrawn"},
	}
	r := Result{Index: index, Cell: c, Ran: true,
		Verdict: Verdict{Proven: true, Bank: "PASS", Linearizability: "PASS", Conservation: "PASS"}}
	def, _ := p.def()
	r.derive(rep, def)
	return r
}
