package business_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataclient"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

func TestRoutesSuccess(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			before, _ := data.Balances(t)
			tests := []struct {
				path  string
				check func(t *testing.T, a answer)
				want  []int64
			}{
				{"/deposito/1/100", func(t *testing.T, a answer) {
					eq(t, "conta", a.Conta, 1)
					eq(t, "valor", a.Valor, 100)
					eq(t, "saldo", a.Saldo, before[0]+100)
				}, with(before, 1, before[0]+100)},
				{"/saque/2/300", func(t *testing.T, a answer) {
					eq(t, "conta", a.Conta, 2)
					eq(t, "valor", a.Valor, 300)
					eq(t, "saldo", a.Saldo, before[1]-300)
				}, with(before, 1, before[0]+100, 2, before[1]-300)},
				{"/saldo/3", func(t *testing.T, a answer) {
					eq(t, "saldo", a.Saldo, before[2])
					eq(t, "conta", a.Conta, 3)
				}, with(before, 1, before[0]+100, 2, before[1]-300)},
				{"/transferencia/5/4/250", func(t *testing.T, a answer) {
					eq(t, "conta_orig", a.ContaOrig, 5)
					eq(t, "conta_dest", a.ContaDest, 4)
					eq(t, "valor", a.Valor, 250)
					eq(t, "saldo_orig", a.SaldoOrig, before[4]-250)
					eq(t, "saldo_dest", a.SaldoDest, before[3]+250)
				}, with(before, 1, before[0]+100, 2, before[1]-300, 5, before[4]-250, 4, before[3]+250)},
				{"/saque/6/1000", func(t *testing.T, a answer) {
					eq(t, "saldo", a.Saldo, 0)
				}, with(before, 1, before[0]+100, 2, before[1]-300, 5, before[4]-250, 4, before[3]+250, 6, 0)},
			}
			for _, tt := range tests {
				r := do(t, method, bs.URL+tt.path, token)
				if r.status != 200 || r.contentType != "application/json" {
					t.Fatalf("%s: status %d, content type %q, body %s", tt.path, r.status, r.contentType, r.body)
				}
				tt.check(t, r.ans)
				checkBank(t, data, tt.want)
			}
			// Give account 6 its money back for the POST round.
			if r := do(t, method, bs.URL+"/deposito/6/1000", token); r.status != 200 {
				t.Fatalf("refill: %d %s", r.status, r.body)
			}
		})
	}

	r := do(t, http.MethodGet, bs.URL+"/status", "")
	if r.status != 200 || !strings.HasPrefix(r.contentType, "text/plain") || r.body == "" {
		t.Errorf("/status: %d %q %q", r.status, r.contentType, r.body)
	}
}

func TestUnauthorized(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	paths := []string{"/deposito/1/100", "/saque/1/100", "/saldo/1", "/transferencia/1/2/100",
		"/deposito/abc/1", "/transferencia/1/1/5"}
	for _, tok := range []string{"", "nope", "BA0F", "ba0f0"} {
		for _, p := range paths {
			r := do(t, http.MethodGet, bs.URL+p, tok)
			wantError(t, r, 401, int64(teller.Unauthorized))
		}
	}
	checkBank(t, data, uniform(10, 1000))
	for _, line := range bs.LogLines() {
		if strings.Contains(line, "BA0F") || strings.Contains(line, "nope") {
			t.Errorf("log line leaks a token: %q", line)
		}
	}
}

func TestLockedAccount(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{LockWait: 150 * time.Millisecond})
	other := otherClient(t, data, "10.9.9.9:5001")
	if _, err := lockOne(other, 3); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{"/deposito/3/10", "/saque/3/10", "/transferencia/3/4/10", "/transferencia/4/3/10",
		"/transferencia/2/3/10"} {
		start := time.Now()
		r := get(t, bs.URL+p)
		wantError(t, r, 403, int64(teller.LockedAccount))
		if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
			t.Errorf("%s answered after %v: want the retry deadline (150ms) honoured", p, d)
		}
	}
	// Reads do not need the lock.
	if r := get(t, bs.URL+"/saldo/3"); r.status != 200 {
		t.Errorf("saldo of a locked account: %d %s", r.status, r.body)
	}
	// Only the other holder's lock remains; everything else unchanged.
	balances, holders := data.Balances(t)
	for i := range balances {
		wantHolder := ""
		if i == 2 {
			wantHolder = "10.9.9.9:5001"
		}
		if balances[i] != 1000 || holders[i] != wantHolder {
			t.Errorf("account %d: balance %d holder %q", i+1, balances[i], holders[i])
		}
	}
	if err := other.Unlock(context.Background(), 3, 0); err != nil {
		t.Fatal(err)
	}
	if r := get(t, bs.URL+"/deposito/3/10"); r.status != 200 {
		t.Errorf("after unlock: %d %s", r.status, r.body)
	}
	checkBank(t, data, with(uniform(10, 1000), 3, 1010))
}

