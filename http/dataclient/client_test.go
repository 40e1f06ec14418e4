package dataclient_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/dataclient"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

func TestDataClientErrors(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	ctx := context.Background()
	a := newClient(t, data, "10.0.0.1:5001")
	b := newClient(t, data, "10.0.0.2:5001")

	if err := a.Authenticate(ctx, token); err != nil {
		t.Errorf("Authenticate(valid): %v", err)
	}
	g, err := lock1(ctx, a, 1, 0)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if g.Fence == 0 || !g.HasSaldo || g.Saldo != 1000 {
		t.Errorf("grant %+v: want a fence and the balance 1000", g)
	}
	g2, err := lock1(ctx, a, 1, 0)
	if err != nil {
		t.Errorf("re-entrant Lock: %v", err)
	}
	if err := a.Write(ctx, 1, 1234, g2.Fence); err != nil {
		t.Errorf("Write: %v", err)
	}
	if n, err := b.Read(ctx, 1); err != nil || n != 1234 {
		t.Errorf("Read of a locked account = %d, %v", n, err)
	}

	tests := []struct {
		name string
		err  error
		want error
	}{
		{"auth unknown token", a.Authenticate(ctx, "nope"), teller.ErrUnauthorized},
		{"auth empty token", a.Authenticate(ctx, ""), teller.ErrUnauthorized},
		{"lock held by other", second(lock1(ctx, b, 1, 0)), teller.ErrLocked},
		{"lock held by other, waiting", second(lock1(ctx, b, 1, 50*time.Millisecond)), teller.ErrLocked},
		{"write while other holds", b.Write(ctx, 1, 5, 0), teller.ErrLocked},
		{"unlock other's lock", b.Unlock(ctx, 1, 0), teller.ErrLocked},
		{"negative balance", a.Write(ctx, 2, -1, 0), teller.ErrInvalidValue},
		{"lock missing account", second(lock1(ctx, a, 11, 0)), teller.ErrNotFound},
		{"read missing account", func() error { _, err := a.Read(ctx, 0); return err }(), teller.ErrNotFound},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if err := a.Unlock(ctx, 1, g2.Fence); err != nil {
		t.Errorf("Unlock: %v", err)
	}
	if err := a.Unlock(ctx, 1, 0); err != nil {
		t.Errorf("Unlock of a free account: %v", err)
	}
	// A grant that is over fences off writes and unlocks made under it.
	g3, err := lock1(ctx, b, 1, 0)
	if err != nil || g3.Fence <= g2.Fence || g3.Saldo != 1234 {
		t.Fatalf("Lock after release = %+v, %v", g3, err)
	}
	if err := b.Unlock(ctx, 1, g3.Fence); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(ctx, 1, 7, g3.Fence); !errors.Is(err, teller.ErrStaleFence) {
		t.Errorf("Write under a released grant: %v", err)
	}
	if err := b.Unlock(ctx, 1, g3.Fence); err != nil && !errors.Is(err, teller.ErrStaleFence) {
		t.Errorf("Unlock under a released grant: %v", err)
	}

	for _, cred := range []string{"wrong", token} {
		c, err := dataclient.New(dataclient.Config{URL: data.URL, ServerToken: cred, ID: "x:1"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Read(ctx, 1)
		var de *dataclient.DataError
		if !errors.Is(err, dataclient.ErrCredentialRefused) || !errors.As(err, &de) || de.Status == 0 {
			t.Errorf("credential %q: %v", cred, err)
		}
		if strings.Contains(err.Error(), cred) {
			t.Errorf("error %q leaks the credential", err)
		}
	}
	wantBank(t, data, 1234, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000)
}

func TestDataClientUnavailable(t *testing.T) {
	c, err := dataclient.New(dataclient.Config{URL: closedURL(t), ServerToken: "x", ID: "x:1",
		Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = lock1(context.Background(), c, 1, 0)
	if !errors.Is(err, teller.ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Errorf("Lock on a closed port: %v after %v", err, time.Since(start))
	}

	// A context that is already over fails at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Unlock(ctx, 1, 0); !errors.Is(err, teller.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Unlock with a cancelled context: %v", err)
	}

	slow := dataservertest.Start(t, dataservertest.Options{Wrap: func(h fasthttp.RequestHandler) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == wire.RouteGetSaldo {
				time.Sleep(time.Second)
			}
			h(ctx)
		}
	}})
	c2, err := dataclient.New(dataclient.Config{URL: slow.URL, ServerToken: slow.ServerToken, ID: "x:1",
		Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = c2.Read(context.Background(), 1)
	var de *dataclient.DataError
	if !errors.Is(err, teller.ErrUnavailable) || !errors.As(err, &de) || !strings.Contains(de.Reason, "in time") {
		t.Errorf("slow Read: %v", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("slow Read returned after %v, want about the 100ms timeout", d)
	}
}

// TestDataClientBurst: far more concurrent calls than connections wait
// for a free connection instead of failing.
func TestDataClientBurst(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	c, err := dataclient.New(dataclient.Config{URL: data.URL, ServerToken: data.ServerToken, ID: "x:1",
		MaxConns: 2, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := range 300 {
		wg.Go(func() {
			if n, err := c.Read(context.Background(), int64(1+i%10)); err != nil || n != 1000 {
				errs <- errors.Join(err, errors.New("wrong balance"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
