package business_test

import (
	"encoding/json"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

const fuzzAccounts = 3

// fuzzSane are the statuses a business server may answer with a data
// server that keeps idempotency records (so never 501) and no bug (500).
var fuzzSane = map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 409: true,
	413: true, 422: true, 431: true, 503: true}

// FuzzBusiness sends up to 4 requests, built from fuzzed lines, through a
// business server's real handler (in-process, fasthttp.RequestCtx.Init)
// backed by a real data server on loopback (dataservertest, 3 accounts
// reset to 1000 before each input), and checks every answer: no panic (it
// would be a 500), a sane status, a JSON body with error_code and error on
// every non-2xx, no lock left held on the data server, and money: the
// total across accounts changes only by what a 200 answer (not a replay)
// reports — +valor for /deposito, -valor for /saque, nothing for a
// transfer or /saldo — with the balances it reports; any other answer
// changes no balance (a 503 whose commit's answer was lost may have
// applied the operation: it may change the total by that amount, or not).
//
// Each line of script is one request: its first byte picks the method (G
// GET, P POST, H HEAD, B a batch, anything else PUT), its second the
// token (c a client token, u an unknown one, anything else none), the
// rest is the request URI, or for B the body of a POST /transferencias.
// hdr holds extra "Name: value" header lines (such as Idempotency-Key)
// set after the token on every request of the input.
//
// A batch answered 200 must not change the total, and its results must
// be what applying its applied transfers in order, from the balances
// before, gives: each applied transfer's balances, and the balances
// after; a linked chain applied whole or not at all.
func FuzzBusiness(f *testing.F) {
	for _, s := range []string{
		"Gc/status",
		"Gc/saldo/1",
		"Gc/deposito/1/100",
		"Pc/saque/2/100",
		"Gc/saque/2/1001",
		"Gc/transferencia/1/2/500",
		"Gc/transferencia/3/1/1000\nGc/saldo/1",
		"Gc/transferencia/2/2/1",
		"Gc/deposito/1/9223372036854775807",
		"Gc/deposito/0/1",
		"Gc/deposito/4/1",
		"Gc/deposito/1/-5",
		"Gc/deposito/1/%2B5",
		"Gc/deposito/1/1/",
		"Gu/deposito/1/1",
		"Gn/saldo/1",
		"Hc/saldo/1",
		"Xc/deposito/1/1",
		"Gc/saque/1/0",
	} {
		f.Add(s, "")
	}
	f.Add("Gc/deposito/1/7\nGc/deposito/1/7\nGc/saque/1/7", "Idempotency-Key: fuzz-seed-1")
	f.Add("Gc/transferencia/1/2/10\nGc/transferencia/2/1/10", "Idempotency-Key: fuzz-seed-2")
	f.Add("Gc/saque/1/5000\nGc/saque/1/5000", "Idempotency-Key: fuzz-seed-3")
	f.Add("Gc/deposito/1/1", "Idempotency-Key: \x01bad")
	f.Add("Gc/deposito/1/1", "Idempotency-Key:")
	f.Add("Gu/deposito/1/1", "token: ba0f")
	f.Add(`Bc[{"conta_orig":1,"conta_dest":2,"valor":500},{"conta_orig":2,"conta_dest":3,"valor":2000,"linked":true},`+
		`{"conta_orig":3,"conta_dest":1,"valor":1},{"conta_orig":3,"conta_dest":3,"valor":1}]`, "")
	f.Add(`Bc[{"conta_orig":1,"conta_dest":2,"valor":1,"linked":true},{"conta_orig":2,"conta_dest":1,"valor":1,"linked":true}]`, "")
	f.Add(`Bc[{"conta_orig":1,"conta_dest":4,"valor":1},{"conta_orig":2,"conta_dest":1,"valor":9223372036854775807}]`, "")
	f.Add(`Bc[{"conta_orig":1,"conta_dest":2,"valor":1}]`, "Idempotency-Key: fuzz-seed-4")
	f.Add(`Bu[{"conta_orig":1,"conta_dest":2,"valor":1}]`, "")
	f.Add(`Bc[{"conta_orig":1,"conta_dest":2,"valor":1,"valor":2}]`, "")
	f.Add("Gc/transferencias", "")

	data := dataservertest.Start(f, dataservertest.Options{Accounts: fuzzAccounts})
	srv, err := business.New(business.Config{
		DataURL: data.URL, ServerToken: data.ServerToken, ID: "fuzz:5001",
		LockMode: business.ModeFailFast, DataTimeout: 5 * time.Second,
	})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()

	f.Fuzz(func(t *testing.T, script, hdr string) {
		defer fuzzWatchdog(60 * time.Second)()
		for id := int64(1); id <= fuzzAccounts; id++ {
			if _, err := data.Bank.Do(id, actors.Request{Op: actors.OpWrite, Holder: "fuzz-reset", Value: 1000}); err != nil {
				t.Fatalf("resetting account %d (a lock left held?): %v", id, err)
			}
		}
		lines := strings.Split(script, "\n")
		if len(lines) > 4 {
			lines = lines[:4]
		}
		for _, line := range lines {
			if len(line) < 2 {
				continue
			}
			before, _ := data.Balances(t)
			var req fasthttp.Request
			uri := line[2:]
			switch line[0] {
			case 'B':
				req.Header.SetMethod("POST")
				uri = business.RouteBatch
				req.SetBodyString(line[2:])
			case 'G':
				req.Header.SetMethod("GET")
			case 'P':
				req.Header.SetMethod("POST")
			case 'H':
				req.Header.SetMethod("HEAD")
			default:
				req.Header.SetMethod("PUT")
			}
			req.SetRequestURI(uri)
			switch line[1] {
			case 'c':
				req.Header.Set(wire.HeaderToken, token)
			case 'u':
				req.Header.Set(wire.HeaderToken, "nope")
			}
			for _, l := range strings.Split(hdr, "\n") {
				k, v, ok := strings.Cut(l, ":")
				if k = strings.TrimSpace(k); ok && k != "" {
					req.Header.Set(k, strings.TrimSpace(v))
				}
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
			h(&ctx)

			path := string(ctx.Path())
			status := ctx.Response.StatusCode()
			raw := ctx.Response.Body()
			replayed := string(ctx.Response.Header.Peek(wire.HeaderReplayed)) == "true"
			what := string(ctx.Method()) + " " + ctx.URI().String() + " (token " + string(ctx.Request.Header.Peek(wire.HeaderToken)) +
				", key " + string(ctx.Request.Header.Peek(wire.HeaderIdempotencyKey)) + ")"
			t.Logf("%s -> %d %s (replayed %v)", what, status, raw, replayed)
			if !fuzzSane[status] {
				t.Fatalf("%s: status %d: %s", what, status, raw)
			}
			var ans map[string]any
			if path == "/status" && status == 200 {
				if !strings.HasPrefix(string(ctx.Response.Header.ContentType()), "text/plain") {
					t.Fatalf("%s: /status answered %q", what, ctx.Response.Header.ContentType())
				}
			} else {
				if ct := string(ctx.Response.Header.ContentType()); ct != "application/json" {
					t.Fatalf("%s: status %d, content type %q: %s", what, status, ct, raw)
				}
				d := json.NewDecoder(strings.NewReader(string(raw)))
				d.UseNumber()
				if err := d.Decode(&ans); err != nil {
					t.Fatalf("%s: status %d, body not a JSON object: %q", what, status, raw)
				}
			}
			if status != 200 {
				if code, err := fuzzNum(ans["error_code"]); err != nil || code >= 0 {
					t.Fatalf("%s: status %d without a negative error_code: %s", what, status, raw)
				}
				if msg, ok := ans["error"].(string); !ok || msg == "" {
					t.Fatalf("%s: status %d without an error message: %s", what, status, raw)
				}
			} else if _, ok := ans["error_code"]; ok && !replayed {
				t.Fatalf("%s: 200 with an error_code: %s", what, raw)
			}

			after, holders := data.Balances(t)
			for id, h := range holders {
				if h != "" {
					t.Fatalf("%s: answered %d %s, but account %d is still locked by %q", what, status, raw, id+1, h)
				}
			}
			var total, totalBefore int64
			for i := range after {
				if after[i] < 0 {
					t.Fatalf("%s: account %d has a negative balance %d", what, i+1, after[i])
				}
				total += after[i]
				totalBefore += before[i]
			}
			delta := total - totalBefore
			changed := !fuzzEqual(before, after)

			// What the request asks, from its path.
			seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
			p := make([]int64, len(seg))
			for i := 1; i < len(seg); i++ {
				p[i], _ = wire.ParseInt([]byte(seg[i]))
			}
			var want int64 // the change of the total if the operation applied
			switch seg[0] {
			case "deposito":
				want = p[min(2, len(p)-1)]
			case "saque":
				want = -p[min(2, len(p)-1)]
			}
			switch {
			case status == 200 && !replayed:
				if delta != want {
					t.Fatalf("%s: answered %s, but the total changed by %d (balances %v -> %v)", what, raw, delta, before, after)
				}
				switch path {
				case "/status":
				case business.RouteBatch:
					fuzzCheckBatch(t, what, ctx.Request.Body(), ans, before, after)
				default:
					fuzzCheckReported(t, what, seg[0], p, ans, after)
				}
			case status == 503 && changed:
				if delta != want {
					t.Fatalf("%s: answered %d %s, but the total changed by %d (balances %v -> %v)", what, status, raw, delta, before, after)
				}
				t.Logf("%s: a 503 applied the operation (%v -> %v)", what, before, after)
			case changed:
				t.Fatalf("%s: answered %d %s (replayed %v), but the balances changed %v -> %v", what, status, raw, replayed, before, after)
			}
		}
	})
}

// fuzzCheckReported checks that a 200 answer reports the request's
// parameters and the balances the accounts now hold.
func fuzzCheckReported(t *testing.T, what, route string, p []int64, ans map[string]any, after []int64) {
	field := func(name string) int64 {
		n, err := fuzzNum(ans[name])
		if err != nil {
			t.Fatalf("%s: answer %v: %s: %v", what, ans, name, err)
		}
		return n
	}
	bal := func(id int64) int64 {
		if id < 1 || id > int64(len(after)) {
			t.Fatalf("%s: 200 for account %d, which does not exist", what, id)
		}
		return after[id-1]
	}
	switch route {
	case "deposito", "saque":
		if field("conta") != p[1] || field("valor") != p[2] || field("saldo") != bal(p[1]) || p[2] <= 0 {
			t.Fatalf("%s: answer %v, but the account holds %d", what, ans, bal(p[1]))
		}
	case "saldo":
		if field("conta") != p[1] || field("saldo") != bal(p[1]) {
			t.Fatalf("%s: answer %v, but the account holds %d", what, ans, bal(p[1]))
		}
	case "transferencia":
		if field("conta_orig") != p[1] || field("conta_dest") != p[2] || field("valor") != p[3] || p[3] <= 0 ||
			field("saldo_orig") != bal(p[1]) || field("saldo_dest") != bal(p[2]) || p[1] == p[2] {
			t.Fatalf("%s: answer %v, but the accounts hold %d and %d", what, ans, bal(p[1]), bal(p[2]))
		}
	default:
		t.Fatalf("%s: 200 from an unknown route: %v", what, ans)
	}
}

// fuzzCheckBatch checks a batch's 200 answer against its body and the
// balances before and after it: applying its applied transfers in order
// to before gives each one's balances, and after; the other transfers are
// refused with an error_code and a message; a linked chain is applied
// whole or not at all.
func fuzzCheckBatch(t *testing.T, what string, body []byte, ans map[string]any, before, after []int64) {
	var raw []struct {
		ContaOrig json.Number `json:"conta_orig"`
		ContaDest json.Number `json:"conta_dest"`
		Valor     json.Number `json:"valor"`
		Linked    bool        `json:"linked"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("%s: a batch answered 200, but its body is not JSON: %v", what, err)
	}
	type transfer struct {
		ContaOrig, ContaDest, Valor int64
		Linked                      bool
	}
	batch := make([]transfer, len(raw))
	for i, r := range raw {
		var err1, err2, err3 error
		batch[i].ContaOrig, err1 = r.ContaOrig.Int64()
		batch[i].ContaDest, err2 = r.ContaDest.Int64()
		batch[i].Valor, err3 = r.Valor.Int64()
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("%s: a batch answered 200 with a transfer that is not integers: %v", what, err)
		}
		batch[i].Linked = r.Linked
	}
	results, ok := ans["results"].([]any)
	if !ok || len(results) != len(batch) {
		t.Fatalf("%s: %d transfers, answer %v", what, len(batch), ans)
	}
	bal := append([]int64(nil), before...)
	var applied int64
	start := 0
	for i, tr := range batch {
		r, ok := results[i].(map[string]any)
		if !ok {
			t.Fatalf("%s: results[%d] = %v", what, i, results[i])
		}
		if _, refused := r["error_code"]; refused {
			if code, err := fuzzNum(r["error_code"]); err != nil || code >= 0 || len(r) != 2 {
				t.Fatalf("%s: results[%d] = %v", what, i, r)
			}
			if msg, ok := r["error"].(string); !ok || msg == "" {
				t.Fatalf("%s: results[%d] = %v", what, i, r)
			}
		} else {
			applied++
			if tr.ContaOrig < 1 || tr.ContaOrig > int64(len(bal)) || tr.ContaDest < 1 || tr.ContaDest > int64(len(bal)) ||
				tr.ContaOrig == tr.ContaDest || tr.Valor <= 0 {
				t.Fatalf("%s: results[%d] applied %+v", what, i, tr)
			}
			bal[tr.ContaOrig-1] -= tr.Valor
			bal[tr.ContaDest-1] += tr.Valor
			so, err1 := fuzzNum(r["saldo_orig"])
			sd, err2 := fuzzNum(r["saldo_dest"])
			if err1 != nil || err2 != nil || len(r) != 2 || so != bal[tr.ContaOrig-1] || sd != bal[tr.ContaDest-1] || so < 0 {
				t.Fatalf("%s: results[%d] = %v, but applying the batch in order gives %v", what, i, r, bal)
			}
		}
		if tr.Linked && i < len(batch)-1 {
			continue
		}
		_, first := results[start].(map[string]any)["error_code"]
		for j := start; j <= i; j++ {
			if _, refused := results[j].(map[string]any)["error_code"]; refused != first {
				t.Fatalf("%s: the chain %d..%d applied in part: %v", what, start, i, ans)
			}
		}
		start = i + 1
	}
	if n, err := fuzzNum(ans["applied"]); err != nil || n != applied || len(ans) != 2 {
		t.Fatalf("%s: answer %v, %d applied", what, ans, applied)
	}
	if !fuzzEqual(bal, after) {
		t.Fatalf("%s: applying the batch in order gives %v, the accounts hold %v", what, bal, after)
	}
}

func fuzzNum(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, &json.UnsupportedValueError{Str: "not a number"}
	}
	return n.Int64()
}

func fuzzEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fuzzWatchdog panics, with every goroutine's stack, if the input is not done
// within d: a hung request is a finding (the fuzzer reports it as a crash
// with its input). It returns the function that disarms it.
func fuzzWatchdog(d time.Duration) func() {
	t := time.AfterFunc(d, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic("input still running after " + d.String() + ":\n" + string(buf))
	})
	return func() { t.Stop() }
}
