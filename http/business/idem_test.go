package business_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

// routeLog counts the data server's requests per route and keeps the
// query strings of /commit.
type routeLog struct {
	mu      sync.Mutex
	n       map[string]int
	commits []string
}

func (l *routeLog) wrap(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		l.mu.Lock()
		if l.n == nil {
			l.n = map[string]int{}
		}
		p := string(ctx.Path())
		l.n[p]++
		if p == wire.RouteCommit {
			l.commits = append(l.commits, string(ctx.QueryArgs().QueryString()))
		}
		l.mu.Unlock()
		next(ctx)
	}
}

func (l *routeLog) count(route string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[route]
}

// TestOneCommit: every operation that writes does it with one /commit
// naming every account with its grant's fence and releasing the locks:
// no setSaldo, no unLock.
func TestOneCommit(t *testing.T) {
	var log routeLog
	data := dataservertest.Start(t, dataservertest.Options{Wrap: log.wrap})
	bs := startBusiness(t, data, businesstest.Options{})
	tests := []struct {
		path   string
		contas []string
	}{
		{"/transferencia/2/1/100", []string{"2", "1"}},
		{"/deposito/3/50", []string{"3"}},
		{"/saque/4/50", []string{"4"}},
	}
	for i, tt := range tests {
		if r := get(t, bs.URL+tt.path); r.status != 200 {
			t.Fatalf("%s: %d %s", tt.path, r.status, r.body)
		}
		log.mu.Lock()
		q := log.commits[len(log.commits)-1]
		log.mu.Unlock()
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(log.commits) != i+1 {
			t.Errorf("%s: %d commits in all, want %d", tt.path, len(log.commits), i+1)
		}
		if got := v[wire.ParamConta]; strings.Join(got, ",") != strings.Join(tt.contas, ",") ||
			len(v[wire.ParamFence]) != len(tt.contas) || len(v[wire.ParamValor]) != len(tt.contas) || v.Get(wire.ParamUnlock) != "1" {
			t.Errorf("%s: commit %q, want contas %v each with valor and fence, and unlock=1", tt.path, q, tt.contas)
		}
	}
	for _, route := range []string{wire.RouteSetSaldo, wire.RouteUnLock, wire.RouteSetLock, wire.RouteIdem} {
		if n := log.count(route); n != 0 {
			t.Errorf("%d calls to %s, want none", n, route)
		}
	}
	checkBank(t, data, with(uniform(10, 1000), 1, 1100, 2, 900, 3, 1050, 4, 950))
}

// step is one request of an idempotency scenario.
type step struct {
	server int    // index of the business server
	path   string // e.g. "/deposito/1/5"
	tok    string // "" means token
	key    string // Idempotency-Key, "" for none
	status int
	code   int64 // error_code of a refusal
	// replayOf, when positive, is the 1-based number of the step whose
	// answer this one must repeat, with Idempotent-Replayed: true.
	replayOf int
}

// runSteps runs steps against servers and checks each answer.
func runSteps(t *testing.T, servers []*businesstest.Server, steps []step) []result {
	t.Helper()
	var got []result
	for i, st := range steps {
		tok := st.tok
		if tok == "" {
			tok = token
		}
		r := doKey(t, servers[st.server].URL+st.path, tok, st.key)
		got = append(got, r)
		name := fmt.Sprintf("step %d %s (key %q)", i+1, st.path, st.key)
		if r.status != st.status {
			t.Errorf("%s: status %d, want %d (%s)", name, r.status, st.status, r.body)
		}
		if st.code != 0 && (r.ans.ErrorCode == nil || *r.ans.ErrorCode != st.code) {
			t.Errorf("%s: %s, want error_code %d", name, r.body, st.code)
		}
		if want := st.replayOf > 0; r.replayed != want {
			t.Errorf("%s: Idempotent-Replayed %v, want %v", name, r.replayed, want)
		}
		if st.replayOf > 0 && r.body != got[st.replayOf-1].body {
			t.Errorf("%s: body %s, want the body of step %d, %s", name, r.body, st.replayOf, got[st.replayOf-1].body)
		}
	}
	return got
}

