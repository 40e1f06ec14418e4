package check_test

import (
	"encoding/json"
	"fmt"
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
