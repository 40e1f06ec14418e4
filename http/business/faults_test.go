package business_test

import (
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

// fault decides, for the nth call (1-based) to a data route, what the data
// server does instead of (or besides) answering normally. It returns true
// when it has answered the request itself.
type fault func(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler, n int64) bool

// on applies f to the calls to route whose number is in nth (all calls when
// nth is empty).
func on(route string, f fault, nth ...int64) func(fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(next fasthttp.RequestHandler) fasthttp.RequestHandler {
		var count atomic.Int64
		return func(ctx *fasthttp.RequestCtx) {
			p := string(ctx.Path())
			if p == wire.RouteSetLock {
				p = wire.RouteUnLock
			}
			if p != route {
				next(ctx)
				return
			}
			n := count.Add(1)
			hit := len(nth) == 0
			for _, k := range nth {
				hit = hit || k == n
			}
			if !hit || !f(ctx, next, n) {
				next(ctx)
			}
		}
	}
}

// compose applies wraps, the first outermost.
func compose(wraps ...func(fasthttp.RequestHandler) fasthttp.RequestHandler) func(fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(h fasthttp.RequestHandler) fasthttp.RequestHandler {
		for i := len(wraps) - 1; i >= 0; i-- {
			h = wraps[i](h)
		}
		return h
	}
}

// legacy makes the data server's lock grants empty, like the original's,
// so that the business server reads the balances with getSaldo, and
// answers /getLocks 404, as the original does.
var legacy = compose(noGetLocks, on(wire.RouteGetLock, func(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler, _ int64) bool {
	next(ctx)
	if strings.Contains(string(ctx.Response.Body()), `"fence"`) {
		ctx.SetBodyString(`{}`)
	}
	return true
}))

// noGetLocks is a data server without /getLocks (the original, or ours
// before it): transfers lock one account per /getLock.
var noGetLocks = on(wire.RouteGetLocks, notFound)

// Faults.
var (
	staleFence fault = func(ctx *fasthttp.RequestCtx, _ fasthttp.RequestHandler, _ int64) bool {
		ctx.SetBodyString(`{"error_code":-5,"error":"stale fence"}`)
		return true
	}
	fail500 fault = func(ctx *fasthttp.RequestCtx, _ fasthttp.RequestHandler, _ int64) bool {
		ctx.Error("boom", 500)
		return true
	}
	fail503 fault = func(ctx *fasthttp.RequestCtx, _ fasthttp.RequestHandler, _ int64) bool {
		ctx.SetStatusCode(503)
		ctx.SetBodyString(`{"error_code":-9,"error":"busy"}`)
		return true
	}
	garbage fault = func(ctx *fasthttp.RequestCtx, _ fasthttp.RequestHandler, _ int64) bool {
		ctx.SetBodyString(`<html>not json</html>`)
		return true
	}
	// appliedThenGarbage applies the call, then garbles the answer: the
	// business server cannot know the call was applied.
	appliedThenGarbage fault = func(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler, _ int64) bool {
		next(ctx)
		ctx.SetBodyString(`{"saldo":`)
		return true
	}
	unknownCode fault = func(ctx *fasthttp.RequestCtx, _ fasthttp.RequestHandler, _ int64) bool {
		ctx.SetBodyString(`{"error_code":-42}`)
		return true
	}
	// appliedThenSlow applies the call and answers after the business
	// server's data timeout (faultTimeout) has passed.
	appliedThenSlow fault = func(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler, _ int64) bool {
		next(ctx)
		time.Sleep(3 * faultTimeout)
		return true
	}
	// slowRead delays a read past the timeout; reads change nothing, so the
	// late answer is harmless.
	slowRead fault = func(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler, _ int64) bool {
		time.Sleep(3 * faultTimeout)
		next(ctx)
		return true
	}
	closeConn fault = func(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler, _ int64) bool {
		next(ctx)
		ctx.Response.Reset()
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(c net.Conn) { _ = c.Close() })
		return true
	}
)

const faultTimeout = 150 * time.Millisecond

// notFound answers like a data server without the route (the original's
// /commit and /idem).
var notFound fault = func(ctx *fasthttp.RequestCtx, _ fasthttp.RequestHandler, _ int64) bool {
	ctx.SetStatusCode(404)
	ctx.SetBodyString(`{"error_code":-12,"error":"no such route"}`)
	return true
}

