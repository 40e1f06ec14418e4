package business_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/freeport"
)

// closedURL returns the URL of a loopback port nobody listens on: a data
// server that is down.
func closedURL(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// TestDataClientFailover: a DataClient given two data servers of one bank
// (two HTTP servers over the same accounts) calls the first, and repeats a
// call on the second only when the first failure says it is safe: nothing
// was sent, or our data server's 503 UNAVAILABLE (not applied); for reads,
// any failure. A write whose outcome is unknown (500, garbled) is never
// repeated elsewhere.
func TestDataClientFailover(t *testing.T) {
	fail500 := func(fasthttp.RequestHandler) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) { ctx.Error("boom", 500) }
	}
	notApplied := func(fasthttp.RequestHandler) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			ctx.SetStatusCode(503)
			ctx.SetBodyString(`{"error_code":-9,"error":"storage unavailable; not applied"}`)
		}
	}
	type call func(ctx context.Context, c *business.DataClient) error
	read := func(ctx context.Context, c *business.DataClient) error {
		_, err := c.Read(ctx, 1)
		return err
	}
	lockCommit := func(ctx context.Context, c *business.DataClient) error {
		gs, err := c.LockMany(ctx, []int64{1, 2}, 0)
		if err != nil {
			return err
		}
		_, err = c.Commit(ctx, []business.Change{{Conta: 1, Saldo: 990, Fence: gs[0].Fence}, {Conta: 2, Saldo: 1010, Fence: gs[1].Fence}}, true, nil)
		return err
	}
	tests := []struct {
		name  string
		first string // "down", "500", "503"
		call  call
		// ok: the call succeeds (through the second server); otherwise it
		// fails with the first server's error and the second is not asked.
		ok bool
	}{
		{"read, first down", "down", read, true},
		{"read, first 500", "500", read, true},
		{"read, first 503 not applied", "503", read, true},
		{"lock and commit, first down", "down", lockCommit, true},
		{"lock and commit, first 503 not applied", "503", lockCommit, true},
		{"lock, first 500: outcome unknown, not repeated", "500", lockCommit, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wrap func(fasthttp.RequestHandler) fasthttp.RequestHandler
			switch tt.first {
			case "500":
				wrap = fail500
			case "503":
				wrap = notApplied
			}
			data := dataservertest.Start(t, dataservertest.Options{})
			var second atomic.Int64
			other := data.Second(t) // the healthy one
			firstURL := closedURL(t)
			if tt.first != "down" {
				firstURL = startFailing(t, wrap(nil))
			}
			secondURL := countingProxy(t, other.URL, &second)
			c, err := business.NewDataClient(business.DataClientConfig{
				URL: firstURL + "," + secondURL, ServerToken: data.ServerToken, ID: "failover:1",
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			err = tt.call(t.Context(), c)
			switch {
			case tt.ok && err != nil:
				t.Fatalf("call failed: %v", err)
			case tt.ok && second.Load() == 0:
				t.Fatal("succeeded without asking the second data server")
			case !tt.ok && err == nil:
				t.Fatal("succeeded; want the first data server's failure")
			case !tt.ok && !errors.Is(err, business.ErrUnavailable):
				t.Fatalf("error %v, want ErrUnavailable", err)
			case !tt.ok && second.Load() != 0:
				t.Fatalf("a call whose outcome was unknown went to the second data server (%d calls)", second.Load())
			}
			if tt.ok && strings.Contains(tt.name, "commit") {
				if b, _ := data.Balances(t); b[0] != 990 || b[1] != 1010 {
					t.Fatalf("balances %v, want 990 and 1010 first", b[:2])
				}
			}
		})
	}
}

// startFailing starts a data server that answers every request with
// handler (a failure), and returns its URL.
func startFailing(t *testing.T, handler fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: handler, CloseOnShutdown: true}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return "http://" + ln.Addr().String()
}

// countingProxy forwards every request to target and counts them.
func countingProxy(t *testing.T, target string, n *atomic.Int64) string {
	t.Helper()
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(target, "http://")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{CloseOnShutdown: true, Handler: func(ctx *fasthttp.RequestCtx) {
		n.Add(1)
		req := &ctx.Request
		req.SetRequestURI(target + string(req.RequestURI()))
		if err := hc.Do(req, &ctx.Response); err != nil {
			ctx.Error(err.Error(), 502)
		}
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown(); hc.CloseIdleConnections() })
	return "http://" + ln.Addr().String()
}

// TestBusinessFailsOverWhenADataServerDies runs a business server in front
// of two data servers of one bank, over real HTTP, and stops the first
// (the one it calls) in the middle of a concurrent run of transfers,
// deposits and reads. Operations in flight at that moment may fail and are
// retried with their Idempotency-Key, as a client does; once the first
// data server is gone, every operation succeeds at the first attempt,
// through the second. Money is conserved throughout.
func TestBusinessFailsOverWhenADataServerDies(t *testing.T) {
	a := dataservertest.Start(t, dataservertest.Options{})
	b := a.Second(t)
	bs := startBusiness(t, a, businesstest.Options{DataURL: a.URL + "," + b.URL})

	var deposited atomic.Int64
	// op runs operation i (a transfer, a deposit or a read), retrying an
	// answer other than 200 with the same key, at most retries times.
	op := func(worker, i, retries int) (attempts int, last result, err error) {
		var path string
		switch i % 3 {
		case 0:
			path = fmt.Sprintf("/transferencia/%d/%d/7", 1+(worker+i)%10, 1+(worker+i+1)%10)
		case 1:
			path = fmt.Sprintf("/deposito/%d/3", 1+(worker*7+i)%10)
		default:
			path = fmt.Sprintf("/saldo/%d", 1+i%10)
		}
		key := "w" + strconv.Itoa(worker) + "-" + strconv.Itoa(i)
		for attempts = 1; ; attempts++ {
			if last, err = tryDoKey("GET", bs.URL+path, token, key); err != nil {
				return attempts, last, err
			}
			if last.status == 200 || attempts > retries {
				break
			}
		}
		if last.status == 200 && i%3 == 1 {
			deposited.Add(3)
		}
		return attempts, last, nil
	}

	const workers, perWorker = 4, 60
	var wg sync.WaitGroup
	var done atomic.Int64
	killed := make(chan struct{})
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				if _, r, err := op(w, i, 3); err != nil || r.status != 200 {
					errs <- fmt.Errorf("worker %d op %d: %d %s %v", w, i, r.status, r.body, err)
					return
				}
				// Halfway through, the first data server goes away.
				if done.Add(1) == workers*perWorker/2 {
					go func() { a.StopHTTP(); close(killed) }()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	<-killed
	// The first data server is gone: every operation succeeds at once.
	for i := range 30 {
		attempts, r, err := op(99, i, 0)
		if err != nil || r.status != 200 || attempts != 1 {
			t.Fatalf("after the failover, op %d: %d %s (%d attempts) %v", i, r.status, r.body, attempts, err)
		}
	}
	if !strings.Contains(b.LogText(), "commit") {
		t.Error("the second data server served no commit")
	}
	balances, holders := a.Balances(t)
	var sum int64
	for i, v := range balances {
		sum += v
		if holders[i] != "" {
			t.Errorf("account %d still locked by %q", i+1, holders[i])
		}
	}
	if want := 10*1000 + deposited.Load(); sum != want {
		t.Errorf("sum of balances %d, want %d (10000 + %d acknowledged deposits)", sum, want, deposited.Load())
	}
}
