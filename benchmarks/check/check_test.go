package check_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
		t.Run(c.name, func(t *testing.T) { wantLinearizable(t, parse(t, c.lines...), c.ok) })
	}
}

// wantLinearizable checks h with Linearizable, which must find it
// linearizable or not as ok says, and write the visualization when not.
func wantLinearizable(t *testing.T, h *check.History, ok bool) {
	t.Helper()
	html := filepath.Join(t.TempDir(), "h.html")
	r := check.Linearizable(h, check.LinearOptions{Visualization: html})
	if r.OK != ok {
		t.Fatalf("OK = %v, want %v: %+v", r.OK, ok, r)
	}
	if !ok {
		if r.Visualization != html {
			t.Fatalf("no visualization: %+v", r)
		}
		if fi, err := os.Stat(html); err != nil || fi.Size() == 0 {
			t.Fatalf("visualization: %v", err)
		}
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

// TestReadRefusesMalformed: Read names the line of the first malformed
// record and says what is wrong; nothing is returned to a checker.
func TestReadRefusesMalformed(t *testing.T) {
	const hdr2 = `{"type":"header","version":2,"start":"x","target":"business","accounts":2,"groups":0,"initial":[100,100],"covers":[1,2]}`
	for _, c := range []struct {
		name, history, want string
	}{
		{"empty", "", "empty history: no header"},
		{"blank lines only", "\n \n\n", "empty history: no header"},
		// The reproduction: a deposit returned before it was invoked.
		{"ret before call", hdr2 + "\n" +
			`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":50,"ret":20,"result":"ok","saldo":110}` + "\n" +
			`{"type":"snapshot","client":-1,"call":60,"ret":70,"result":"ok","saldos":[110,100]}` + "\n", "line 2: ret 20 is before call 50"},
		{"line numbers count blank lines", "\n" + hdr2 + "\n\n" + `{"type":"op"}` + "\n", "line 4: "},
		{"missing header", `{"type":"snapshot","client":-1,"call":60,"ret":70,"result":"ok","saldos":[110,100]}` + "\n", "line 1: a record of type snapshot before the header"},
		{"duplicate header", hdr2 + "\n" + hdr2 + "\n", "line 2: a second header"},
		{"an error after valid lines", hdr2 + "\n" +
			`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":5,"ret":20,"result":"ok","saldo":110}` + "\n" +
			`{"type":"op","client":0,"op":"deposito","a":3,"amount":10,"call":5,"ret":20,"result":"ok","saldo":110}` + "\n", "line 3: a: 3 is out of range 1..2"},
		{"no final newline", hdr2 + "\n" + `{"type":"op","client":0}`, "line 2: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := check.Read(strings.NewReader(c.history))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Read: %v, %v; want an error with %q", h, err, c.want)
			}
		})
	}
}

// TestReadLineTooLong: a line past MaxLine is refused with its number and
// the reason (bufio.Scanner alone says only "token too long").
func TestReadLineTooLong(t *testing.T) {
	const hdr = `{"type":"header","version":2,"start":"x","target":"business","accounts":1,"groups":0,"initial":[1],"covers":[1,1]}` + "\n"
	long := io.MultiReader(strings.NewReader(hdr+"\n"), io.LimitReader(repeat('7'), check.MaxLine+1))
	_, err := check.Read(long)
	if err == nil || !strings.Contains(err.Error(), "line 3: longer than 64 MiB") {
		t.Fatalf("Read: %v", err)
	}
}

