package check_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/loadgen"
)

// hdrMove is a version 3 header of three accounts of 1000, one group.
const hdrMove = `{"type":"header","version":3,"start":"x","target":"business","accounts":3,"groups":0,"initial":[1000,1000,1000],"covers":[1,3]}`

func parseMove(t *testing.T, lines ...string) *check.History {
	t.Helper()
	h, err := check.Read(strings.NewReader(hdrMove + "\n" + strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestLinearizableMoves: a move applies all its legs or none, at one
// point, answering every new balance; a refusal for insufficient funds is
// an observation; an unknown outcome may or may not have taken effect.
func TestLinearizableMoves(t *testing.T) {
	// m is the zero-sum move of the experiment, on three accounts: 1 pays
	// 100 to each of 2 and 3.
	const m = `{"type":"op","client":0,"op":"move","legs":[[1,-200],[2,100],[3,100]],"call":0,"ret":10,`
	const mOK = m + `"result":"ok","leg_saldos":[800,1100,1100]}`
	const mUnknown = m + `"result":"unknown","status":0,"error":"timeout"}`
	for _, c := range []struct {
		name  string
		lines []string
		ok    bool
	}{
		{"sequential", []string{mOK,
			`{"type":"op","client":1,"op":"saldo","a":3,"call":20,"ret":30,"result":"ok","saldo":1100}`,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[800,1100,1100]}`}, true},
		{"a move of non-zero sum", []string{
			`{"type":"op","client":0,"op":"move","legs":[[2,-30],[1,50]],"call":0,"ret":10,"result":"ok","leg_saldos":[970,1050]}`,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[1050,970,1000]}`}, true},
		// The move was acknowledged, but a later snapshot misses one leg.
		{"a lost leg", []string{mOK,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[800,1100,1000]}`}, false},
		{"a lost leg seen by a read", []string{mOK,
			`{"type":"op","client":1,"op":"saldo","a":3,"call":20,"ret":30,"result":"ok","saldo":1000}`}, false},
		{"a concurrent snapshot sees all", []string{mOK,
			`{"type":"snapshot","client":-1,"call":5,"ret":15,"result":"ok","saldos":[800,1100,1100]}`}, true},
		{"a concurrent snapshot sees nothing", []string{mOK,
			`{"type":"snapshot","client":-1,"call":5,"ret":15,"result":"ok","saldos":[1000,1000,1000]}`}, true},
		{"a torn move in a snapshot", []string{mOK,
			`{"type":"snapshot","client":-1,"call":5,"ret":15,"result":"ok","saldos":[800,1100,1000]}`}, false},
		// Two reads during the move: the first sees it applied, the second,
		// invoked after the first returned, sees it not applied.
		{"a torn move in reads", []string{mOK,
			`{"type":"op","client":1,"op":"saldo","a":1,"call":2,"ret":4,"result":"ok","saldo":800}`,
			`{"type":"op","client":1,"op":"saldo","a":3,"call":6,"ret":8,"result":"ok","saldo":1000}`}, false},
		{"reads during the move, in order", []string{mOK,
			`{"type":"op","client":1,"op":"saldo","a":3,"call":2,"ret":4,"result":"ok","saldo":1000}`,
			`{"type":"op","client":1,"op":"saldo","a":1,"call":6,"ret":8,"result":"ok","saldo":800}`}, true},
		{"a wrong answered balance", []string{
			m + `"result":"ok","leg_saldos":[800,1100,1050]}`}, false},
		{"answered balances out of leg order", []string{
			m + `"result":"ok","leg_saldos":[1100,1100,800]}`}, false},
		// Two concurrent moves from account 1, each answered as if it came
		// first: no order explains both.
		{"answers no order explains", []string{
			`{"type":"op","client":0,"op":"move","legs":[[1,-100],[2,100]],"call":0,"ret":10,"result":"ok","leg_saldos":[900,1100]}`,
			`{"type":"op","client":1,"op":"move","legs":[[1,-100],[3,100]],"call":0,"ret":10,"result":"ok","leg_saldos":[900,1100]}`}, false},
		{"answers of one order", []string{
			`{"type":"op","client":0,"op":"move","legs":[[1,-100],[2,100]],"call":0,"ret":10,"result":"ok","leg_saldos":[900,1100]}`,
			`{"type":"op","client":1,"op":"move","legs":[[1,-100],[3,100]],"call":0,"ret":10,"result":"ok","leg_saldos":[800,1100]}`}, true},
		{"acknowledged without the funds", []string{
			`{"type":"op","client":0,"op":"move","legs":[[1,-1500],[2,1500]],"call":0,"ret":10,"result":"ok","leg_saldos":[-500,2500]}`}, false},
		{"a refusal the balances explain", []string{
			`{"type":"op","client":0,"op":"move","legs":[[1,-1500],[2,750],[3,750]],"call":0,"ret":10,"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS"}`}, true},
		{"a refusal for a leg that is not the first", []string{
			`{"type":"op","client":0,"op":"move","legs":[[1,100],[2,-1001]],"call":0,"ret":10,"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS"}`}, true},
		{"a refusal no state explains", []string{
			`{"type":"op","client":0,"op":"move","legs":[[1,-500],[2,500]],"call":0,"ret":10,"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS"}`}, false},
		// The refusal is explained by the concurrent move that took 800.
		{"a refusal after a concurrent move", []string{
			`{"type":"op","client":0,"op":"move","legs":[[1,-800],[2,800]],"call":0,"ret":20,"result":"ok","leg_saldos":[200,1800]}`,
			`{"type":"op","client":1,"op":"move","legs":[[3,500],[1,-500]],"call":5,"ret":15,"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS"}`}, true},
		{"a refusal before the move that would explain it", []string{
			`{"type":"op","client":1,"op":"move","legs":[[3,500],[1,-500]],"call":0,"ret":4,"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS"}`,
			`{"type":"op","client":0,"op":"move","legs":[[1,-800],[2,800]],"call":5,"ret":20,"result":"ok","leg_saldos":[200,1800]}`}, false},
		// Other refusals say nothing.
		{"a refusal for another reason", []string{
			`{"type":"op","client":0,"op":"move","legs":[[1,-500],[2,500]],"call":0,"ret":10,"result":"fail","status":409,"error":"LOCKED_ACCOUNT"}`}, true},
		{"an unknown move applied", []string{mUnknown,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[800,1100,1100]}`}, true},
		{"an unknown move not applied", []string{mUnknown,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[1000,1000,1000]}`}, true},
		{"an unknown move applied in part", []string{mUnknown,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[800,1100,1000]}`}, false},
		{"an unknown move applied after a read missed it", []string{mUnknown,
			`{"type":"op","client":1,"op":"saldo","a":1,"call":20,"ret":30,"result":"ok","saldo":1000}`,
			`{"type":"op","client":1,"op":"saldo","a":2,"call":40,"ret":50,"result":"ok","saldo":1100}`}, true},
		{"an unknown move undone", []string{mUnknown,
			`{"type":"op","client":1,"op":"saldo","a":1,"call":20,"ret":30,"result":"ok","saldo":800}`,
			`{"type":"op","client":1,"op":"saldo","a":2,"call":40,"ret":50,"result":"ok","saldo":1000}`}, false},
		{"an unknown move that cannot apply", []string{
			`{"type":"op","client":0,"op":"move","legs":[[1,-1500],[2,1500]],"call":0,"ret":10,"result":"unknown","status":0,"error":"timeout"}`,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[-500,2500,1000]}`}, false},
		{"a move beside transfers", []string{mOK,
			`{"type":"op","client":1,"op":"transferencia","a":2,"b":3,"amount":100,"call":5,"ret":15,"result":"ok","saldo":1000,"saldo_b":1200}`,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[800,1000,1200]}`}, true},
		{"an overflowing leg answered", []string{
			`{"type":"op","client":0,"op":"move","legs":[[1,9223372036854775807],[2,-1]],"call":0,"ret":10,"result":"ok","leg_saldos":[-9223372036854774809,999]}`}, false},
	} {
		t.Run(c.name, func(t *testing.T) { wantLinearizable(t, parseMove(t, c.lines...), c.ok) })
	}
}