// TestIdempotency: a request repeated with its Idempotency-Key is applied
// once and answered the first outcome, success or refusal, through any
// business server; the key with another request is refused; keys are
// scoped per client token.
func TestIdempotency(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []int64
	}{
		{"transfer twice", []step{
			{path: "/transferencia/1/2/100", key: "k1", status: 200},
			{path: "/transferencia/1/2/100", key: "k1", status: 200, replayOf: 1},
			{path: "/transferencia/1/2/100", key: "k1", status: 200, replayOf: 1},
		}, with(uniform(10, 1000), 1, 900, 2, 1100)},
		{"deposit repeated through another business server", []step{
			{server: 0, path: "/deposito/3/70", key: "k2", status: 200},
			{server: 1, path: "/deposito/3/70", key: "k2", status: 200, replayOf: 1},
		}, with(uniform(10, 1000), 3, 1070)},
		{"same key, another request", []step{
			{path: "/transferencia/1/2/100", key: "k3", status: 200},
			{path: "/transferencia/1/2/200", key: "k3", status: 422, code: int64(teller.KeyReused)},
			{path: "/transferencia/2/1/100", key: "k3", status: 422, code: int64(teller.KeyReused)},
			{server: 1, path: "/deposito/1/100", key: "k3", status: 422, code: int64(teller.KeyReused)},
			{path: "/transferencia/1/2/100", key: "k3", status: 200, replayOf: 1},
		}, with(uniform(10, 1000), 1, 900, 2, 1100)},
		{"insufficient funds kept: funds arriving later do not change the answer", []step{
			{path: "/saque/1/5000", key: "k4", status: 409, code: int64(teller.InsufficientFunds)},
			{path: "/deposito/1/10000", status: 200},
			{path: "/saque/1/5000", key: "k4", status: 409, code: int64(teller.InsufficientFunds), replayOf: 1},
			{server: 1, path: "/saque/1/5000", key: "k4", status: 409, code: int64(teller.InsufficientFunds), replayOf: 1},
			{path: "/saque/1/5000", key: "k4b", status: 200},
		}, with(uniform(10, 1000), 1, 6000)},
		{"transfer refused for lack of funds kept", []step{
			{path: "/transferencia/1/2/1001", key: "k5", status: 409, code: int64(teller.InsufficientFunds)},
			{path: "/deposito/1/1", status: 200},
			{path: "/transferencia/1/2/1001", key: "k5", status: 409, replayOf: 1},
		}, with(uniform(10, 1000), 1, 1001)},
		{"no such account kept", []step{
			{path: "/deposito/99/5", key: "k6", status: 404, code: int64(teller.NotFound)},
			{path: "/deposito/99/5", key: "k6", status: 404, code: int64(teller.NotFound), replayOf: 1},
			{path: "/deposito/1/5", key: "k6", status: 422, code: int64(teller.KeyReused)},
		}, uniform(10, 1000)},
		{"same account kept", []step{
			{path: "/transferencia/1/1/5", key: "k7", status: 400, code: int64(teller.SameAccount)},
			{path: "/transferencia/1/1/5", key: "k7", status: 400, replayOf: 1},
		}, uniform(10, 1000)},
		{"keys are per token", []step{
			{path: "/deposito/1/5", key: "k8", status: 200},
			{path: "/deposito/1/5", tok: "4c0e", key: "k8", status: 200},
			{path: "/deposito/1/5", tok: "4c0e", key: "k8", status: 200, replayOf: 2},
			{path: "/saque/1/5", tok: "a5fc", key: "k8", status: 200},
		}, with(uniform(10, 1000), 1, 1005)},
		{"saldo accepts a key and ignores it", []step{
			{path: "/saldo/1", key: "k9", status: 200},
			{path: "/saldo/1", key: "k9", status: 200},
			{path: "/deposito/1/5", key: "k9", status: 200},
			{path: "/saldo/1", key: "k9", status: 200},
		}, with(uniform(10, 1000), 1, 1005)},
		{"different keys, different operations", []step{
			{path: "/deposito/1/5", key: "k10", status: 200},
			{path: "/deposito/1/5", key: "k11", status: 200},
			{path: "/deposito/1/5", status: 200},
			{path: "/deposito/1/5", status: 200},
		}, with(uniform(10, 1000), 1, 1020)},
		{"malformed parameters are not kept", []step{
			{path: "/deposito/x/5", key: "k12", status: 404, code: int64(teller.InvalidAccount)},
			{path: "/deposito/1/5", key: "k12", status: 200},
		}, with(uniform(10, 1000), 1, 1005)},
		{"printable key of 128 characters, spaces included", []step{
			{path: "/deposito/1/5", key: "a b~" + strings.Repeat("Z", 124), status: 200},
			{path: "/deposito/1/5", key: "a b~" + strings.Repeat("Z", 124), status: 200, replayOf: 1},
		}, with(uniform(10, 1000), 1, 1005)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{})
			servers := []*businesstest.Server{startBusiness(t, data, businesstest.Options{}), startBusiness(t, data, businesstest.Options{})}
			got := runSteps(t, servers, tt.steps)
			for i, r := range got {
				if r.status == 422 && !strings.Contains(r.ans.Error, "Idempotency-Key") {
					t.Errorf("step %d: message %q does not name the Idempotency-Key", i+1, r.ans.Error)
				}
			}
			checkBank(t, data, tt.want)
		})
	}
}