// effect applies to want the operation of a business path, as if it had
// succeeded.
func effect(t *testing.T, want []int64, path string) []int64 {
	t.Helper()
	f := strings.Split(strings.TrimPrefix(path, "/"), "/")
	n := make([]int64, len(f)-1)
	for i, x := range f[1:] {
		v, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			t.Fatalf("effect(%q): %v", path, err)
		}
		n[i] = v
	}
	switch f[0] {
	case "deposito":
		return with(want, n[0], want[n[0]-1]+n[1])
	case "saque":
		return with(want, n[0], want[n[0]-1]-n[1])
	case "transferencia":
		return with(want, n[0], want[n[0]-1]-n[2], n[1], want[n[1]-1]+n[2])
	}
	t.Fatalf("effect(%q): not an operation that writes", path)
	return nil
}

// TestFailuresReleaseLocks injects data server failures into every step of
// every operation and checks that the operation is refused with the right
// status, that no lock stays held, and that no money appeared or vanished:
// a commit refused, or failed before it reached the data server, applied
// nothing; one whose answer was lost after it was applied (applied: true)
// applied all of the operation.
func TestFailuresReleaseLocks(t *testing.T) {
	type step struct {
		path    string
		status  int
		applied bool // applied although not answered 200
	}
	tests := []struct {
		name  string
		wrap  func(fasthttp.RequestHandler) fasthttp.RequestHandler
		steps []step
	}{
		{"getSaldo 500", on(wire.RouteGetSaldo, fail500), []step{{"/saldo/1", 503, false}}},
		{"getSaldo garbage", on(wire.RouteGetSaldo, garbage), []step{{"/saldo/1", 503, false}}},
		{"getSaldo too slow", on(wire.RouteGetSaldo, slowRead), []step{{"/saldo/1", 503, false}}},

		{"commit: stale fence", on(wire.RouteCommit, staleFence), []step{
			{"/deposito/1/10", 503, false}, {"/transferencia/1/2/10", 503, false}}},
		{"commit 500 before applying", on(wire.RouteCommit, fail500), []step{
			{"/deposito/1/10", 503, false}, {"/saque/1/10", 503, false}, {"/transferencia/1/2/10", 503, false}}},
		{"commit 503 (storage failed: not applied)", on(wire.RouteCommit, fail503), []step{
			{"/deposito/1/10", 503, false}, {"/transferencia/1/2/10", 503, false}}},
		{"commit garbage, not applied", on(wire.RouteCommit, garbage), []step{
			{"/transferencia/3/2/10", 503, false}}},
		{"commit applied, answer garbled", on(wire.RouteCommit, appliedThenGarbage), []step{
			{"/deposito/1/10", 503, true}, {"/transferencia/1/2/10", 503, true}}},
		{"commit applied, answer late", on(wire.RouteCommit, appliedThenSlow), []step{
			{"/transferencia/1/2/10", 503, true}}},
		{"commit applied, connection closed", on(wire.RouteCommit, closeConn), []step{
			{"/deposito/1/10", 503, true}, {"/saque/2/10", 503, true}, {"/transferencia/3/4/10", 503, true}}},
		{"commit unknown error code", on(wire.RouteCommit, unknownCode), []step{
			{"/transferencia/1/2/10", 500, false}}},
		{"commit refused, first unLock fails", compose(on(wire.RouteCommit, staleFence), on(wire.RouteUnLock, fail500, 1)), []step{
			{"/transferencia/1/2/10", 503, false}}},
		{"commit refused, unLock fails twice", compose(on(wire.RouteCommit, fail503), on(wire.RouteUnLock, fail503, 1, 2)), []step{
			{"/deposito/1/10", 503, false}}},
		{"commit lost, unLock answer late", compose(on(wire.RouteCommit, fail500), on(wire.RouteUnLock, appliedThenSlow, 1)), []step{
			{"/transferencia/1/2/10", 503, false}}},
		{"second commit fails, first succeeds", on(wire.RouteCommit, fail503, 2), []step{
			{"/transferencia/1/2/10", 200, false}, {"/transferencia/1/2/10", 503, false}, {"/transferencia/1/2/10", 200, false}}},

		{"getLock 500", compose(noGetLocks, on(wire.RouteGetLock, fail500)), []step{
			{"/deposito/1/10", 503, false}, {"/transferencia/1/2/10", 503, false}}},
		{"second getLock 500", compose(noGetLocks, on(wire.RouteGetLock, fail500, 2)), []step{
			{"/transferencia/1/2/10", 503, false}}},
		{"second getLock applied, answer late", compose(noGetLocks, on(wire.RouteGetLock, appliedThenSlow, 2)), []step{
			{"/transferencia/2/1/10", 503, false}}},
		{"getLocks 500", on(wire.RouteGetLocks, fail500), []step{
			{"/transferencia/1/2/10", 503, false}, {"/transferencia/2/1/10", 503, false}}},
		{"getLocks 503", on(wire.RouteGetLocks, fail503), []step{
			{"/transferencia/1/2/10", 503, false}}},
		{"getLocks applied, answer late", on(wire.RouteGetLocks, appliedThenSlow), []step{
			{"/transferencia/2/1/10", 503, false}}},
		{"getLocks applied, answer garbled", on(wire.RouteGetLocks, appliedThenGarbage), []step{
			{"/transferencia/1/2/10", 503, false}}},
		{"getLocks applied, connection closed", on(wire.RouteGetLocks, closeConn), []step{
			{"/transferencia/1/2/10", 503, false}}},
		{"getLocks applied, then the first unLock fails", compose(on(wire.RouteGetLocks, appliedThenGarbage), on(wire.RouteUnLock, fail500, 1)), []step{
			{"/transferencia/1/2/10", 503, false}}},
		{"getLocks stale grants answered", on(wire.RouteGetLocks, func(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler, _ int64) bool {
			next(ctx) // grants whose accounts are not the ones asked for: not the contract
			ctx.SetBodyString(`{"contas":[9,8],"fences":[1,1],"saldos":[5,5]}`)
			return true
		}), []step{{"/transferencia/1/2/10", 503, false}}},
		{"getLocks of one account applied, answer garbled", on(wire.RouteGetLocks, appliedThenGarbage, 1), []step{
			{"/saque/1/10", 503, false}}},
		{"getLock applied, answer garbled", compose(noGetLocks, on(wire.RouteGetLock, appliedThenGarbage, 1)), []step{
			{"/saque/1/10", 503, false}}},

		// A data server without /commit (ours before it): setSaldo under
		// the fences, the way it was done before.
		{"no /commit: all well", on(wire.RouteCommit, notFound), []step{
			{"/deposito/1/10", 200, false}, {"/saque/2/10", 200, false}, {"/transferencia/3/4/10", 200, false}}},
		{"no /commit: second setSaldo of a transfer 500", compose(on(wire.RouteCommit, notFound), on(wire.RouteSetSaldo, fail500, 2)), []step{
			{"/transferencia/1/2/10", 503, false}, {"/transferencia/1/2/10", 200, false}}},
		{"no /commit: setSaldo applied, connection closed", compose(on(wire.RouteCommit, notFound), on(wire.RouteSetSaldo, closeConn, 1, 2, 3)), []step{
			{"/deposito/1/10", 503, false}}},
		{"no /commit: second setSaldo of a transfer: stale fence", compose(on(wire.RouteCommit, notFound), on(wire.RouteSetSaldo, staleFence, 2)), []step{
			{"/transferencia/1/2/10", 503, false}}},

		// The original data server: grants without fences, no /commit.
		{"legacy: getSaldo 500", compose(legacy, on(wire.RouteGetSaldo, fail500)), []step{
			{"/deposito/1/10", 503, false}, {"/saque/1/10", 503, false}, {"/transferencia/1/2/10", 503, false}, {"/saldo/1", 503, false}}},
		{"legacy: second getSaldo of a transfer 500", compose(legacy, on(wire.RouteGetSaldo, fail500, 2)), []step{
			{"/transferencia/2/1/10", 503, false}}},
		{"legacy: getSaldo too slow", compose(legacy, on(wire.RouteGetSaldo, slowRead)), []step{
			{"/deposito/1/10", 503, false}, {"/transferencia/1/2/10", 503, false}}},
		{"legacy: getSaldo garbage", compose(legacy, on(wire.RouteGetSaldo, garbage)), []step{
			{"/deposito/1/10", 503, false}, {"/transferencia/1/2/10", 503, false}, {"/saldo/1", 503, false}}},
		{"legacy: second setSaldo of a transfer 500", compose(legacy, on(wire.RouteSetSaldo, fail500, 2)), []step{
			{"/transferencia/1/2/10", 503, false}, {"/transferencia/1/2/10", 200, false}}},
		{"legacy: setSaldo 503", compose(legacy, on(wire.RouteSetSaldo, fail503)), []step{
			{"/deposito/1/10", 503, false}, {"/transferencia/1/2/10", 503, false}}},
		{"legacy: first setSaldo of a transfer applied, answer garbled", compose(legacy, on(wire.RouteSetSaldo, appliedThenGarbage, 1)), []step{
			{"/transferencia/1/2/10", 503, false}}},
		{"legacy: second setSaldo of a transfer applied, answer late", compose(legacy, on(wire.RouteSetSaldo, appliedThenSlow, 2)), []step{
			{"/transferencia/1/2/10", 503, false}}},
		{"legacy: setSaldo unknown error code", compose(legacy, on(wire.RouteSetSaldo, unknownCode, 2)), []step{
			{"/transferencia/1/2/10", 500, false}}},
		{"legacy: unLock fails twice", compose(legacy, on(wire.RouteUnLock, fail500, 1, 2)), []step{
			{"/deposito/1/10", 200, false}}},
		{"legacy: unLock answer late", compose(legacy, on(wire.RouteUnLock, appliedThenSlow, 1)), []step{
			{"/transferencia/1/2/10", 200, false}}},
		{"legacy: all well", legacy, []step{
			{"/deposito/1/10", 200, false}, {"/saque/2/10", 200, false}, {"/transferencia/3/4/10", 200, false}, {"/saldo/3", 200, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{Wrap: tt.wrap})
			bs := startBusiness(t, data, businesstest.Options{DataTimeout: faultTimeout,
				LockWait: 50 * time.Millisecond, RequestTimeout: 20 * time.Second})
			want := uniform(10, 1000)
			for _, st := range tt.steps {
				r := get(t, bs.URL+st.path)
				if r.status != st.status {
					t.Errorf("%s: status %d, want %d (%s)", st.path, r.status, st.status, r.body)
				}
				switch {
				case r.status == 200 && r.ans.SaldoOrig != nil:
					want = with(want, *r.ans.ContaOrig, *r.ans.SaldoOrig, *r.ans.ContaDest, *r.ans.SaldoDest)
				case r.status == 200 && r.ans.Saldo != nil && r.ans.Valor != nil:
					want = with(want, *r.ans.Conta, *r.ans.Saldo)
				case r.status != 200 && st.applied:
					want = effect(t, want, st.path)
				}
				if r.status == 503 && st.applied && !strings.Contains(r.ans.Error, "may or may not have been applied") {
					t.Errorf("%s: message %q does not say the outcome is unknown", st.path, r.ans.Error)
				}
				checkBank(t, data, want)
			}
		})
	}
}

