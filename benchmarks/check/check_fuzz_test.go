package check_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/benchmarks/check"
)

// FuzzHistory: no input makes the parser or a checker panic. What Read
// accepts keeps the rules the checkers rely on: call <= ret, accounts
// within the covered ones, one balance per covered account in a snapshot.
func FuzzHistory(f *testing.F) {
	const v2 = `{"type":"header","version":2,"start":"x","target":"business","accounts":2,"groups":2,"initial":[100,100],"covers":[1,2]}`
	const v1 = `{"type":"header","version":1,"start":"x","target":"business","accounts":2,"groups":0,"initial":[100,100]}`
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
			if e.Type == check.TypeOp && (e.A < first || e.A > last || e.Op == check.OpTransferencia && (e.B < first || e.B > last || e.B == e.A)) {
				t.Fatalf("accepted %s", e)
			}
			if e.Type == check.TypeSnapshot && e.Result == check.ResultOK && len(e.Saldos) != h.Header.Accounts {
				t.Fatalf("accepted %s", e)
			}
		}
		_ = check.Bank(h)
		_ = check.Linearizable(h, check.LinearOptions{Timeout: 200 * time.Millisecond, Visualization: filepath.Join(t.TempDir(), "h.html")})
	})
}