// TestLinearizableMalformedMoves: a history built in memory, which Read
// never saw, may hold a move Read would refuse: the checker reports it
// (a move crossing groups as a transfer crossing them), and never panics.
func TestLinearizableMalformedMoves(t *testing.T) {
	hdr := check.Header{Type: check.TypeHeader, Version: 3, Accounts: 4, Groups: 2, Initial: []int64{100, 100, 100, 100}, Covers: []int64{1, 4}}
	mv := func(res string, saldos []int64, legs ...check.Leg) check.Entry {
		return check.Entry{Type: check.TypeOp, Op: check.OpMove, Legs: legs, Call: 0, Ret: 10, Result: res, LegSaldos: saldos, Line: 2}
	}
	many := make([]check.Leg, check.MaxLegs+1)
	for i := range many {
		many[i] = check.Leg{Conta: 1, Delta: 1}
	}
	for _, c := range []struct {
		name string
		e    check.Entry
		want string
	}{
		{"across groups", mv(check.ResultOK, []int64{90, 110}, check.Leg{1, -10}, check.Leg{3, 10}), "legs[1]: account 3 (group 1) in a move of account 1 (group 0)"},
		{"across groups, unknown", mv(check.ResultUnknown, nil, check.Leg{4, -10}, check.Leg{2, 10}), "legs[1]: account 2 (group 0) in a move of account 4 (group 1)"},
		{"outside the covered accounts", mv(check.ResultOK, []int64{90}, check.Leg{5, -10}), "legs[0]: account 5 is out of range 1..4"},
		{"no legs", mv(check.ResultOK, nil), "legs: 0 legs"},
		{"too many legs", mv(check.ResultUnknown, nil, many...), "legs: 17 legs"},
		{"an account twice", mv(check.ResultOK, []int64{90, 80}, check.Leg{1, -10}, check.Leg{1, -10}), "legs[1]: account 1 again"},
		{"a zero delta", mv(check.ResultOK, []int64{90, 100}, check.Leg{1, -10}, check.Leg{2, 0}), "legs[1]: delta 0"},
		{"a MinInt64 delta", mv(check.ResultUnknown, nil, check.Leg{1, math.MinInt64}), "legs[0]: delta -9223372036854775808"},
		{"balances not one per leg", mv(check.ResultOK, []int64{90}, check.Leg{1, -10}, check.Leg{2, 10}), "a move of 2 legs answered 1 balances"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &check.History{Header: hdr, Ops: []check.Entry{c.e}}
			r := check.Linearizable(h, check.LinearOptions{})
			if r.OK || len(r.Violations) != 1 || !strings.Contains(r.Violations[0].Message, c.want) {
				t.Fatalf("%+v, want a violation with %q", r, c.want)
			}
			_ = check.Bank(h)
		})
	}
	// The same move within a group passes.
	ok := &check.History{Header: hdr, Ops: []check.Entry{mv(check.ResultOK, []int64{90, 110}, check.Leg{3, -10}, check.Leg{4, 10})}}
	if r := check.Linearizable(ok, check.LinearOptions{}); !r.OK {
		t.Fatalf("%+v", r)
	}
}