// repeat is an endless reader of one byte.
type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestBankExactSums: sums that would wrap in int64 are judged exactly.
func TestBankExactSums(t *testing.T) {
	const hdr3 = `{"type":"header","version":2,"start":"x","target":"business","accounts":3,"groups":0,"initial":[100,50,50],"covers":[1,3]}`
	const hdr2 = `{"type":"header","version":2,"start":"x","target":"business","accounts":2,"groups":0,"initial":[0,0],"covers":[1,2]}`
	for _, c := range []struct {
		name  string
		lines []string
		ok    bool
	}{
		// 2·MaxInt64 + 202 wraps to 200, the initial total.
		{"created money wrapping to the total", []string{hdr3,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[9223372036854775807,9223372036854775807,202]}`}, false},
		// Two concurrent deposits of MaxInt64: the upper bound is 2^64-2,
		// which wraps to -2 in int64 and would refuse a correct snapshot.
		{"concurrent deposits beyond int64", []string{hdr2,
			`{"type":"op","client":0,"op":"deposito","a":1,"amount":9223372036854775807,"call":0,"ret":40,"result":"ok","saldo":9223372036854775807}`,
			`{"type":"op","client":1,"op":"deposito","a":2,"amount":9223372036854775807,"call":0,"ret":40,"result":"ok","saldo":9223372036854775807}`,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[0,0]}`}, true},
		{"acknowledged deposits beyond int64", []string{hdr2,
			`{"type":"op","client":0,"op":"deposito","a":1,"amount":9223372036854775807,"call":0,"ret":10,"result":"ok","saldo":9223372036854775807}`,
			`{"type":"op","client":1,"op":"deposito","a":2,"amount":9223372036854775807,"call":0,"ret":10,"result":"ok","saldo":9223372036854775807}`,
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[9223372036854775807,9223372036854775807]}`}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := check.Read(strings.NewReader(strings.Join(c.lines, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			if r := check.Bank(h); r.OK != c.ok {
				t.Fatalf("OK = %v, want %v: %+v", r.OK, c.ok, r)
			}
		})
	}
}

// TestLinearizableNoWrap: a deposit answered with a wrapped balance is not
// explained by any order (the model adds exactly).
func TestLinearizableNoWrap(t *testing.T) {
	h, err := check.Read(strings.NewReader(
		`{"type":"header","version":2,"start":"x","target":"business","accounts":1,"groups":0,"initial":[9223372036854775807],"covers":[1,1]}` + "\n" +
			`{"type":"op","client":0,"op":"deposito","a":1,"amount":1,"call":0,"ret":10,"result":"ok","saldo":-9223372036854775808}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := check.Linearizable(h, check.LinearOptions{}); r.OK {
		t.Fatalf("a wrapped balance passed: %+v", r)
	}
}

// TestCoveredAccounts: the checkers judge the accounts the header covers,
// numbered as it says; a version 1 history covers 1..accounts and its
// snapshots' other balances are left out.
func TestCoveredAccounts(t *testing.T) {
	const v2 = `{"type":"header","version":2,"start":"x","target":"business","accounts":2,"groups":0,"initial":[100,100],"covers":[7,8]}`
	const v1 = `{"type":"header","version":1,"start":"x","target":"business","accounts":2,"groups":0,"initial":[100,100]}`
	ops := []string{
		`{"type":"op","client":0,"op":"deposito","a":%d,"amount":10,"call":0,"ret":10,"result":"ok","saldo":110}`,
		`{"type":"op","client":0,"op":"transferencia","a":%d,"b":%d,"amount":50,"call":11,"ret":15,"result":"ok","saldo":50,"saldo_b":160}`,
	}
	hist := func(hdr string, a, b int, snap string) string {
		return strings.Join([]string{hdr, fmt.Sprintf(ops[0], a), fmt.Sprintf(ops[1], b, a),
			`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":` + snap + `}`}, "\n")
	}
	for _, c := range []struct {
		name, history string
		ok            bool
		trimmed       int
	}{
		{"version 2, accounts 7..8", hist(v2, 7, 8, "[160,50]"), true, 0},
		{"version 2, a balance altered", hist(v2, 7, 8, "[160,51]"), false, 0},
		{"version 1 of a larger bank", hist(v1, 1, 2, "[160,50,1000,1000,1000]"), true, 1},
		{"version 1 of a larger bank, a covered balance altered", hist(v1, 1, 2, "[161,50,1000,1000,1000]"), false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := check.Read(strings.NewReader(c.history))
			if err != nil {
				t.Fatal(err)
			}
			if h.Trimmed != c.trimmed {
				t.Errorf("Trimmed = %d, want %d", h.Trimmed, c.trimmed)
			}
			for _, r := range []check.Result{check.Bank(h), check.Linearizable(h, check.LinearOptions{})} {
				if r.OK != c.ok {
					t.Errorf("%s: OK = %v, want %v: %+v", r.Name, r.OK, c.ok, r)
				}
			}
		})
	}
}
