package business_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
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

// loadStats sums up the answers of opposite.
type loadStats struct {
	sent, answered int
	status         map[int]int   // answers per HTTP status
	code403        map[int64]int // error_code of the 403s
	maxElapsed     time.Duration // slowest answer
	max403         time.Duration // slowest 403
	want           []int64       // balances implied by the 200 answers
	errs           []string      // transport errors and unexpected answers
}

// opposite runs, for dur, clients goroutines that each send transfers of 1
// in a loop: client i moves money between the accounts of pair i%4
// ((1,2), (3,4), (5,6), (7,8)), in the direction (i/4)%2, through server
// i%len(servers). So every pair sees transfers in both directions at once,
// through every server. It returns what was answered and the balances the
// successful transfers imply, starting from initial.
func opposite(t *testing.T, servers []*businesstest.Server, initial []int64, clients int, dur time.Duration) loadStats {
	t.Helper()
	st := loadStats{status: map[int]int{}, code403: map[int64]int{}, want: append([]int64(nil), initial...)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(dur)
	for i := range clients {
		pair := int64(i % 4)
		orig, dest := 2*pair+1, 2*pair+2
		if (i/4)%2 == 1 {
			orig, dest = dest, orig
		}
		url := fmt.Sprintf("%s/transferencia/%d/%d/1", servers[i%len(servers)].URL, orig, dest)
		wg.Go(func() {
			for time.Now().Before(stop) {
				r, err := tryDo(http.MethodGet, url, token)
				mu.Lock()
				st.sent++
				if err != nil {
					st.errs = append(st.errs, fmt.Sprintf("%s: %v", url, err))
					mu.Unlock()
					continue
				}
				st.answered++
				st.status[r.status]++
				st.maxElapsed = max(st.maxElapsed, r.elapsed)
				switch r.status {
				case http.StatusOK:
					st.want[orig-1]--
					st.want[dest-1]++
				case http.StatusForbidden:
					st.max403 = max(st.max403, r.elapsed)
					if r.ans.ErrorCode != nil {
						st.code403[*r.ans.ErrorCode]++
					}
				case http.StatusConflict: // insufficient funds: nothing changed
				default:
					st.errs = append(st.errs, fmt.Sprintf("%s: %d %s", url, r.status, r.body))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return st
}

func sum(b []int64) (s int64) {
	for _, v := range b {
		s += v
	}
	return s
}

// TestLockOrder runs opposite transfers between the same pairs of
// accounts through three business servers in queueing (wait) mode. In
// ascending order no operation ever waits in a cycle, so none is refused;
// in request order opposite transfers lock each other's first account and
// wait for the other until LockWait runs out: they end in 403
// LOCKED_ACCOUNT, never in a hang, and the bank stays consistent.
func TestLockOrder(t *testing.T) {
	const (
		clients = 32
		runFor  = 2 * time.Second
	)
	tests := []struct {
		name     string
		order    business.LockOrder
		lockWait time.Duration
		want403  bool          // some 403 expected (else none allowed)
		bound    time.Duration // every answer within this
	}{
		{"ascending", business.OrderAscending, 0 /* default 2s */, false, 2 * time.Second},
		// The bound stays under the request timeout (LockWait +
		// 4*DataTimeout = 4.1s): the waits end by LockWait, not by giving up.
		{"request", business.OrderRequest, 100 * time.Millisecond, true, 100*time.Millisecond + 2*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{})
			var servers []*businesstest.Server
			for range 3 {
				servers = append(servers, startBusiness(t, data, businesstest.Options{
					LockMode: business.ModeWait, LockOrder: tt.order, LockWait: tt.lockWait, DataTimeout: time.Second}))
			}
			initial, _ := data.Balances(t)
			st := opposite(t, servers, initial, clients, runFor)
			t.Logf("%s order: %d requests, statuses %v, 403 codes %v, slowest answer %v, slowest 403 %v",
				tt.name, st.sent, st.status, st.code403, st.maxElapsed, st.max403)

			for _, e := range st.errs[:min(len(st.errs), 10)] {
				t.Error(e)
			}
			if st.answered != st.sent || st.sent < clients {
				t.Errorf("%d requests sent, %d answered", st.sent, st.answered)
			}
			if st.status[http.StatusOK] == 0 {
				t.Error("no transfer succeeded")
			}
			n403 := st.status[http.StatusForbidden]
			switch {
			case tt.want403 && n403 == 0:
				t.Error("no 403: opposite transfers in request order never waited for each other")
			case !tt.want403 && n403 > 0:
				t.Errorf("%d answers 403 in %s order, want none", n403, tt.name)
			}
			if n403 != st.code403[int64(teller.LockedAccount)] {
				t.Errorf("403 error codes %v, want LOCKED_ACCOUNT (%d) only", st.code403, teller.LockedAccount)
			}
			if st.maxElapsed > tt.bound {
				t.Errorf("slowest answer took %v, want at most %v", st.maxElapsed, tt.bound)
			}
			// Exactly the successful transfers were applied (which
			// conserves money), and no lock is left held.
			checkBank(t, data, st.want)
			if got, want := sum(st.want), sum(initial); got != want {
				t.Errorf("total %d, want %d", got, want)
			}
		})
	}
}

// TestSchemesOverHTTP: in request order, where plain waiting ends in 403s
// (TestLockOrder), every concurrency-control scheme lets every opposite
// transfer through three business servers succeed: a cycle is broken by
// an abort and a retry, never by the wait running out. The aborts are
// counted, and the bank holds exactly what the answers imply.
func TestSchemesOverHTTP(t *testing.T) {
	for _, mode := range []business.LockMode{business.ModeWaitDie, business.ModeWoundWait, business.ModeDetect, business.ModeOCC} {
		t.Run(string(mode), func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{})
			var servers []*businesstest.Server
			for range 3 {
				servers = append(servers, startBusiness(t, data, businesstest.Options{
					LockMode: mode, LockOrder: business.OrderRequest, LockWait: 10 * time.Second, DataTimeout: time.Second}))
			}
			initial, _ := data.Balances(t)
			st := opposite(t, servers, initial, 16, time.Second)
			for _, e := range st.errs[:min(len(st.errs), 10)] {
				t.Error(e)
			}
			if st.status[http.StatusOK] != st.sent || st.sent < 16 {
				t.Errorf("%s: %d sent, statuses %v: want every one 200", mode, st.sent, st.status)
			}
			checkBank(t, data, st.want)
			var aborts, attempts, done uint64
			for _, s := range servers {
				stats := s.Server.Stats()
				if stats.Attempts != stats.Done+stats.Aborts() {
					t.Errorf("stats %+v: attempts are not done + aborts", stats)
				}
				aborts, attempts, done = aborts+stats.Aborts(), attempts+stats.Attempts, done+stats.Done
			}
			if aborts == 0 {
				t.Errorf("%s: no abort in %d opposite transfers in request order: the scheme was never exercised", mode, st.sent)
			}
			t.Logf("%s: %d transfers, %d attempts, %d aborts, slowest answer %v", mode, done, attempts, aborts, st.maxElapsed)
		})
	}
}

// getLockParams records the wait and ttl parameters of the getLock and
// getLocks requests of the data server it wraps.
type getLockParams struct {
	mu         sync.Mutex
	waits, ttl []string
}

func (p *getLockParams) wrap(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if path := string(ctx.Path()); path != wire.RouteGetLock && path != wire.RouteGetLocks {
			h(ctx)
			return
		}
		{
			p.mu.Lock()
			p.waits = append(p.waits, string(ctx.QueryArgs().Peek(wire.ParamWait)))
			p.ttl = append(p.ttl, string(ctx.QueryArgs().Peek(wire.ParamTTL)))
			p.mu.Unlock()
		}
		h(ctx)
	}
}

// waited reports how many getLocks asked to wait.
func (p *getLockParams) waited() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, w := range p.waits {
		if w != "" {
			n++
		}
	}
	return n
}