// TestBankMoves: a move whose deltas sum to zero moves no money, even
// while a snapshot is read; one of another sum is a deposit (or a
// withdrawal) of it.
func TestBankMoves(t *testing.T) {
	const snap = `{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":`
	const zero = `{"type":"op","client":0,"op":"move","legs":[[1,-200],[2,100],[3,100]],`
	const plus = `{"type":"op","client":0,"op":"move","legs":[[1,-100],[2,150],[3,50]],` // +100
	const minus = `{"type":"op","client":0,"op":"move","legs":[[1,-100],[2,40]],`        // -60
	const before = `"call":0,"ret":10,"result":"ok","leg_saldos":`
	const during = `"call":15,"ret":25,"result":"ok","leg_saldos":`
	const unknown = `"call":15,"ret":16,"result":"unknown","status":0,"error":"timeout"}`
	for _, c := range []struct {
		name  string
		lines []string
		ok    bool
		want  string // a part of the violation, when not ok
	}{
		{"zero sum, acknowledged before", []string{zero + before + `[800,1100,1100]}`, snap + `[800,1100,1100]}`}, true, ""},
		{"zero sum, money created", []string{zero + before + `[800,1100,1100]}`, snap + `[800,1100,1200]}`}, false, "money created"},
		// A zero-sum move concurrent with the snapshot does not widen its
		// bounds: the snapshot must sum to the initial total exactly.
		{"zero sum, concurrent", []string{zero + during + `[800,1100,1100]}`, snap + `[800,1100,1000]}`}, false, "money destroyed"},
		{"zero sum, unknown", []string{zero + unknown, snap + `[1000,1100,1100]}`}, false, "money created"},
		{"zero sum, unknown, a snapshot of it", []string{zero + unknown, snap + `[800,1100,1100]}`}, true, ""},
		{"positive sum, acknowledged before", []string{plus + before + `[900,1150,1050]}`, snap + `[900,1150,1050]}`}, true, ""},
		{"positive sum, acknowledged before, not seen", []string{plus + before + `[900,1150,1050]}`, snap + `[1000,1000,1000]}`}, false, "money destroyed"},
		{"positive sum, concurrent, seen", []string{plus + during + `[900,1150,1050]}`, snap + `[900,1150,1050]}`}, true, ""},
		{"positive sum, concurrent, not seen", []string{plus + during + `[900,1150,1050]}`, snap + `[1000,1000,1000]}`}, true, ""},
		{"positive sum, concurrent, seen twice", []string{plus + during + `[900,1150,1050]}`, snap + `[1000,1150,1050]}`}, false, "money created"},
		{"positive sum, unknown", []string{plus + unknown, snap + `[1000,1100,1000]}`}, true, ""},
		{"positive sum, unknown, more", []string{plus + unknown, snap + `[1000,1101,1000]}`}, false, "money created"},
		{"negative sum, acknowledged before", []string{minus + before + `[900,1040]}`, snap + `[900,1040,1000]}`}, true, ""},
		{"negative sum, acknowledged before, not seen", []string{minus + before + `[900,1040]}`, snap + `[1000,1000,1000]}`}, false, "money created"},
		{"negative sum, unknown", []string{minus + unknown, snap + `[940,1000,1000]}`}, true, ""},
		{"negative sum, unknown, less", []string{minus + unknown, snap + `[939,1000,1000]}`}, false, "money destroyed"},
		{"refused", []string{`{"type":"op","client":0,"op":"move","legs":[[1,-100],[2,150]],"call":15,"ret":25,"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS"}`, snap + `[1000,1050,1000]}`}, false, "money created"},
		{"a negative answered balance", []string{`{"type":"op","client":0,"op":"move","legs":[[1,-1100],[2,1100]],` + before + `[-100,2100]}`, snap + `[1000,1000,1000]}`}, false, "answered a negative balance"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := check.Bank(parseMove(t, c.lines...))
			if r.OK != c.ok {
				t.Fatalf("OK = %v, want %v: %+v", r.OK, c.ok, r)
			}
			if !c.ok && (len(r.Violations) == 0 || !strings.Contains(r.Violations[0].Message, c.want)) {
				t.Fatalf("want a violation with %q: %+v", c.want, r)
			}
		})
	}
}