// TestLockRetrySucceeds: a lock released while the business server waits
// for it is taken: in wait mode both from a data server that queues lock
// requests (wait) and from one that fails fast like the original, where the
// business server backs off and retries; in retry mode, where it never
// asks the data server to wait, from either.
func TestLockRetrySucceeds(t *testing.T) {
	for _, tc := range []struct {
		mode           business.LockMode
		failFastServer bool
	}{
		{business.ModeWait, false},
		{business.ModeWait, true},
		{business.ModeRetry, false},
		{business.ModeRetry, true},
	} {
		// Whether the business server's getLocks are refused at once, so
		// that it backs off, rather than queued by the data server.
		failFast := tc.failFastServer || tc.mode == business.ModeRetry
		t.Run(fmt.Sprintf("%s/failFastServer=%v", tc.mode, tc.failFastServer), func(t *testing.T) {
			const bsID = "business:1"
			var asked atomic.Bool // a retry-mode getLock asked to wait
			arrived := make(chan struct{}, 1)
			refused := make(chan struct{}, 1)
			signal := func(c chan struct{}) {
				select {
				case c <- struct{}{}:
				default:
				}
			}
			data := dataservertest.Start(t, dataservertest.Options{Wrap: func(h fasthttp.RequestHandler) fasthttp.RequestHandler {
				return func(ctx *fasthttp.RequestCtx) {
					path := string(ctx.Path())
					mine := (path == wire.RouteGetLock || path == wire.RouteGetLocks) && string(ctx.QueryArgs().Peek(wire.ParamIDNegoc)) == bsID
					if mine && tc.mode == business.ModeRetry && ctx.QueryArgs().Has(wire.ParamWait) {
						asked.Store(true)
					}
					if mine && tc.failFastServer {
						ctx.QueryArgs().Del(wire.ParamWait)
					}
					if mine {
						signal(arrived)
					}
					h(ctx)
					if mine && strings.Contains(string(ctx.Response.Body()), `"error_code":-1`) {
						signal(refused)
					}
				}
			}})
			bs := startBusiness(t, data, businesstest.Options{ID: bsID, LockWait: 20 * time.Second, LockMode: tc.mode})
			other := otherClient(t, data, "10.9.9.9:5001")
			if _, err := lockOne(other, 7); err != nil {
				t.Fatal(err)
			}
			done := make(chan result, 1)
			go func() {
				r, err := tryDo(http.MethodGet, bs.URL+"/transferencia/7/8/100", token)
				if err != nil {
					r.body = err.Error()
				}
				done <- r
			}()
			if failFast {
				<-refused // refused once: the business server is backing off
			} else {
				<-arrived
				// Wait until the request is queued behind the holder.
				for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
					r, err := data.Bank.Do(7, actors.Request{Op: actors.OpRead})
					if err != nil {
						t.Fatal(err)
					}
					if r.Waiting > 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the lock request never queued")
					}
				}
			}
			if err := other.Unlock(context.Background(), 7, 0); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.status != 200 {
				t.Fatalf("transfer after the lock was released: %d %s", r.status, r.body)
			}
			checkBank(t, data, with(uniform(10, 1000), 7, 900, 8, 1100))
			if asked.Load() {
				t.Error("retry mode asked the data server to wait")
			}
		})
	}
}