// TestFailFast: in fail-fast mode a lock held by another business server,
// or by another request of the same business server, is refused at once
// (403, long before LockWait) and the refused operation changes nothing.
func TestFailFast(t *testing.T) {
	const lockWait = 10 * time.Second
	paths := []string{"/deposito/3/10", "/saque/3/10", "/transferencia/3/4/10", "/transferencia/4/3/10",
		"/transferencia/2/3/10"}
	tests := []struct {
		name string
		// hold locks account 3 and returns what undoes it (and the
		// balances expected then).
		hold func(t *testing.T, data *dataservertest.Server, bs *businesstest.Server, pause *pauser) (release func(), after []int64)
	}{
		{"held by another business server", func(t *testing.T, data *dataservertest.Server, _ *businesstest.Server, _ *pauser) (func(), []int64) {
			other := otherClient(t, data, "10.9.9.9:5001")
			g, err := lockOne(other, 3)
			if err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := other.Unlock(context.Background(), 3, g.Fence); err != nil {
					t.Error(err)
				}
			}, uniform(10, 1000)
		}},
		{"held by a request of the same business server", func(t *testing.T, _ *dataservertest.Server, bs *businesstest.Server, pause *pauser) (func(), []int64) {
			done := pause.start(bs.URL + "/deposito/3/7")
			return func() {
				pause.resume()
				if r := <-done; r.status != 200 {
					t.Errorf("the paused deposit: %d %s", r.status, r.body)
				}
			}, with(uniform(10, 1000), 3, 1007)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var params getLockParams
			data := dataservertest.Start(t, dataservertest.Options{Wrap: params.wrap})
			pause := newPauser("locked")
			bs := startBusiness(t, data, businesstest.Options{LockMode: business.ModeFailFast, LockWait: lockWait,
				Hook: pause.hook})
			t.Cleanup(pause.resume)
			release, after := tt.hold(t, data, bs, pause)
			for _, p := range paths {
				r := get(t, bs.URL+p)
				wantError(t, r, 403, int64(teller.LockedAccount))
				if r.elapsed > lockWait/10 {
					t.Errorf("%s refused after %v: want at once (LockWait %v)", p, r.elapsed, lockWait)
				}
			}
			release()
			checkBank(t, data, after)
			// Free again, the same operations succeed.
			if r := get(t, bs.URL+"/transferencia/3/4/10"); r.status != 200 {
				t.Errorf("after release: %d %s", r.status, r.body)
			}
			checkBank(t, data, with(after, 3, after[2]-10, 4, after[3]+10))
			if n := params.waited(); n != 0 {
				t.Errorf("%d getLocks asked the data server to wait in fail-fast mode", n)
			}
		})
	}
}

