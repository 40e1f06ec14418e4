package dataclient_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/dataclient"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/freeport"
	"github.com/bank/gobank/http/wire"
)

// token is a client token the test data servers accept.
const token = "ba0f"

// newClient returns a client of data for the lock holder id.
func newClient(t *testing.T, data *dataservertest.Server, id string) *dataclient.Client {
	t.Helper()
	c, err := dataclient.New(dataclient.Config{URL: data.URL, ServerToken: data.ServerToken, ID: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// lock1 locks the one account id and returns its grant.
func lock1(ctx context.Context, c *dataclient.Client, id int64, wait time.Duration) (teller.Grant, error) {
	var g [1]teller.Grant
	err := c.Lock(ctx, []int64{id}, teller.LockOptions{Wait: wait}, g[:])
	return g[0], err
}

func second[T any](_ T, err error) error { return err }

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

// wantBank checks the data server's balances (the first len(want)
// accounts; nil: none) and that no lock is held.
func wantBank(t testing.TB, data *dataservertest.Server, want ...int64) {
	t.Helper()
	balances, holders := data.Balances(t)
	for i, h := range holders {
		if h != "" {
			t.Errorf("account %d still locked by %q", i+1, h)
		}
	}
	for i := range want {
		if balances[i] != want[i] {
			t.Errorf("balances = %v, want %v first", balances, want)
			return
		}
	}
}

// original makes our data server answer like the original's on the wire:
// no /getLocks, /commit or /idem (404), and lock grants without fences
// ({}). Start it with AllowClientTokens, as the original takes client
// tokens on its data routes.
func original(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case wire.RouteGetLocks, wire.RouteCommit, wire.RouteIdem:
			ctx.SetStatusCode(fasthttp.StatusNotFound)
			ctx.SetBodyString(`{"error_code":-12,"error":"no such route"}`)
			return
		}
		next(ctx)
		if string(ctx.Path()) == wire.RouteGetLock && bytes.Contains(ctx.Response.Body(), []byte(`"fence"`)) {
			ctx.SetBodyString(`{}`)
		}
	}
}