// TestPanicReleasesLocks: a panic at any stage of an operation is answered
// 500, every lock is released, and the server keeps serving; the balances
// change only when the panic came after the commit (or, without /commit,
// they are rolled back).
func TestPanicReleasesLocks(t *testing.T) {
	tests := []struct {
		stage   string
		wrap    func(fasthttp.RequestHandler) fasthttp.RequestHandler
		paths   []string // operations that reach the stage
		applied bool
	}{
		{"locked", nil, []string{"/transferencia/1/2/10", "/deposito/3/10", "/saque/4/10"}, false},
		{"before-commit", nil, []string{"/transferencia/1/2/10", "/deposito/3/10", "/saque/4/10"}, false},
		{"after-commit", nil, []string{"/transferencia/1/2/10", "/deposito/3/10", "/saque/4/10"}, true},
		{"before-commit", legacy, []string{"/transferencia/1/2/10", "/deposito/3/10"}, false},
		{"between-writes", legacy, []string{"/transferencia/1/2/10", "/transferencia/2/1/10"}, false},
	}
	for _, tt := range tests {
		name := tt.stage
		if tt.wrap != nil {
			name = "legacy " + name
		}
		t.Run(name, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{Wrap: tt.wrap})
			bs := startBusiness(t, data, businesstest.Options{})
			business.SetHook(bs.Server, func(s string) {
				if s == tt.stage {
					panic("injected at " + s)
				}
			})
			want := uniform(10, 1000)
			for _, p := range tt.paths {
				wantError(t, get(t, bs.URL+p), 500, int64(teller.Internal))
				if tt.applied {
					want = effect(t, want, p)
				}
				checkBank(t, data, want)
			}
			business.SetHook(bs.Server, nil)
			if r := get(t, bs.URL+"/transferencia/1/2/10"); r.status != 200 {
				t.Fatalf("after the panics: %d %s", r.status, r.body)
			}
			checkBank(t, data, effect(t, want, "/transferencia/1/2/10"))
		})
	}
}