// pauser pauses, until resume, the first operation of a business server
// that reaches a stage after start was called.
type pauser struct {
	stage   string
	paused  chan struct{} // closed when the operation reaches the stage
	release chan struct{} // closed by resume
	armed   atomic.Bool   // set by start
	first   atomic.Bool   // an operation was paused
	once    sync.Once
}

// newPauser returns a pauser. Register t.Cleanup(p.resume) after starting
// the business server it pauses, so that a failing test resumes the paused
// operation before the server's shutdown waits for it.
func newPauser(stage string) *pauser {
	return &pauser{stage: stage, paused: make(chan struct{}), release: make(chan struct{})}
}

// hook is the business server's stage hook.
func (p *pauser) hook(stage string) {
	if stage == p.stage && p.armed.Load() && p.first.CompareAndSwap(false, true) {
		close(p.paused)
		<-p.release
	}
}

func (p *pauser) resume() { p.once.Do(func() { close(p.release) }) }

// start sends a request that the pauser will pause, and returns once it is
// paused; the answer arrives on the channel after resume.
func (p *pauser) start(url string) <-chan result {
	done := make(chan result, 1)
	p.armed.Store(true)
	go func() {
		r, err := tryDo(http.MethodGet, url, token)
		if err != nil {
			r.body = err.Error()
		}
		done <- r
	}()
	select {
	case <-p.paused:
	case r := <-done:
		done <- r // answered without pausing: let the caller see it
	}
	return done
}

