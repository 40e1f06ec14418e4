package check_test

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/benchmarks/check"
)

// FuzzHistory: no input makes the parser or a checker panic. What Read
// accepts keeps the rules the checkers rely on: call <= ret, accounts
// within the covered ones, one balance per covered account in a snapshot,
// a move of 1 to MaxLegs legs on distinct accounts with deltas neither 0
// nor MinInt64 and, when ok, one balance per leg.
func FuzzHistory(f *testing.F) {
	const v2 = `{"type":"header","version":2,"start":"x","target":"business","accounts":2,"groups":2,"initial":[100,100],"covers":[1,2]}`
	const v1 = `{"type":"header","version":1,"start":"x","target":"business","accounts":2,"groups":0,"initial":[100,100]}`
	const v3 = `{"type":"header","version":3,"start":"x","target":"business","accounts":4,"groups":2,"initial":[100,100,100,100],"covers":[3,6]}`
	for _, lines := range [][]string{
		{v1, // the reproduction
			`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":50,"ret":20,"result":"ok","saldo":110}`,
			`{"type":"snapshot","client":-1,"call":60,"ret":70,"result":"ok","saldos":[110,100]}`},
		{v1,
			`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":0,"ret":10,"result":"ok","saldo":110}`,
			`{"type":"op","client":1,"op":"transferencia","a":1,"b":2,"amount":60,"call":5,"ret":40,"result":"unknown","status":0,"error":"timeout"}`,
			`{"type":"op","client":2,"op":"saque","a":2,"amount":500,"call":12,"ret":13,"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS"}`,
			`{"type":"op","client":3,"op":"saldo","a":2,"call":14,"ret":15,"result":"ok","saldo":100}`,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[110,100,7]}`},
		{v2,
			`{"type":"op","client":0,"op":"deposito","a":1,"amount":9223372036854775807,"call":0,"ret":10,"result":"ok","saldo":-9223372036854775709}`,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[9223372036854775807,9223372036854775807]}`,
			`{"type":"snapshot","client":-1,"call":31,"ret":32,"result":"fail","status":200,"error":"LOCKED_ACCOUNT"}`},
		{v2, `{"type":"op","client":0,"op":"saldo","a":2,"call":0,"ret":9223372036854775806,"result":"ok","saldo":100}`},
		{`{"type":"header","version":2,"start":"x","target":"business","accounts":3,"groups":0,"initial":null,"covers":[5,7]}`,
			`{"type":"op","client":0,"op":"transferencia","a":5,"b":7,"amount":1,"call":0,"ret":1,"result":"ok","saldo":-1,"saldo_b":-1}`},
		{v3,
			`{"type":"op","client":0,"op":"move","legs":[[3,-20],[4,20]],"call":0,"ret":10,"result":"ok","leg_saldos":[80,120]}`,
			`{"type":"op","client":1,"op":"move","legs":[[6,-300],[5,150],[6,150]],"call":2,"ret":8,"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS"}`,
			`{"type":"op","client":2,"op":"move","legs":[[5,-9223372036854775807],[6,9223372036854775807]],"call":3,"ret":12,"result":"unknown","status":0,"error":"timeout"}`,
			`{"type":"op","client":3,"op":"transferencia","a":5,"b":6,"amount":5,"call":4,"ret":9,"result":"ok","saldo":95,"saldo_b":105}`,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[80,120,95,105]}`},
		{v2, `{"type":"op","client":0,"op":"move","legs":[[1,-20],[2,20]],"call":0,"ret":10,"result":"ok","leg_saldos":[80,120]}`},
		{v2, v2},
		{`[]`},
		{``},
	} {
		f.Add([]byte(strings.Join(lines, "\n") + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := check.Read(bytes.NewReader(data))
		if err != nil {
			if h != nil {
				t.Fatalf("Read returned a history with its error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "line ") && !strings.HasPrefix(err.Error(), "empty history") {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		first, last := h.Header.Span()
		if last-first+1 != int64(h.Header.Accounts) {
			t.Fatalf("span %d..%d for %d accounts", first, last, h.Header.Accounts)
		}
		for _, e := range append(append([]check.Entry(nil), h.Ops...), h.Snapshots...) {
			if e.Call < 0 || e.Ret < e.Call {
				t.Fatalf("accepted %s", e)
			}
			if e.Type == check.TypeOp && e.Op != check.OpMove && (e.A < first || e.A > last || e.Op == check.OpTransferencia && (e.B < first || e.B > last || e.B == e.A)) {
				t.Fatalf("accepted %s", e)
			}
			if e.Type == check.TypeSnapshot && e.Result == check.ResultOK && len(e.Saldos) != h.Header.Accounts {
				t.Fatalf("accepted %s", e)
			}
			if e.Op != check.OpMove && (e.Legs != nil || e.LegSaldos != nil) {
				t.Fatalf("accepted %s", e)
			}
			if e.Op == check.OpMove && !validMove(e, first, last, h.Header.Version) {
				t.Fatalf("accepted %s", e)
			}
		}
		_ = check.Bank(h)
		_ = check.Linearizable(h, check.LinearOptions{Timeout: 200 * time.Millisecond, Visualization: filepath.Join(t.TempDir(), "h.html")})
	})
}

// validMove: e keeps the rules of a move (Read's, restated).
func validMove(e check.Entry, first, last int64, version int) bool {
	if version < 3 || len(e.Legs) == 0 || len(e.Legs) > check.MaxLegs || e.A != 0 || e.B != 0 || e.Amount != 0 ||
		e.Result == check.ResultOK && len(e.LegSaldos) != len(e.Legs) || e.Result != check.ResultOK && e.LegSaldos != nil {
		return false
	}
	seen := map[int64]bool{}
	for _, l := range e.Legs {
		if l.Conta < first || l.Conta > last || seen[l.Conta] || l.Delta == 0 || l.Delta == math.MinInt64 {
			return false
		}
		seen[l.Conta] = true
	}
	return true
}