// TestIdempotencyLog: a replayed outcome is logged with REPLAYED, a reused
// key with KEY_REUSED.
func TestIdempotencyLog(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	runSteps(t, []*businesstest.Server{bs}, []step{
		{path: "/saque/1/5000", key: "k", status: 409},
		{path: "/saque/1/5000", key: "k", status: 409, replayOf: 1},
		{path: "/saque/1/50", key: "k", status: 422},
	})
	lines := bs.LogLines()
	want := []string{"saque, 1, 5000, INSUFFICIENT_FUNDS", "saque, 1, 5000, REPLAYED", "saque, 1, 50, KEY_REUSED"}
	if len(lines) != len(want) {
		t.Fatalf("log:\n%s\nwant %d lines", strings.Join(lines, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %q, want it to end with %q", i+1, lines[i], w)
		}
	}
}

// TestKeyScopedPerToken: the data server keeps an outcome under the hash of
// the token and the key, never under the key itself.
func TestKeyScopedPerToken(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	if r := doKey(t, bs.URL+"/deposito/1/5", token, "order-1"); r.status != 200 {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	idem := func(key string) map[string]any {
		req, err := http.NewRequest(http.MethodGet, data.URL+"/idem?key="+url.QueryEscape(key), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(wire.HeaderToken, data.ServerToken)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("/idem: %s", b)
		}
		return m
	}
	scoped := business.ScopedKey(token, "order-1")
	if len(scoped) != 64 || strings.Contains(scoped, "order-1") {
		t.Errorf("scoped key %q: want 64 hex digits", scoped)
	}
	if m := idem(scoped); m["found"] != true || m["fingerprint"] != "deposito/1/5" || m["status"] != float64(200) ||
		m["body"] != `{"conta":1,"valor":5,"saldo":1005}` {
		t.Errorf("record under the scoped key: %v", m)
	}
	for _, k := range []string{"order-1", business.ScopedKey("4c0e", "order-1")} {
		if m := idem(k); m["found"] != false {
			t.Errorf("record under %q: %v, want none", k, m)
		}
	}
}

// TestKeyValidation: an Idempotency-Key that is empty, too long, not
// printable ASCII or repeated is refused with 400 before anything is done,
// on every route.
func TestKeyValidation(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	tests := []struct {
		name   string
		header string // the header lines, each ending in \r\n
		parser bool   // refused by the HTTP parser already, as a malformed request
	}{
		{"empty", "Idempotency-Key: \r\n", false},
		{"129 bytes", "Idempotency-Key: " + strings.Repeat("k", 129) + "\r\n", false},
		{"tab", "Idempotency-Key: a\tb\r\n", false},
		{"DEL", "Idempotency-Key: a\x7fb\r\n", true},
		{"not ASCII", "Idempotency-Key: ch\xc3\xa1ve\r\n", false},
		{"twice", "Idempotency-Key: a\r\nIdempotency-Key: b\r\n", false},
		{"twice, same value", "Idempotency-Key: a\r\nidempotency-key: a\r\n", false},
	}
	for _, tt := range tests {
		for _, path := range []string{"/deposito/1/5", "/transferencia/1/2/5", "/saque/1/5", "/saldo/1"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				status, body := raw(t, bs.Addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\ntoken: "+token+"\r\n"+tt.header+"Connection: close\r\n\r\n")
				var a answer
				if err := json.Unmarshal([]byte(body), &a); err != nil || status != 400 ||
					a.ErrorCode == nil || *a.ErrorCode != int64(teller.BadRequest) {
					t.Errorf("status %d, body %s; want 400 BAD_REQUEST", status, body)
				}
				if !tt.parser && !strings.Contains(a.Error, "Idempotency-Key") {
					t.Errorf("message %q does not name the header", a.Error)
				}
			})
		}
	}
	checkBank(t, data, uniform(10, 1000))
	// A bad key is no reason to skip authentication.
	if r := doKey(t, bs.URL+"/deposito/1/5", "bad-token", strings.Repeat("k", 200)); r.status != 401 {
		t.Errorf("bad token and bad key: %d, want 401", r.status)
	}
}

// appliedThen500 applies the call, then answers 500 as if it had failed.
var appliedThen500 fault = func(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler, _ int64) bool {
	next(ctx)
	ctx.Response.Reset()
	ctx.Error(`{"error_code":-11,"error":"internal error"}`, 500)
	return true
}

// TestLostCommitAnswer: a /commit whose answer is lost is answered 503
// "may or may not have been applied", with every lock released; the
// request repeated with its key then answers the first outcome if the
// commit was applied (the money moved exactly once), or applies it now.
func TestLostCommitAnswer(t *testing.T) {
	tests := []struct {
		name    string
		fault   fault
		applied bool
	}{
		{"applied, then the connection closed", closeConn, true},
		{"applied, then 500", appliedThen500, true},
		{"applied, answer garbled", appliedThenGarbage, true},
		{"applied, answer too late", appliedThenSlow, true},
		{"not applied: 500", fail500, false},
		{"not applied: garbled", garbage, false},
	}
	for _, tt := range tests {
		for _, path := range []string{"/transferencia/1/2/100", "/saque/1/100"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				data := dataservertest.Start(t, dataservertest.Options{Wrap: on(wire.RouteCommit, tt.fault, 1)})
				bs := startBusiness(t, data, businesstest.Options{DataTimeout: faultTimeout})
				moved := effect(t, uniform(10, 1000), path)
				first := doKey(t, bs.URL+path, token, "lost")
				wantError(t, first, 503, int64(teller.Unavailable))
				if !strings.Contains(first.ans.Error, "may or may not have been applied") {
					t.Errorf("message %q does not say the outcome is unknown", first.ans.Error)
				}
				if tt.applied {
					checkBank(t, data, moved)
				} else {
					checkBank(t, data, uniform(10, 1000))
				}
				retry := doKey(t, bs.URL+path, token, "lost")
				if retry.status != 200 || retry.replayed != tt.applied {
					t.Errorf("retry: %d %s, replayed %v; want 200, replayed %v", retry.status, retry.body, retry.replayed, tt.applied)
				}
				checkBank(t, data, moved) // exactly once
				if again := doKey(t, bs.URL+path, token, "lost"); again.status != 200 || !again.replayed || again.body != retry.body {
					t.Errorf("third try: %d %s replayed %v; want the retry's answer %s", again.status, again.body, again.replayed, retry.body)
				}
				checkBank(t, data, moved)
			})
		}
	}
}