// TestStaleGrant: a business server paused (at stage "locked") past its
// lease loses its locks to another business server, which completes its
// own operation; when the first resumes, its write is refused as
// STALE_FENCE, it answers 503, and no balance is changed by it: the other
// server's work is intact.
func TestStaleGrant(t *testing.T) {
	tests := []struct {
		name   string
		paused string // operation of the paused server
		other  string // operation of the other server, on a common account
		want   []int64
	}{
		{"deposit vs deposit", "/deposito/1/100", "/deposito/1/5", with(uniform(10, 1000), 1, 1005)},
		{"withdrawal vs transfer", "/saque/1/100", "/transferencia/1/2/5", with(uniform(10, 1000), 1, 995, 2, 1005)},
		{"transfer vs opposite transfer", "/transferencia/1/2/100", "/transferencia/2/1/5", with(uniform(10, 1000), 1, 1005, 2, 995)},
		// The other server takes the destination only: the source's lease
		// ran out all the same, so the first write is refused too.
		{"transfer vs deposit to its destination", "/transferencia/1/2/100", "/deposito/2/5", with(uniform(10, 1000), 2, 1005)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{})
			pause := newPauser("locked")
			slow := startBusiness(t, data, businesstest.Options{LockTTL: 300 * time.Millisecond, Hook: pause.hook})
			other := startBusiness(t, data, businesstest.Options{LockWait: 10 * time.Second})
			t.Cleanup(pause.resume)

			done := pause.start(slow.URL + tt.paused)
			// The other server queues behind the paused one and is granted
			// its locks when the 300ms leases run out.
			if r := get(t, other.URL+tt.other); r.status != 200 {
				t.Fatalf("%s on the other server: %d %s", tt.other, r.status, r.body)
			}
			pause.resume()
			r := <-done
			wantError(t, r, 503, int64(teller.Unavailable))
			if !strings.Contains(r.ans.Error, "lease") {
				t.Errorf("message %q does not say the lease ran out", r.ans.Error)
			}
			checkBank(t, data, tt.want)
		})
	}
}

// TestLockTTLParam: LockTTL is asked for with every getLock; zero leaves
// the lease to the data server.
func TestLockTTLParam(t *testing.T) {
	tests := []struct {
		ttl  time.Duration
		want string
	}{
		{0, ""},
		{1500 * time.Millisecond, "1500ms"},
		{time.Minute, "60000ms"},
	}
	for _, tt := range tests {
		t.Run(tt.ttl.String(), func(t *testing.T) {
			var params getLockParams
			data := dataservertest.Start(t, dataservertest.Options{Wrap: params.wrap})
			bs := startBusiness(t, data, businesstest.Options{LockTTL: tt.ttl})
			// One /getLocks for the transfer, one /getLock for the deposit.
			for _, path := range []string{"/transferencia/1/2/10", "/deposito/3/10"} {
				if r := get(t, bs.URL+path); r.status != 200 {
					t.Fatalf("%s: %d %s", path, r.status, r.body)
				}
			}
			params.mu.Lock()
			defer params.mu.Unlock()
			if len(params.ttl) != 2 {
				t.Fatalf("%d lock calls, want 2", len(params.ttl))
			}
			for _, got := range params.ttl {
				if got != tt.want {
					t.Errorf("ttl=%q, want %q", got, tt.want)
				}
			}
		})
	}
}

// TestLockParamsRefused: a data server that allows shorter leases or waits
// than the business server asks for refuses every lock; the answer (503)
// says which settings disagree, and nothing changes.
func TestLockParamsRefused(t *testing.T) {
	tests := []struct {
		name string
		max  string // query parameter the data server refuses
		opt  businesstest.Options
	}{
		{"ttl over the data server's maximum", wire.ParamTTL, businesstest.Options{LockTTL: 5 * time.Second}},
		{"wait over the data server's maximum", wire.ParamWait, businesstest.Options{LockWait: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := func(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler, _ int64) bool {
				if !ctx.QueryArgs().Has(tt.max) {
					return false
				}
				ctx.SetStatusCode(400)
				ctx.SetBodyString(`{"error_code":-12,"error":"longer than this server allows"}`)
				return true
			}
			refuse := compose(on(wire.RouteGetLock, f), on(wire.RouteGetLocks, f))
			data := dataservertest.Start(t, dataservertest.Options{Wrap: refuse})
			bs := startBusiness(t, data, tt.opt)
			for _, path := range []string{"/transferencia/1/2/10", "/deposito/1/10"} {
				r := get(t, bs.URL+path)
				wantError(t, r, 503, int64(teller.Unavailable))
				if !strings.Contains(r.ans.Error, "--max-lock-"+tt.max) {
					t.Errorf("%s: message %q does not name --max-lock-%s", path, r.ans.Error, tt.max)
				}
			}
			checkBank(t, data, uniform(10, 1000))
		})
	}
}