// TestBankMoveBeyondInt64: a move's deltas may sum past an int64; the sum
// is exact.
func TestBankMoveBeyondInt64(t *testing.T) {
	const hdr = `{"type":"header","version":3,"start":"x","target":"business","accounts":3,"groups":0,"initial":[0,0,0],"covers":[1,3]}`
	const move = `{"type":"op","client":0,"op":"move","legs":[[1,9223372036854775807],[2,9223372036854775807],[3,9223372036854775806]],`
	const snap = `{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":`
	for _, c := range []struct {
		name  string
		lines []string
		ok    bool
	}{
		{"acknowledged, seen", []string{move + `"call":0,"ret":10,"result":"ok","leg_saldos":[9223372036854775807,9223372036854775807,9223372036854775806]}`,
			snap + `[9223372036854775807,9223372036854775807,9223372036854775806]}`}, true},
		{"acknowledged, a unit missing", []string{move + `"call":0,"ret":10,"result":"ok","leg_saldos":[9223372036854775807,9223372036854775807,9223372036854775806]}`,
			snap + `[9223372036854775807,9223372036854775807,9223372036854775805]}`}, false},
		{"unknown, seen", []string{move + `"call":0,"ret":10,"result":"unknown","status":0,"error":"timeout"}`,
			snap + `[9223372036854775807,9223372036854775807,9223372036854775806]}`}, true},
		{"unknown, a unit more", []string{move + `"call":0,"ret":10,"result":"unknown","status":0,"error":"timeout"}`,
			snap + `[9223372036854775807,9223372036854775807,9223372036854775807]}`}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := check.Read(strings.NewReader(hdr + "\n" + strings.Join(c.lines, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			if r := check.Bank(h); r.OK != c.ok {
				t.Fatalf("OK = %v, want %v: %+v", r.OK, c.ok, r)
			}
		})
	}
}

// TestReadRefusesMalformedMoves: Read names the line of a malformed move.
func TestReadRefusesMalformedMoves(t *testing.T) {
	const hdr2 = `{"type":"header","version":2,"start":"x","target":"business","accounts":4,"groups":2,"initial":[100,100,100,100],"covers":[1,4]}`
	const hdr3 = `{"type":"header","version":3,"start":"x","target":"business","accounts":4,"groups":2,"initial":[100,100,100,100],"covers":[1,4]}`
	const good = `{"type":"op","client":0,"op":"move","legs":[[1,-10],[2,10]],"call":0,"ret":10,"result":"ok","leg_saldos":[90,110]}`
	for _, c := range []struct {
		name, history, want string
	}{
		{"a move in version 2", hdr2 + "\n" + good + "\n", `line 2: op: "move" is not an op of a version 2 history`},
		{"a move across groups", hdr3 + "\n" + good + "\n\n" +
			`{"type":"op","client":0,"op":"move","legs":[[1,-10],[3,10]],"call":0,"ret":10,"result":"ok","leg_saldos":[90,110]}` + "\n",
			"line 4: legs[1]: account 3 (group 1) in a move of account 1 (group 0)"},
		{"an uncovered account", hdr3 + "\n" + good + "\n" +
			`{"type":"op","client":0,"op":"move","legs":[[5,-10]],"call":0,"ret":10,"result":"ok","leg_saldos":[90]}` + "\n",
			"line 3: legs[0]: account 5 is out of range 1..4"},
		{"a missing balance", hdr3 + "\n" +
			`{"type":"op","client":0,"op":"move","legs":[[1,-10],[2,10]],"call":0,"ret":10,"result":"ok","leg_saldos":[90]}` + "\n" + good + "\n",
			"line 2: leg_saldos: 1 balances for 2 legs"},
		{"a zero delta", hdr3 + "\n" + good + "\n" + good + "\n" +
			`{"type":"op","client":0,"op":"move","legs":[[1,0]],"call":0,"ret":10,"result":"unknown","status":0,"error":"timeout"}` + "\n",
			"line 4: legs[0]: delta 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := check.Read(strings.NewReader(c.history))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Read: %v, %v; want an error with %q", h, err, c.want)
			}
		})
	}
}