// TestTransientNotKept: outcomes that a retry may change (403 after the
// lock wait, 503) are not kept under the key: the retry applies.
func TestTransientNotKept(t *testing.T) {
	t.Run("locked", func(t *testing.T) {
		data := dataservertest.Start(t, dataservertest.Options{})
		bs := startBusiness(t, data, businesstest.Options{LockMode: business.ModeFailFast})
		other := otherClient(t, data, "other:1")
		g, err := lockOne(other, 1)
		if err != nil {
			t.Fatal(err)
		}
		r := doKey(t, bs.URL+"/transferencia/1/2/10", token, "t1")
		wantError(t, r, 403, int64(teller.LockedAccount))
		if err := other.Unlock(context.Background(), 1, g.Fence); err != nil {
			t.Fatal(err)
		}
		runSteps(t, []*businesstest.Server{bs}, []step{
			{path: "/transferencia/1/2/10", key: "t1", status: 200},
			{path: "/transferencia/1/2/10", key: "t1", status: 200, replayOf: 1},
		})
		checkBank(t, data, with(uniform(10, 1000), 1, 990, 2, 1010))
	})
	for _, tt := range []struct {
		name string
		wrap func(fasthttp.RequestHandler) fasthttp.RequestHandler
		path string
	}{
		{"commit refused: storage failed", on(wire.RouteCommit, fail503, 1), "/deposito/1/10"},
		{"commit refused: stale fence", on(wire.RouteCommit, staleFence, 1), "/deposito/1/10"},
		{"looking the key up failed", on(wire.RouteIdem, fail503, 1), "/deposito/1/10"},
		{"keeping a refusal failed", on(wire.RouteIdem, fail500, 2), "/saque/1/5000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{Wrap: tt.wrap})
			bs := startBusiness(t, data, businesstest.Options{DataTimeout: faultTimeout})
			r := doKey(t, bs.URL+tt.path, token, "t2")
			wantError(t, r, 503, int64(teller.Unavailable))
			checkBank(t, data, uniform(10, 1000))
			second := doKey(t, bs.URL+tt.path, token, "t2")
			third := doKey(t, bs.URL+tt.path, token, "t2")
			if second.status == 503 || second.replayed || third.status != second.status || !third.replayed || third.body != second.body {
				t.Errorf("retries: %d %s (replayed %v), then %d %s (replayed %v); want an outcome, then it again",
					second.status, second.body, second.replayed, third.status, third.body, third.replayed)
			}
			if second.status == 200 {
				checkBank(t, data, effect(t, uniform(10, 1000), tt.path))
			} else {
				checkBank(t, data, uniform(10, 1000))
			}
		})
	}
}

