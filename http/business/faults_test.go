package business_test

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

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
// so that the business server reads the balances with getSaldo.
var legacy = on(wire.RouteGetLock, func(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler, _ int64) bool {
	next(ctx)
	if strings.Contains(string(ctx.Response.Body()), `"fence"`) {
		ctx.SetBodyString(`{}`)
	}
	return true
})

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

// TestFailuresReleaseLocks injects data server failures into every step of
// every operation and checks that the operation is refused with the right
// status, that no lock stays held, and that no money appeared or vanished.
func TestFailuresReleaseLocks(t *testing.T) {
	type step struct {
		path   string
		status int
	}
	tests := []struct {
		name  string
		wrap  func(fasthttp.RequestHandler) fasthttp.RequestHandler
		steps []step
	}{
		{"getSaldo 500", on(wire.RouteGetSaldo, fail500), []step{{"/saldo/1", 503}}},
		{"getSaldo garbage", on(wire.RouteGetSaldo, garbage), []step{{"/saldo/1", 503}}},
		{"getSaldo too slow", on(wire.RouteGetSaldo, slowRead), []step{{"/saldo/1", 503}}},
		{"legacy: getSaldo 500", compose(legacy, on(wire.RouteGetSaldo, fail500)), []step{
			{"/deposito/1/10", 503}, {"/saque/1/10", 503}, {"/transferencia/1/2/10", 503}, {"/saldo/1", 503}}},
		{"legacy: second getSaldo of a transfer 500", compose(legacy, on(wire.RouteGetSaldo, fail500, 2)), []step{
			{"/transferencia/2/1/10", 503}}},
		{"legacy: getSaldo too slow", compose(legacy, on(wire.RouteGetSaldo, slowRead)), []step{
			{"/deposito/1/10", 503}, {"/transferencia/1/2/10", 503}}},
		{"legacy: getSaldo garbage", compose(legacy, on(wire.RouteGetSaldo, garbage)), []step{
			{"/deposito/1/10", 503}, {"/transferencia/1/2/10", 503}, {"/saldo/1", 503}}},
		{"legacy: second setSaldo of a transfer 500", compose(legacy, on(wire.RouteSetSaldo, fail500, 2)), []step{
			{"/transferencia/1/2/10", 503}, {"/transferencia/1/2/10", 200}}},
		{"legacy: all well", legacy, []step{
			{"/deposito/1/10", 200}, {"/saque/2/10", 200}, {"/transferencia/3/4/10", 200}, {"/saldo/3", 200}}},
		{"second setSaldo of a transfer: stale fence", on(wire.RouteSetSaldo, staleFence, 2), []step{
			{"/transferencia/1/2/10", 503}}},
		{"setSaldo: stale fence", on(wire.RouteSetSaldo, staleFence, 1), []step{
			{"/deposito/1/10", 503}}},
		{"setSaldo 500", on(wire.RouteSetSaldo, fail500), []step{
			{"/deposito/1/10", 503}, {"/saque/1/10", 503}, {"/transferencia/1/2/10", 503}}},
		{"setSaldo 503", on(wire.RouteSetSaldo, fail503), []step{
			{"/deposito/1/10", 503}, {"/transferencia/1/2/10", 503}}},
		{"second setSaldo of a transfer 500", on(wire.RouteSetSaldo, fail500, 2), []step{
			{"/transferencia/1/2/10", 503}}},
		{"second setSaldo of a transfer garbage", on(wire.RouteSetSaldo, garbage, 2), []step{
			{"/transferencia/3/2/10", 503}}},
		{"setSaldo applied, answer garbled", on(wire.RouteSetSaldo, appliedThenGarbage, 1), []step{
			{"/deposito/1/10", 503}}},
		{"first setSaldo of a transfer applied, answer garbled", on(wire.RouteSetSaldo, appliedThenGarbage, 1), []step{
			{"/transferencia/1/2/10", 503}}},
		{"second setSaldo of a transfer applied, answer garbled", on(wire.RouteSetSaldo, appliedThenGarbage, 2), []step{
			{"/transferencia/1/2/10", 503}}},
		{"second setSaldo of a transfer applied, answer late", on(wire.RouteSetSaldo, appliedThenSlow, 2), []step{
			{"/transferencia/1/2/10", 503}}},
		{"setSaldo applied, connection closed", on(wire.RouteSetSaldo, closeConn, 1, 2, 3), []step{
			{"/deposito/1/10", 503}}},
		{"setSaldo unknown error code", on(wire.RouteSetSaldo, unknownCode, 2), []step{
			{"/transferencia/1/2/10", 500}}},
		{"getLock 500", on(wire.RouteGetLock, fail500), []step{
			{"/deposito/1/10", 503}, {"/transferencia/1/2/10", 503}}},
		{"second getLock 500", on(wire.RouteGetLock, fail500, 2), []step{
			{"/transferencia/1/2/10", 503}}},
		{"second getLock applied, answer late", on(wire.RouteGetLock, appliedThenSlow, 2), []step{
			{"/transferencia/2/1/10", 503}}},
		{"getLock applied, answer garbled", on(wire.RouteGetLock, appliedThenGarbage, 1), []step{
			{"/saque/1/10", 503}}},
		{"unLock fails twice", on(wire.RouteUnLock, fail500, 1, 2), []step{
			{"/deposito/1/10", 200}}},
		{"unLock of a transfer fails once", on(wire.RouteUnLock, fail503, 1), []step{
			{"/transferencia/1/2/10", 200}}},
		{"unLock answer late", on(wire.RouteUnLock, appliedThenSlow, 1), []step{
			{"/transferencia/1/2/10", 200}}},
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
				if r.status == 200 {
					switch {
					case r.ans.SaldoOrig != nil:
						want = with(want, *r.ans.ContaOrig, *r.ans.SaldoOrig, *r.ans.ContaDest, *r.ans.SaldoDest)
					case r.ans.Saldo != nil:
						want = with(want, *r.ans.Conta, *r.ans.Saldo)
					}
				}
				checkBank(t, data, want)
			}
		})
	}
}

// TestPanicReleasesLocks: a panic in the middle of a transfer (after the
// source was debited) is answered 500, rolled back and unlocked, and the
// server keeps serving.
func TestPanicReleasesLocks(t *testing.T) {
	tests := []struct {
		stage string
		paths []string // operations that reach the stage
	}{
		{"locked", []string{"/transferencia/1/2/10", "/deposito/3/10", "/saque/4/10"}},
		{"between-writes", []string{"/transferencia/1/2/10", "/transferencia/2/1/10"}},
		{"written", []string{"/transferencia/1/2/10", "/deposito/3/10", "/saque/4/10"}},
	}
	for _, tt := range tests {
		t.Run(tt.stage, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{})
			bs := startBusiness(t, data, businesstest.Options{})
			business.SetHook(bs.Server, func(s string) {
				if s == tt.stage {
					panic("injected at " + s)
				}
			})
			for _, p := range tt.paths {
				wantError(t, get(t, bs.URL+p), 500, int64(wire.Internal))
				checkBank(t, data, uniform(10, 1000))
			}
			business.SetHook(bs.Server, nil)
			if r := get(t, bs.URL+"/transferencia/1/2/10"); r.status != 200 {
				t.Fatalf("after the panics: %d %s", r.status, r.body)
			}
			checkBank(t, data, with(uniform(10, 1000), 1, 990, 2, 1010))
		})
	}
}