func TestBadValues(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	bad := []string{"0", "-5", "abc", "1.5", "9223372036854775808", "99999999999999999999999", "+5", "%205", "5%20",
		"1e3", "0x10", "５", strings.Repeat("9", 300), strings.Repeat("0", 30) + "1", "-0", "1,5"}
	type tc struct {
		path string
		code teller.Code
	}
	var tests []tc
	for _, v := range bad {
		tests = append(tests,
			tc{"/deposito/1/" + v, teller.InvalidValue},
			tc{"/saque/1/" + v, teller.InvalidValue},
			tc{"/transferencia/1/2/" + v, teller.InvalidValue},
			tc{"/deposito/" + v + "/5", teller.InvalidAccount},
			tc{"/saque/" + v + "/5", teller.InvalidAccount},
			tc{"/saldo/" + v, teller.InvalidAccount},
			tc{"/transferencia/" + v + "/2/5", teller.InvalidAccount},
			tc{"/transferencia/1/" + v + "/5", teller.InvalidAccount},
		)
	}
	tests = append(tests,
		tc{"/deposito/11/5", teller.NotFound},
		tc{"/saque/999/5", teller.NotFound},
		tc{"/saldo/9223372036854775807", teller.NotFound},
		tc{"/transferencia/1/11/5", teller.NotFound},
		tc{"/transferencia/11/1/5", teller.NotFound},
	)
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := get(t, bs.URL+tt.path)
			wantError(t, r, 404, int64(tt.code))
		})
	}
	// An empty segment matches no route: also 404.
	for _, p := range []string{"/deposito/1/", "/deposito//5", "/saldo/", "/transferencia/1//5"} {
		r := get(t, bs.URL+p)
		if r.status != 404 {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	checkBank(t, data, uniform(10, 1000))
}

func TestOverflow(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{InitialBalance: math.MaxInt64 - 5})
	bs := startBusiness(t, data, businesstest.Options{})
	for _, p := range []string{"/deposito/1/6", "/deposito/1/9223372036854775807", "/transferencia/2/1/6"} {
		wantError(t, get(t, bs.URL+p), 404, int64(teller.Overflow))
	}
	checkBank(t, data, uniform(10, math.MaxInt64-5))
	r := get(t, bs.URL+"/deposito/1/5")
	if r.status != 200 {
		t.Fatalf("deposit up to the max: %d %s", r.status, r.body)
	}
	eq(t, "saldo", r.ans.Saldo, math.MaxInt64)
	checkBank(t, data, with(uniform(10, math.MaxInt64-5), 1, math.MaxInt64))
}

func TestInsufficientFunds(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	for _, p := range []string{"/saque/1/1001", "/transferencia/1/2/1001", "/transferencia/2/1/9223372036854775807",
		"/saque/3/9223372036854775807"} {
		wantError(t, get(t, bs.URL+p), 409, int64(teller.InsufficientFunds))
	}
	checkBank(t, data, uniform(10, 1000))
}

func TestSameAccount(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	for _, p := range []string{"/transferencia/1/1/5", "/transferencia/3/3/5000", "/transferencia/01/1/5"} {
		wantError(t, get(t, bs.URL+p), 400, int64(teller.SameAccount))
	}
	checkBank(t, data, uniform(10, 1000))
}

func TestDataServerDown(t *testing.T) {
	closedURL := closedURL(t)

	t.Run("never reachable", func(t *testing.T) {
		bs := startBusiness(t, nil, businesstest.Options{DataURL: closedURL, ServerToken: "x"})
		for _, p := range []string{"/deposito/1/5", "/saque/1/5", "/saldo/1", "/transferencia/1/2/5"} {
			r := get(t, bs.URL+p)
			wantError(t, r, 503, int64(teller.Unavailable))
			if !strings.Contains(r.ans.Error, "refused the connection") {
				t.Errorf("message %q does not say why", r.ans.Error)
			}
			if r.elapsed > 2*time.Second {
				t.Errorf("%s took %v", p, r.elapsed)
			}
		}
	})

	t.Run("goes away", func(t *testing.T) {
		data := dataservertest.Start(t, dataservertest.Options{})
		bs := startBusiness(t, data, businesstest.Options{})
		if r := get(t, bs.URL+"/saldo/1"); r.status != 200 { // token now cached
			t.Fatalf("saldo: %d %s", r.status, r.body)
		}
		data.Stop()
		for _, p := range []string{"/deposito/1/5", "/saque/1/5", "/saldo/1", "/transferencia/1/2/5"} {
			r := get(t, bs.URL+p)
			wantError(t, r, 503, int64(teller.Unavailable))
			if r.elapsed > 2*time.Second {
				t.Errorf("%s took %v", p, r.elapsed)
			}
		}
	})

	t.Run("hangs", func(t *testing.T) {
		// A listener that accepts and never answers.
		hang, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var conns sync.WaitGroup
		t.Cleanup(func() { hang.Close(); conns.Wait() })
		conns.Go(func() {
			var held []net.Conn
			for {
				c, err := hang.Accept()
				if err != nil {
					for _, c := range held {
						c.Close()
					}
					return
				}
				held = append(held, c)
			}
		})
		bs := startBusiness(t, nil, businesstest.Options{DataURL: "http://" + hang.Addr().String(), ServerToken: "x",
			DataTimeout: 200 * time.Millisecond})
		r := get(t, bs.URL+"/deposito/1/5")
		wantError(t, r, 503, int64(teller.Unavailable))
		if !strings.Contains(r.ans.Error, "in time") {
			t.Errorf("message %q does not say why", r.ans.Error)
		}
		if r.elapsed > 3*time.Second {
			t.Errorf("took %v", r.elapsed)
		}
	})

	t.Run("credential refused", func(t *testing.T) {
		data := dataservertest.Start(t, dataservertest.Options{})
		for _, cred := range []string{"wrong-credential", token} { // unknown: 401; a client token: 403
			bs := startBusiness(t, data, businesstest.Options{ServerToken: cred})
			for _, p := range []string{"/deposito/1/5", "/saldo/1", "/transferencia/1/2/5"} {
				r := get(t, bs.URL+p)
				wantError(t, r, 503, int64(teller.Unavailable))
				if !strings.Contains(r.ans.Error, "credential") {
					t.Errorf("message %q does not name the credential", r.ans.Error)
				}
			}
		}
		checkBank(t, data, uniform(10, 1000))
	})
}