// TestDuplicateWonMeanwhile: when a duplicate keeps its outcome between
// this request's lookup and its commit (or its keeping a refusal), the
// data server answers that outcome, which is what this request answers:
// nothing applied twice, the locks released. The race is staged by
// hiding the record from the lookup of the second request.
func TestDuplicateWonMeanwhile(t *testing.T) {
	hide := on(wire.RouteIdem, func(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler, _ int64) bool {
		if !ctx.IsGet() {
			return false
		}
		ctx.SetBodyString(`{"found":false}`)
		return true
	}, 2)
	tests := []struct {
		name  string
		steps []step
		want  []int64
	}{
		{"the commit answers the record", []step{
			{path: "/transferencia/1/2/5", key: "d", status: 200},
			{path: "/transferencia/1/2/5", key: "d", status: 200, replayOf: 1},
		}, with(uniform(10, 1000), 1, 995, 2, 1005)},
		{"keeping a refusal answers the record", []step{
			{path: "/saque/1/600", key: "d", status: 200},
			{path: "/saque/1/600", key: "d", status: 200, replayOf: 1}, // would be refused now
		}, with(uniform(10, 1000), 1, 400)},
		{"the commit answers the record of another request", []step{
			{path: "/transferencia/1/2/5", key: "d", status: 200},
			{path: "/deposito/3/5", key: "d", status: 422, code: int64(teller.KeyReused)},
		}, with(uniform(10, 1000), 1, 995, 2, 1005)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{Wrap: hide})
			bs := startBusiness(t, data, businesstest.Options{})
			runSteps(t, []*businesstest.Server{bs}, tt.steps)
			checkBank(t, data, tt.want)
		})
	}
}

