package dataserver_test

import (
	"encoding/json"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/http/auth"
	"github.com/bank/gobank/http/dataserver"
	"github.com/bank/gobank/http/wire"
)

const (
	fuzzServerToken = "fuzz-server-credential"
	fuzzAccounts    = 3
)

// fuzzSane are the statuses a data server may answer a request with.
var fuzzSane = map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 409: true,
	413: true, 422: true, 431: true, 503: true}

// FuzzDataServer sends up to 6 requests, built from fuzzed lines, through
// the data server's real handler (a real actors.Bank with store.Memory,
// in-process, with fasthttp.RequestCtx.Init), and checks every answer: no
// panic (the router turns one into 500, which is refused here), a sane
// status, a JSON body —
// with error_code and error on every non-2xx — and that money moves only the ways the contract allows: a balance changes
// only through a successful /setSaldo or /commit with the server
// credential, and then exactly to the valor it names; fences answered by
// /getLock never decrease per account; no balance is ever negative.
//
// FENCE1, FENCE2 and FENCE3 in a line stand for the current (or last)
// fence of that account.
//
// Each line of script is one request: its first byte picks the method (G
// GET, P POST, H HEAD, anything else PUT), its second the token (s server,
// c client, u unknown, anything else none), the rest is the request URI.
// hdr holds extra "Name: value" header lines, set after the token, for
// every request; body is the body of every POST. Account 2 is locked by
// "other" (a one-minute lease) before the first request.
func FuzzDataServer(f *testing.F) {
	for _, s := range []string{
		"Gn/status",
		"Gc/autentica?id_negoc=x",
		"Gs/getSaldo?id_negoc=A&conta=1",
		"Gs/setSaldo?id_negoc=A&conta=1&valor=5\nGs/getSaldo?conta=1",
		"Gc/setSaldo?id_negoc=A&conta=1&valor=5",
		"Gs/setSaldo?id_negoc=A&conta=2&valor=5",
		"Gs/setSaldo?id_negoc=other&conta=2&valor=7&fence=FENCE2",
		"Gs/getLock?id_negoc=A&conta=1&ttl=1s\nGs/setSaldo?id_negoc=A&conta=1&valor=9&fence=FENCE1\nGs/unLock?id_negoc=A&conta=1&fence=FENCE1",
		"Gs/getLock?id_negoc=A&conta=2&wait=5ms",
		"Gs/getLock?id_negoc=A&conta=1&wait=1h&ttl=-1s",
		"Gs/getLock?id_negoc=A&conta=1\nGs/getLock?id_negoc=A&conta=3\nPs/commit?id_negoc=A&unlock=1&conta=1&valor=1&fence=FENCE1&conta=3&valor=1999&fence=FENCE3",
		"Ps/commit?id_negoc=other&conta=2&valor=0&fence=FENCE2&key=k1&fingerprint=f&status=200\nPs/commit?id_negoc=other&conta=2&valor=1&fence=FENCE2&key=k1&fingerprint=f&status=200",
		"Ps/idem?id_negoc=A&key=k&fingerprint=deposito/1/1&status=404\nGs/idem?key=k",
		"Gs/setLock?id_negoc=A&id_negoc=B&conta=1",
		"Xs/getSaldo?conta=1",
		"Gs/getSaldo/?conta=1",
		"Gs/commit?id_negoc=other&conta=2&valor=1&fence=FENCE2&conta=2&valor=2&fence=FENCE2",
	} {
		f.Add(s, "", []byte(`{"saldo":1}`))
	}
	f.Add("Gs/getSaldo?conta=1", "token: nope", []byte{})
	f.Add("Gu/setSaldo?id_negoc=A&conta=1&valor=5", "Token: "+fuzzServerToken, []byte{})

	// One bank for every input: an actors.Bank costs megabytes (its actor
	// system's registry), too much to build per input. Each input starts
	// from the same state: fuzzBalances 1000, every lock released, account 2
	// locked by "other", and a fresh record store.
	st := &fuzzSwapStore{}
	st.mem.Store(store.NewMemory())
	bank, err := actors.New(actors.Config{Accounts: fuzzAccounts, InitialBalance: 1000, Synchronous: true, Store: st})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(bank.Close)
	tokens, err := auth.NewTokens(auth.DefaultClientTokens...)
	if err != nil {
		f.Fatal(err)
	}
	ds, err := dataserver.New(dataserver.Config{
		Accounts: bank, ClientTokens: tokens, ServerToken: fuzzServerToken, Records: st,
		MaxLockWait: 20 * time.Millisecond, MaxLockTTL: time.Hour,
	})
	if err != nil {
		f.Fatal(err)
	}
	h := ds.Handler()
	fences := make([]float64, fuzzAccounts+1) // the largest fence granted per account

	f.Fuzz(func(t *testing.T, script, hdr string, body []byte) {
		defer fuzzWatchdog(20 * time.Second)()
		st.mem.Store(store.NewMemory())
		fuzzReset(t, bank)
		if _, err := bank.Do(2, actors.Request{Op: actors.OpLock, Holder: "other", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(script, "\n")
		if len(lines) > 6 {
			lines = lines[:6]
		}
		for _, line := range lines {
			if len(line) < 2 {
				continue
			}
			before := fuzzBalances(t, bank)
			var req fasthttp.Request
			req.Header.SetMethod(map[byte]string{'G': "GET", 'P': "POST", 'H': "HEAD"}[line[0]])
			if line[0] != 'G' && line[0] != 'P' && line[0] != 'H' {
				req.Header.SetMethod("PUT")
			}
			req.SetRequestURI(fuzzWithFences(t, bank, line[2:]))
			switch line[1] {
			case 's':
				req.Header.Set(wire.HeaderToken, fuzzServerToken)
			case 'c':
				req.Header.Set(wire.HeaderToken, "ba0f")
			case 'u':
				req.Header.Set(wire.HeaderToken, "nope")
			}
			fuzzSetHeaders(&req, hdr)
			if req.Header.IsPost() {
				req.SetBody(body)
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
			h(&ctx)

			path := string(ctx.Path())
			status := ctx.Response.StatusCode()
			raw := ctx.Response.Body()
			what := string(ctx.Method()) + " " + ctx.URI().String() + " (token " + string(ctx.Request.Header.Peek(wire.HeaderToken)) + ")"
			t.Logf("%s -> %d %s", what, status, raw)
			if !fuzzSane[status] {
				t.Fatalf("%s: status %d: %s", what, status, raw)
			}
			var ans map[string]any
			if path == wire.RouteStatus && status == 200 {
				if !strings.HasPrefix(string(ctx.Response.Header.ContentType()), "text/plain") {
					t.Fatalf("%s: /status answered %q", what, ctx.Response.Header.ContentType())
				}
			} else {
				if ct := string(ctx.Response.Header.ContentType()); ct != "application/json" {
					t.Fatalf("%s: status %d, content type %q: %s", what, status, ct, raw)
				}
				if err := json.Unmarshal(raw, &ans); err != nil {
					t.Fatalf("%s: status %d, body not a JSON object: %q", what, status, raw)
				}
			}
			_, refused := ans["error_code"]
			if status != 200 || refused {
				if code, ok := ans["error_code"].(float64); !ok || code >= 0 {
					t.Fatalf("%s: status %d without a negative error_code: %s", what, status, raw)
				}
				if msg, ok := ans["error"].(string); !ok || msg == "" {
					t.Fatalf("%s: status %d without an error message: %s", what, status, raw)
				}
			}

			after := fuzzBalances(t, bank)
			server := string(ctx.Request.Header.Peek(wire.HeaderToken)) == fuzzServerToken
			success := status == 200 && !refused && server
			_, replayed := ans["found"]
			named := fuzzNamedValues(&ctx)
			for id := 1; id <= fuzzAccounts; id++ {
				if after[id] < 0 {
					t.Fatalf("%s: account %d has a negative balance %d", what, id, after[id])
				}
				if after[id] == before[id] {
					continue
				}
				valor, ok := named[int64(id)]
				switch {
				case !success || replayed || (path != wire.RouteSetSaldo && path != wire.RouteCommit):
					t.Fatalf("%s: answered %d %s, but account %d changed %d -> %d", what, status, raw, id, before[id], after[id])
				case !ok || valor != after[id]:
					t.Fatalf("%s: account %d changed %d -> %d, not to a valor the request names (%v)", what, id, before[id], after[id], named)
				}
			}
			if success && !replayed && (path == wire.RouteSetSaldo || path == wire.RouteCommit) {
				for id, valor := range named {
					if id >= 1 && id <= fuzzAccounts && after[id] != valor {
						t.Fatalf("%s: answered %s, but account %d holds %d, not %d", what, raw, id, after[id], valor)
					}
				}
			}
			if path == wire.RouteGetLock && success {
				conta, _ := wire.ParseInt(ctx.QueryArgs().Peek(wire.ParamConta))
				fence, ok := ans["fence"].(float64)
				if !ok || conta < 1 || conta > fuzzAccounts || fence < fences[conta] || fence < 1 {
					t.Fatalf("%s: grant %s after a fence %v", what, raw, fences[max(0, min(conta, fuzzAccounts))])
				}
				fences[conta] = fence
			}
		}
	})
}

// fuzzSwapStore is a store whose memory is replaced for every input.
type fuzzSwapStore struct{ mem atomic.Pointer[store.Memory] }

func (s *fuzzSwapStore) Accounts() (map[int64]int64, error) { return s.mem.Load().Accounts() }
func (s *fuzzSwapStore) NextEpoch() (uint64, error)         { return s.mem.Load().NextEpoch() }
func (s *fuzzSwapStore) Commit(w []store.Write, r *store.Record) error {
	return s.mem.Load().Commit(w, r)
}
func (s *fuzzSwapStore) Record(key string) (store.Record, bool, error) {
	return s.mem.Load().Record(key)
}

// fuzzReset releases every lock (its holder unlocks, until no waiter is left)
// and sets every balance back to 1000.
func fuzzReset(t *testing.T, bank *actors.Bank) {
	for id := int64(1); id <= fuzzAccounts; id++ {
		for i := 0; ; i++ {
			r, err := bank.Do(id, actors.Request{Op: actors.OpRead})
			if err != nil {
				t.Fatal(err)
			}
			if r.Holder == "" && r.Waiting == 0 {
				break
			}
			if i > 1000 {
				t.Fatalf("account %d stays locked: %+v", id, r)
			}
			if r.Holder != "" {
				if _, err := bank.Do(id, actors.Request{Op: actors.OpUnlock, Holder: r.Holder}); err != nil {
					t.Fatalf("releasing account %d: %v", id, err)
				}
			} else {
				time.Sleep(time.Millisecond) // a waiter about to give up
			}
		}
		if _, err := bank.Do(id, actors.Request{Op: actors.OpWrite, Holder: "reset", Value: 1000}); err != nil {
			t.Fatalf("resetting account %d: %v", id, err)
		}
	}
}

// fuzzWithFences replaces FENCE1..FENCE3 in uri by the current (or last)
// fence of that account, so that inputs can name grants in force.
func fuzzWithFences(t *testing.T, bank *actors.Bank, uri string) string {
	for id := int64(1); id <= fuzzAccounts; id++ {
		name := "FENCE" + strconv.FormatInt(id, 10)
		if !strings.Contains(uri, name) {
			continue
		}
		r, err := bank.Do(id, actors.Request{Op: actors.OpRead})
		if err != nil {
			t.Fatal(err)
		}
		uri = strings.ReplaceAll(uri, name, strconv.FormatUint(r.Fence, 10))
	}
	return uri
}

// fuzzNamedValues returns the valor the request names for each conta, paired
// in order as /setSaldo and /commit read them.
func fuzzNamedValues(ctx *fasthttp.RequestCtx) map[int64]int64 {
	var contas, valores []int64
	for k, v := range ctx.QueryArgs().All() {
		n, ok := wire.ParseInt(v)
		switch {
		case !ok:
		case string(k) == wire.ParamConta:
			contas = append(contas, n)
		case string(k) == wire.ParamValor:
			valores = append(valores, n)
		}
	}
	out := map[int64]int64{}
	for i := range min(len(contas), len(valores)) {
		out[contas[i]] = valores[i]
	}
	return out
}

func fuzzBalances(t *testing.T, bank *actors.Bank) []int64 {
	out := make([]int64, fuzzAccounts+1)
	for id := 1; id <= fuzzAccounts; id++ {
		r, err := bank.Do(int64(id), actors.Request{Op: actors.OpRead})
		if err != nil {
			t.Fatalf("reading account %d: %v", id, err)
		}
		out[id] = r.Balance
	}
	return out
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

// fuzzSetHeaders sets each "Name: value" line of hdr.
func fuzzSetHeaders(req *fasthttp.Request, hdr string) {
	for _, l := range strings.Split(hdr, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if k = strings.TrimSpace(k); ok && k != "" {
			req.Header.Set(k, strings.TrimSpace(v))
		}
	}
}