// TestMoveEntryJSON: a move's entry renders its legs as the history line
// has them.
func TestMoveEntryJSON(t *testing.T) {
	h := parseMove(t, `{"type":"op","client":0,"op":"move","legs":[[1,-200],[2,100],[3,100]],"call":0,"ret":10,"result":"ok","leg_saldos":[800,1100,1100]}`)
	got := h.Ops[0].String()
	const want = `line 2: {"type":"op","client":0,"op":"move","call":0,"ret":10,"result":"ok","legs":[[1,-200],[2,100],[3,100]],"leg_saldos":[800,1100,1100]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	var v struct{ Legs [][2]int64 }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(got, "line 2: ")), &v); err != nil || len(v.Legs) != 3 || v.Legs[2] != [2]int64{3, 100} {
		t.Fatalf("%v %+v", err, v)
	}
}

// TestMaxLegs: a history's moves have at most the legs the bank's Move
// takes.
func TestMaxLegs(t *testing.T) {
	if check.MaxLegs != teller.MaxLegs {
		t.Fatalf("check.MaxLegs %d, teller.MaxLegs %d", check.MaxLegs, teller.MaxLegs)
	}
	if (check.Leg(teller.Leg{Conta: 3, Delta: -4})) != (check.Leg{Conta: 3, Delta: -4}) {
		t.Fatal("a teller.Leg does not convert")
	}
}

// TestVersions: Read reads every version up to loadgen.HistoryVersion, the
// newest, and no later one.
func TestVersions(t *testing.T) {
	for v := 1; v <= loadgen.HistoryVersion+1; v++ {
		covers := `,"covers":[1,1]`
		if v == 1 {
			covers = ""
		}
		_, err := check.Read(strings.NewReader(fmt.Sprintf(`{"type":"header","version":%d,"start":"x","target":"business","accounts":1,"groups":0,"initial":[1]%s}`, v, covers)))
		if v <= loadgen.HistoryVersion && err != nil {
			t.Errorf("version %d: %v", v, err)
		}
		if v > loadgen.HistoryVersion && err == nil {
			t.Errorf("version %d read", v)
		}
	}
}

// TestLinearHistory: the benchmark's histories are linearizable and pass
// the bank checker, and one answer altered makes them not: the benchmark
// measures a real search.
func TestLinearHistory(t *testing.T) {
	for _, legs := range []int{2, check.MaxLegs} {
		h := linearHistory(1000, legs)
		if r, b := check.Linearizable(h, check.LinearOptions{}), check.Bank(h); !r.OK || !b.OK {
			t.Fatalf("%d legs: %+v %+v", legs, r, b)
		}
		e := &h.Ops[len(h.Ops)/2]
		if legs == 2 {
			e.SaldoB++
		} else {
			e.LegSaldos[legs-1]++
		}
		if r := check.Linearizable(h, check.LinearOptions{}); r.OK {
			t.Fatalf("%d legs: an altered answer passed", legs)
		}
	}
}