// TestConcurrentDuplicates: the same request with the same key, sent eight
// times at once to one or two business servers, is applied exactly once,
// and every copy is answered the same; all but the one applied say
// Idempotent-Replayed.
func TestConcurrentDuplicates(t *testing.T) {
	tests := []struct {
		name    string
		servers int
		path    string
		status  int
	}{
		{"transfer, one business server", 1, "/transferencia/1/2/700", 200},
		{"transfer, two business servers", 2, "/transferencia/1/2/700", 200},
		{"withdrawal, two business servers", 2, "/saque/3/600", 200},
		{"refused withdrawal, two business servers", 2, "/saque/3/6000", 409},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{})
			var servers []*businesstest.Server
			for range tt.servers {
				servers = append(servers, startBusiness(t, data, businesstest.Options{LockWait: 10 * time.Second}))
			}
			const n = 8
			results := make([]result, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					results[i], errs[i] = tryDoKey(http.MethodGet, servers[i%len(servers)].URL+tt.path, token, "same-key")
				})
			}
			close(start)
			wg.Wait()
			fresh := 0
			for i, r := range results {
				if errs[i] != nil {
					t.Fatalf("request %d: %v", i, errs[i])
				}
				if r.status != tt.status || r.body != results[0].body {
					t.Errorf("request %d: %d %s; request 0: %d %s", i, r.status, r.body, results[0].status, results[0].body)
				}
				if !r.replayed {
					fresh++
				}
			}
			if fresh != 1 {
				t.Errorf("%d answers without Idempotent-Replayed, want 1", fresh)
			}
			want := uniform(10, 1000)
			if tt.status == 200 {
				want = effect(t, want, tt.path)
			}
			checkBank(t, data, want)
		})
	}
}

// TestNoRecords: against a data server without /commit and /idem (ours
// before them), a request with a key is refused with 501 and changes
// nothing; one without a key is applied with setSaldo.
func TestNoRecords(t *testing.T) {
	var log routeLog
	data := dataservertest.Start(t, dataservertest.Options{Wrap: compose(log.wrap, on(wire.RouteCommit, notFound), on(wire.RouteIdem, notFound))})
	bs := startBusiness(t, data, businesstest.Options{})
	r := doKey(t, bs.URL+"/transferencia/1/2/10", token, "k")
	wantError(t, r, 501, int64(teller.Unavailable))
	if !strings.Contains(r.ans.Error, "without an Idempotency-Key") {
		t.Errorf("message %q does not say what to do", r.ans.Error)
	}
	checkBank(t, data, uniform(10, 1000))
	for range 2 {
		if r := get(t, bs.URL+"/transferencia/1/2/10"); r.status != 200 {
			t.Fatalf("without a key: %d %s", r.status, r.body)
		}
	}
	checkBank(t, data, with(uniform(10, 1000), 1, 980, 2, 1020))
	if n := log.count(wire.RouteCommit); n != 1 {
		t.Errorf("%d calls to /commit, want 1: the business server remembers that there is none", n)
	}
	if r := doKey(t, bs.URL+"/deposito/1/10", token, "k"); r.status != 501 {
		t.Errorf("a key once /commit is known to be missing: %d %s", r.status, r.body)
	}
}
