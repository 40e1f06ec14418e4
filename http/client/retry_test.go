package client_test

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/client"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/freeport"
	"github.com/bank/gobank/http/wire"
)

// keyLog records the Idempotency-Key of every operation request that
// reaches a business server, and fails the first len(fail) of them, the
// nth with status fail[n] (0: by closing the connection after applying
// the request).
type keyLog struct {
	fail []int

	n    atomic.Int64
	mu   sync.Mutex
	keys []string
}

func (k *keyLog) wrap(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		p := string(ctx.Path())
		if p == wire.RouteStatus {
			next(ctx)
			return
		}
		k.mu.Lock()
		k.keys = append(k.keys, string(ctx.Request.Header.Peek(wire.HeaderIdempotencyKey)))
		k.mu.Unlock()
		n := k.n.Add(1)
		if n > int64(len(k.fail)) {
			next(ctx)
			return
		}
		status := k.fail[n-1]
		if status == 0 {
			next(ctx)
			ctx.Response.Reset()
			ctx.HijackSetNoResponse(true)
			ctx.Hijack(func(c net.Conn) { _ = c.Close() })
			return
		}
		ctx.SetStatusCode(status)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"error_code":-9,"error":"injected"}`)
	}
}

func (k *keyLog) seen() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.keys...)
}

var hexKey = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestRetries: an operation whose outcome is unknown (503, 502, 504, a
// connection closed after the server applied it) is repeated with the
// same Idempotency-Key, and applied exactly once; refusals are not
// repeated; without retries no key is sent.
func TestRetries(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		fail     []int // statuses of the failed requests (0: connection closed after applying)
		opts     []client.Option
		call     func(c *client.Client) error
		requests int      // reaching the business server
		wantErr  error    // nil: success
		want     [2]int64 // balances of accounts 1 and 2 afterwards
		keyed    bool     // a key was sent
	}{
		{"503 once", []int{503}, nil,
			func(c *client.Client) error { _, err := c.Transferencia(ctx, 1, 2, 100); return err },
			2, nil, [2]int64{900, 1100}, true},
		{"502 then 504", []int{502, 504}, nil,
			func(c *client.Client) error { _, err := c.Deposito(ctx, 1, 5); return err },
			3, nil, [2]int64{1005, 1000}, true},
		{"connection closed after applying, twice", []int{0, 0}, nil,
			func(c *client.Client) error { _, err := c.Saque(ctx, 1, 600); return err },
			3, nil, [2]int64{400, 1000}, true},
		{"503 more often than the retries", []int{503, 503, 503}, nil,
			func(c *client.Client) error { _, err := c.Deposito(ctx, 1, 5); return err },
			3, client.ErrUnavailable, [2]int64{1000, 1000}, true},
		{"five retries", []int{503, 0, 504, 0, 502}, []client.Option{client.WithRetries(5)},
			func(c *client.Client) error { _, err := c.Transferencia(ctx, 2, 1, 5); return err },
			6, nil, [2]int64{1005, 995}, true},
		{"no retries: no key", []int{503}, []client.Option{client.WithRetries(0)},
			func(c *client.Client) error { _, err := c.Deposito(ctx, 1, 5); return err },
			1, client.ErrUnavailable, [2]int64{1000, 1000}, false},
		{"no retries, explicit key", nil, []client.Option{client.WithRetries(0)},
			func(c *client.Client) error { _, err := c.Deposito(ctx, 1, 5, client.Key("explicit")); return err },
			1, nil, [2]int64{1005, 1000}, true},
		{"500 is not retried", []int{500}, nil,
			func(c *client.Client) error { _, err := c.Deposito(ctx, 1, 5); return err },
			1, client.ErrUnavailable, [2]int64{1000, 1000}, true},
		{"a refusal is not retried", nil, nil,
			func(c *client.Client) error { _, err := c.Saque(ctx, 1, 5000); return err },
			1, client.ErrInsufficientFunds, [2]int64{1000, 1000}, true},
		{"saldo is retried, without a key", []int{503}, nil,
			func(c *client.Client) error { _, err := c.Saldo(ctx, 1); return err },
			2, nil, [2]int64{1000, 1000}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kl := &keyLog{fail: tt.fail}
			b := startBank(t, businesstest.Options{Wrap: kl.wrap})
			check(t, b, kl, tt.opts, tt.call, tt.requests, tt.wantErr, tt.want, tt.keyed)
		})
	}
}

func check(t *testing.T, b *bank, kl *keyLog, opts []client.Option, call func(*client.Client) error,
	requests int, wantErr error, want [2]int64, keyed bool) {
	t.Helper()
	c := b.client(t, "ba0f", opts...)
	err := call(c)
	switch {
	case wantErr == nil && err != nil:
		t.Fatalf("error %v, want success", err)
	case wantErr != nil && !errors.Is(err, wantErr):
		t.Fatalf("error %v, want %v", err, wantErr)
	}
	keys := kl.seen()
	if len(keys) != requests {
		t.Errorf("%d requests reached the business server, want %d", len(keys), requests)
	}
	for i, k := range keys {
		if k != keys[0] {
			t.Errorf("request %d: key %q, the first had %q", i+1, k, keys[0])
		}
	}
	if keyed != (len(keys) > 0 && keys[0] != "") {
		t.Errorf("keys %q; want a key: %v", keys, keyed)
	}
	if keyed && keys[0] != "explicit" && !hexKey.MatchString(keys[0]) {
		t.Errorf("key %q: want 128 random bits in hex", keys[0])
	}
	var e *client.Error
	if err != nil && errors.As(err, &e) && keyed && e.Key != keys[0] {
		t.Errorf("Error.Key %q, want the key sent, %q", e.Key, keys[0])
	}
	balances, holders := b.data.Balances(t)
	if balances[0] != want[0] || balances[1] != want[1] {
		t.Errorf("balances %v, want %v first", balances, want)
	}
	for i, h := range holders {
		if h != "" {
			t.Errorf("account %d still locked by %q", i+1, h)
		}
	}
}

// TestLostCommitRetried: the data server applies a transfer's /commit and
// its answer is lost (the connection closed, or a 500): the business server
// answers 503, the client repeats the transfer with the same key, and gets
// the first outcome; the money moved exactly once.
func TestLostCommitRetried(t *testing.T) {
	for _, tt := range []struct {
		name string
		lose func(ctx *fasthttp.RequestCtx)
	}{
		{"connection closed", func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Reset()
			ctx.HijackSetNoResponse(true)
			ctx.Hijack(func(c net.Conn) { _ = c.Close() })
		}},
		{"500", func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Reset()
			ctx.Error(`{"error_code":-11,"error":"internal error"}`, 500)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var commits atomic.Int64
			data := dataservertest.Start(t, dataservertest.Options{Wrap: func(next fasthttp.RequestHandler) fasthttp.RequestHandler {
				return func(ctx *fasthttp.RequestCtx) {
					next(ctx)
					if string(ctx.Path()) == wire.RouteCommit && commits.Add(1) == 1 {
						tt.lose(ctx)
					}
				}
			}})
			bs := businesstest.Start(t, data, businesstest.Options{})
			c, err := client.New(bs.URL, data.URL+wire.RouteAutentica, "ba0f")
			if err != nil {
				t.Fatal(err)
			}
			tr, err := c.Transferencia(context.Background(), 1, 2, 100)
			if err != nil {
				t.Fatal(err)
			}
			if tr != (client.Transfer{ContaOrig: 1, ContaDest: 2, Valor: 100, SaldoOrig: 900, SaldoDest: 1100}) {
				t.Errorf("answer %+v", tr)
			}
			balances, holders := data.Balances(t)
			if balances[0] != 900 || balances[1] != 1100 || holders[0] != "" || holders[1] != "" {
				t.Errorf("balances %v, holders %q: want 900 and 1100, free", balances[:2], holders[:2])
			}
			if n := commits.Load(); n != 1 {
				t.Errorf("%d commits, want 1: the retry must be answered from the record", n)
			}
		})
	}
}

// TestFailover: retries go round the business servers of WithFailover.
func TestFailover(t *testing.T) {
	ctx := context.Background()
	data := dataservertest.Start(t, dataservertest.Options{})
	closed := func() string {
		addr, err := freeport.Addr()
		if err != nil {
			t.Fatal(err)
		}
		return "http://" + addr
	}()
	// The first business server applies the request and dies before
	// answering (its connection closed); the second is down; the third
	// answers the kept outcome.
	kl := &keyLog{fail: []int{0}}
	dying := businesstest.Start(t, data, businesstest.Options{Wrap: kl.wrap})
	good := businesstest.Start(t, data, businesstest.Options{})
	c, err := client.New(dying.URL, data.URL+wire.RouteAutentica, "ba0f",
		client.WithFailover(closed, good.URL+"/"), client.WithRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.FailoverURLs(); len(got) != 2 || got[1] != good.URL {
		t.Errorf("FailoverURLs() = %q", got)
	}
	m, err := c.Saque(ctx, 1, 600)
	if err != nil {
		t.Fatal(err)
	}
	if m != (client.Movement{Conta: 1, Valor: 600, Saldo: 400}) {
		t.Errorf("answer %+v", m)
	}
	if balances, _ := data.Balances(t); balances[0] != 400 {
		t.Errorf("balance %d, want 400: applied once", balances[0])
	}
	if _, err := client.New(dying.URL, data.URL+wire.RouteAutentica, "ba0f", client.WithFailover("ftp://x")); err == nil {
		t.Error("New accepted a failover URL that is not http")
	}
}

// TestKeyOption: calls with the same explicit key are one operation; the
// key with another operation is refused; a malformed key is refused
// before any request.
func TestKeyOption(t *testing.T) {
	ctx := context.Background()
	b := startBank(t, businesstest.Options{})
	c := b.client(t, "ba0f", client.WithRetries(0))
	for range 3 {
		m, err := c.Deposito(ctx, 1, 5, client.Key("order 17"))
		if err != nil || m.Saldo != 1005 {
			t.Fatalf("deposit with the key: %+v, %v", m, err)
		}
	}
	// Another client with the same token shares the key's scope.
	other := b.client(t, "ba0f")
	if m, err := other.Deposito(ctx, 1, 5, client.Key("order 17")); err != nil || m.Saldo != 1005 {
		t.Errorf("same key from another client: %+v, %v", m, err)
	}
	_, err := c.Saque(ctx, 1, 5, client.Key("order 17"))
	assertError(t, err, client.ErrKeyReused, 422, teller.KeyReused)
	var e *client.Error
	if errors.As(err, &e) && e.Key != "order 17" {
		t.Errorf("Error.Key = %q", e.Key)
	}
	for _, bad := range []string{strings.Repeat("k", 129), "tab\there", "ação"} {
		_, err := c.Deposito(ctx, 1, 5, client.Key(bad))
		assertError(t, err, client.ErrInvalidValue, 0, teller.BadRequest)
	}
	if balances, _ := b.data.Balances(t); balances[0] != 1005 {
		t.Errorf("balance %d, want 1005", balances[0])
	}
	if k1, k2 := client.NewKey(), client.NewKey(); !hexKey.MatchString(k1) || k1 == k2 {
		t.Errorf("NewKey: %q, %q", k1, k2)
	}
}
