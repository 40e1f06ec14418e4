package dataclient_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/dataclient"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

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
	type call func(ctx context.Context, c *dataclient.Client) error
	read := func(ctx context.Context, c *dataclient.Client) error {
		_, err := c.Read(ctx, 1)
		return err
	}
	lockCommit := func(ctx context.Context, c *dataclient.Client) error {
		var gs [2]teller.Grant
		if err := c.Lock(ctx, []int64{1, 2}, teller.LockOptions{}, gs[:]); err != nil {
			return err
		}
		_, err := c.Commit(ctx, []teller.Change{{Conta: 1, Saldo: 990, Fence: gs[0].Fence}, {Conta: 2, Saldo: 1010, Fence: gs[1].Fence}}, true, nil)
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
			c, err := dataclient.New(dataclient.Config{
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
			case !tt.ok && !errors.Is(err, teller.ErrUnavailable):
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
