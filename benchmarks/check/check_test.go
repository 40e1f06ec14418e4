package check_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

const header = `{"type":"header","version":1,"start":"2026-11-27T00:00:00Z","target":"business","accounts":2,"groups":0,"initial":[1000,1000]}` + "\n"

func parse(t *testing.T, lines ...string) *check.History {
	t.Helper()
	h, err := check.Read(strings.NewReader(header + strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLinearizableHandMade(t *testing.T) {
	for _, c := range []struct {
		name  string
		lines []string
		ok    bool
	}{
		{"sequential", []string{
			`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":0,"ret":10,"result":"ok","saldo":1010}`,
			`{"type":"op","client":1,"op":"saldo","a":1,"call":20,"ret":30,"result":"ok","saldo":1010}`,
		}, true},
		// The read began after the deposit was acknowledged, yet misses it.
		{"stale read", []string{
			`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":0,"ret":10,"result":"ok","saldo":1010}`,
			`{"type":"op","client":1,"op":"saldo","a":1,"call":20,"ret":30,"result":"ok","saldo":1000}`,
		}, false},
		{"concurrent read may miss it", []string{
			`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":0,"ret":25,"result":"ok","saldo":1010}`,
			`{"type":"op","client":1,"op":"saldo","a":1,"call":20,"ret":30,"result":"ok","saldo":1000}`,
		}, true},
		// A transfer seen half-done by a snapshot.
		{"torn snapshot", []string{
			`{"type":"op","client":0,"op":"transferencia","a":1,"b":2,"amount":100,"call":0,"ret":10,"result":"ok","saldo":900,"saldo_b":1100}`,
			`{"type":"snapshot","client":-1,"call":5,"ret":15,"result":"ok","saldos":[900,1000]}`,
		}, false},
		// An unknown outcome may have taken effect, or not.
		{"unknown applied", []string{
			`{"type":"op","client":0,"op":"saque","a":2,"amount":300,"call":0,"ret":10,"result":"unknown","status":0,"error":"timeout"}`,
			`{"type":"op","client":1,"op":"saldo","a":2,"call":20,"ret":30,"result":"ok","saldo":700}`,
		}, true},
		{"unknown not applied", []string{
			`{"type":"op","client":0,"op":"saque","a":2,"amount":300,"call":0,"ret":10,"result":"unknown","status":0,"error":"timeout"}`,
			`{"type":"op","client":1,"op":"saldo","a":2,"call":20,"ret":30,"result":"ok","saldo":1000}`,
		}, true},
		{"insufficient funds is an observation", []string{
			`{"type":"op","client":0,"op":"saque","a":1,"amount":500,"call":0,"ret":10,"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS"}`,
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			html := filepath.Join(t.TempDir(), "h.html")
			r := check.Linearizable(parse(t, c.lines...), check.LinearOptions{Visualization: html})
			if r.OK != c.ok {
				t.Fatalf("OK = %v, want %v: %+v", r.OK, c.ok, r)
			}
			if !c.ok {
				if r.Visualization != html {
					t.Fatalf("no visualization: %+v", r)
				}
				if fi, err := os.Stat(html); err != nil || fi.Size() == 0 {
					t.Fatalf("visualization: %v", err)
				}
			}
		})
	}
}

func TestBankHandMade(t *testing.T) {
	ok := parse(t,
		`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":0,"ret":10,"result":"ok","saldo":1010}`,
		`{"type":"op","client":1,"op":"saque","a":2,"amount":50,"call":12,"ret":40,"result":"unknown","status":0,"error":"timeout"}`,
		`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[1010,950]}`,
		`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[1010,1000]}`,
	)
	if r := check.Bank(ok); !r.OK {
		t.Fatalf("%+v", r)
	}
	lost := parse(t,
		`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":0,"ret":10,"result":"ok","saldo":1010}`,
		`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[1000,1000]}`,
	)
	r := check.Bank(lost)
	if r.OK || len(r.Violations) != 1 || !strings.Contains(r.Violations[0].Message, "money destroyed") {
		t.Fatalf("%+v", r)
	}
	neg := parse(t, `{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[2100,-100]}`)
	if r := check.Bank(neg); r.OK {
		t.Fatalf("negative balance passed: %+v", r)
	}
}

// record runs the load generator against a real bank whose data server
// handler is wrapped by wrap (nil: none) and returns the parsed history.
func record(t *testing.T, wrap func(fasthttp.RequestHandler) fasthttp.RequestHandler) *check.History {
	t.Helper()
	data := dataservertest.Start(t, dataservertest.Options{Wrap: wrap})
	var urls []string
	for range 2 {
		urls = append(urls, businesstest.Start(t, data, businesstest.Options{LockWait: 500 * time.Millisecond}).URL)
	}
	var buf bytes.Buffer
	rep, err := loadgen.Run(context.Background(), loadgen.Config{
		Servers: urls, Workers: 8, Duration: 400 * time.Millisecond, Groups: 2, NoCheck: true,
		History: &buf, SnapshotEvery: 20 * time.Millisecond, DataServer: data.URL, ServerToken: data.ServerToken,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.HistoryLines < 10 {
		t.Fatalf("history of %d lines", rep.HistoryLines)
	}
	h, err := check.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Snapshots) < 3 || len(h.Ops) < 10 {
		t.Fatalf("%d snapshots, %d ops", len(h.Snapshots), len(h.Ops))
	}
	return h
}

func TestRealBankPasses(t *testing.T) {
	h := record(t, nil)
	for _, r := range []check.Result{check.Bank(h), check.Linearizable(h, check.LinearOptions{Timeout: time.Minute})} {
		if !r.OK {
			t.Errorf("%s: %s %+v", r.Name, r.Verdict(), r)
		}
		t.Logf("%s: %s, %d entries in %v", r.Name, r.Verdict(), r.Checked, r.Duration)
	}
}

// TestLosingBankFails injects a fault into the data server: every tenth
// one-account commit (a deposit or withdrawal) writes one unit less than
// asked, and is answered 200 as if all went well.
func TestLosingBankFails(t *testing.T) {
	var commits atomic.Int64
	wrap := func(h fasthttp.RequestHandler) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			args := ctx.QueryArgs()
			if string(ctx.Path()) == wire.RouteCommit && len(args.PeekMulti(wire.ParamConta)) == 1 && commits.Add(1)%10 == 0 {
				if v, err := strconv.ParseInt(string(args.Peek(wire.ParamValor)), 10, 64); err == nil && v > 0 {
					args.Set(wire.ParamValor, strconv.FormatInt(v-1, 10))
				}
			}
			h(ctx)
		}
	}
	h := record(t, wrap)
	if commits.Load() < 10 {
		t.Skipf("only %d one-account commits: the fault never fired", commits.Load())
	}
	b := check.Bank(h)
	if b.OK || len(b.Violations) == 0 {
		t.Fatalf("bank checker passed a bank that loses money: %+v", b)
	}
	t.Logf("bank: %s: %s", b.Verdict(), b.Violations[0].Message)
	l := check.Linearizable(h, check.LinearOptions{Timeout: time.Minute})
	if l.OK {
		t.Fatalf("linearizability checker passed a bank that loses money: %+v", l)
	}
	t.Logf("linearizability: %s", l.Verdict())
}