func TestOperationLog(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	clock := time.Date(2022, 5, 22, 2, 40, 5, 0, time.Local)
	bs := startBusiness(t, data, businesstest.Options{Now: func() time.Time { return clock }})
	steps := []struct {
		path, tok string
		line      string
	}{
		{"/deposito/4/2000", token, "deposito, 4, 2000"},
		{"/transferencia/4/10/2000", token, "transferencia, 4, 10, 2000"},
		{"/saque/10/500", token, "saque, 10, 500"},
		{"/saldo/10", token, "saldo, 10"},
		{"/saque/1/5000", token, "saque, 1, 5000, INSUFFICIENT_FUNDS"},
		{"/deposito/1/5", "bad-token", "deposito, 1, 5, UNAUTHORIZED"},
		{"/deposito/1/5", "", "deposito, 1, 5, UNAUTHORIZED"},
		{"/deposito/x,y/5", token, "deposito, x y, 5, INVALID_ACCOUNT"},
		{"/saque/1/-3", token, "saque, 1, -3, INVALID_VALUE"},
		{"/saldo/42", token, "saldo, 42, NOT_FOUND"},
		{"/transferencia/2/2/1", token, "transferencia, 2, 2, 1, SAME_ACCOUNT"},
		{"/deposito/1/" + strings.Repeat("7", 40), token, "deposito, 1, " + strings.Repeat("7", 32) + "..., INVALID_VALUE"},
	}
	for _, st := range steps {
		do(t, http.MethodGet, bs.URL+st.path, st.tok)
	}
	lines := bs.LogLines()
	if len(lines) != len(steps) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(steps), strings.Join(lines, "\n"))
	}
	for i, st := range steps {
		want := fmt.Sprintf("05/22/2022 02:40:05, %d, 127.0.0.1, %s", i+1, st.line)
		if lines[i] != want {
			t.Errorf("line %d = %q, want %q", i+1, lines[i], want)
		}
		if strings.Contains(lines[i], "bad-token") || strings.Contains(lines[i], token) {
			t.Errorf("line %d leaks a token: %q", i+1, lines[i])
		}
	}
}

func TestAuthCache(t *testing.T) {
	var autentica atomic.Int64
	wrap := func(h fasthttp.RequestHandler) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == wire.RouteAutentica {
				autentica.Add(1)
			}
			h(ctx)
		}
	}
	tests := []struct {
		name string
		ttl  time.Duration
		tok  string
		want int64 // /autentica calls for 5 requests
	}{
		{"cached", 0, token, 1},
		{"disabled", -1, token, 5},
		{"refusals not cached", 0, "nope", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{Wrap: wrap})
			bs := startBusiness(t, data, businesstest.Options{AuthCacheTTL: tt.ttl})
			autentica.Store(0)
			for range 5 {
				do(t, http.MethodGet, bs.URL+"/saldo/1", tt.tok)
			}
			if got := autentica.Load(); got != tt.want {
				t.Errorf("%d /autentica calls, want %d", got, tt.want)
			}
		})
	}
}

// TestSameServerConcurrency: requests of one business server on one
// account are serialized although the data server's lock is re-entrant
// for the server's id_negoc: by naming each operation (a timestamped
// /getLocks, queued at the account) on a data server that can tell them
// apart, and by local locks on one that cannot (no /getLocks: the
// original's).
func TestSameServerConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name      string
		wrap      func(fasthttp.RequestHandler) fasthttp.RequestHandler
		getLockOK func(n int64) bool // of the number of /getLock calls
	}{
		{"named operations", nil, func(n int64) bool { return n == 0 }},
		{"no transaction schemes: local locks", noGetLocks, func(n int64) bool { return n >= 40 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var getLocks atomic.Int64
			wrap := func(h fasthttp.RequestHandler) fasthttp.RequestHandler {
				if tc.wrap != nil {
					h = tc.wrap(h)
				}
				return func(ctx *fasthttp.RequestCtx) {
					if string(ctx.Path()) == wire.RouteGetLock {
						getLocks.Add(1)
					}
					h(ctx)
				}
			}
			data := dataservertest.Start(t, dataservertest.Options{Wrap: wrap})
			bs := startBusiness(t, data, businesstest.Options{LockWait: 15 * time.Second})
			const n = 40
			var wg sync.WaitGroup
			errs := make(chan string, 2*n)
			for i := range n {
				wg.Go(func() {
					path := "/deposito/1/1"
					if i%2 == 1 {
						path = "/transferencia/2/1/1"
					}
					r, err := tryDo(http.MethodGet, bs.URL+path, token)
					if err != nil || r.status != 200 {
						errs <- fmt.Sprintf("%s: %v %d %s", path, err, r.status, r.body)
					}
				})
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			checkBank(t, data, with(uniform(10, 1000), 1, 1000+n, 2, 1000-n/2))
			if got := getLocks.Load(); !tc.getLockOK(got) {
				t.Errorf("%d /getLock calls: not the locking this data server calls for", got)
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	srv, err := business.New(business.Config{DataURL: data.URL, ServerToken: data.ServerToken, ID: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if r := get(t, "http://"+ln.Addr().String()+"/saldo/1"); r.status != 200 {
		t.Fatalf("saldo: %d %s", r.status, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v after Shutdown", err)
	}
	if _, err := tryDo(http.MethodGet, "http://"+ln.Addr().String()+"/status", ""); err == nil {
		t.Error("still serving after Shutdown")
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  business.Config
	}{
		{"no id", business.Config{DataURL: "http://127.0.0.1:5000", ServerToken: "x"}},
		{"no url", business.Config{ServerToken: "x", ID: "h:1"}},
		{"no credential", business.Config{DataURL: "http://127.0.0.1:5000", ID: "h:1"}},
		{"bad scheme", business.Config{DataURL: "ftp://127.0.0.1:5000", ServerToken: "x", ID: "h:1"}},
		{"query in url", business.Config{DataURL: "http://127.0.0.1:5000/?a=b", ServerToken: "x", ID: "h:1"}},
		{"unknown lock mode", business.Config{DataURL: "http://127.0.0.1:5000", ServerToken: "x", ID: "h:1", LockMode: "spin"}},
		{"lock mode in capitals", business.Config{DataURL: "http://127.0.0.1:5000", ServerToken: "x", ID: "h:1", LockMode: "WAIT"}},
		{"unknown lock order", business.Config{DataURL: "http://127.0.0.1:5000", ServerToken: "x", ID: "h:1", LockOrder: "descending"}},
		{"negative lock wait", business.Config{DataURL: "http://127.0.0.1:5000", ServerToken: "x", ID: "h:1", LockWait: -time.Second}},
		{"negative lock ttl", business.Config{DataURL: "http://127.0.0.1:5000", ServerToken: "x", ID: "h:1", LockTTL: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := business.New(tt.cfg); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
	for _, u := range []string{"http://127.0.0.1:5000", "127.0.0.1:5000", "http://localhost:5000/", "https://bank.example"} {
		if _, err := business.New(business.Config{DataURL: u, ServerToken: "x", ID: "h:1"}); err != nil {
			t.Errorf("New(%q): %v", u, err)
		}
	}
	for _, mode := range []business.LockMode{"", business.ModeWait, business.ModeRetry, business.ModeFailFast} {
		for _, order := range []business.LockOrder{"", business.OrderAscending, business.OrderRequest} {
			cfg := business.Config{DataURL: "http://127.0.0.1:5000", ServerToken: "x", ID: "h:1", LockMode: mode, LockOrder: order}
			if _, err := business.New(cfg); err != nil {
				t.Errorf("New with mode %q, order %q: %v", mode, order, err)
			}
		}
	}
}

func otherClient(t *testing.T, data *dataservertest.Server, id string) *dataclient.Client {
	t.Helper()
	c, err := dataclient.New(dataclient.Config{URL: data.URL, ServerToken: data.ServerToken, ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// lockOne locks account id on c, as another business server would, and
// returns its grant.
func lockOne(c *dataclient.Client, id int64) (teller.Grant, error) {
	var g [1]teller.Grant
	err := c.Lock(context.Background(), []int64{id}, teller.LockOptions{}, g[:])
	return g[0], err
}
