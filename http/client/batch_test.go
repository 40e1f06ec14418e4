package client_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/client"
	"github.com/bank/gobank/http/freeport"
)

func TestTransferencias(t *testing.T) {
	ctx := context.Background()
	b := startBank(t, businesstest.Options{})
	c := b.client(t, "ba0f")
	ans, err := c.Transferencias(ctx, []client.TransferItem{
		{ContaOrig: 1, ContaDest: 2, Valor: 100},
		{ContaOrig: 1, ContaDest: 3, Valor: 5000}, // insufficient funds
		{ContaOrig: 4, ContaDest: 4, Valor: 1},    // same account
		{ContaOrig: 4, ContaDest: 11, Valor: 1},   // no account 11
		{ContaOrig: 0, ContaDest: 4, Valor: 1},    // not an account
		{ContaOrig: 4, ContaDest: 5, Valor: 0},    // not an amount
		{ContaOrig: 5, ContaDest: 6, Valor: 10, Linked: true},
		{ContaOrig: 6, ContaDest: 7, Valor: 5000}, // refused: so is its chain
		{ContaOrig: 2, ContaDest: 1, Valor: 50},
		{ContaOrig: 8, ContaDest: 9, Valor: 1, Linked: true}, // linked to nothing
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		err        error
		orig, dest int64
	}{
		{nil, 900, 1100},
		{client.ErrInsufficientFunds, 0, 0},
		{client.ErrSameAccount, 0, 0},
		{client.ErrNotFound, 0, 0},
		{client.ErrNotFound, 0, 0}, // INVALID_ACCOUNT, as the client groups it
		{client.ErrInvalidValue, 0, 0},
		{client.ErrLinkedFailed, 0, 0},
		{client.ErrInsufficientFunds, 0, 0},
		{nil, 1050, 950},
		{client.ErrLinkedOpen, 0, 0},
	}
	if ans.Applied != 2 || len(ans.Results) != len(want) {
		t.Fatalf("answer %+v", ans)
	}
	for i, w := range want {
		r := ans.Results[i]
		switch {
		case w.err == nil && (r.Err != nil || r.SaldoOrig != w.orig || r.SaldoDest != w.dest):
			t.Errorf("Results[%d] = %+v, want applied, %d and %d", i, r, w.orig, w.dest)
		case w.err != nil && !errors.Is(r.Err, w.err):
			t.Errorf("Results[%d] = %+v, want %v", i, r, w.err)
		}
	}
	// The teller's own sentinels match as well, and the *Error says which transfer.
	var e *client.Error
	if !errors.Is(ans.Results[4].Err, teller.ErrInvalidAccount) || !errors.As(ans.Results[6].Err, &e) ||
		e.Code != teller.LinkedFailed || e.Status != 200 || e.Op != "transferencias[6] transferencia 5 6 10" || e.Message == "" {
		t.Errorf("Results[4].Err = %v, Results[6].Err = %#v", ans.Results[4].Err, ans.Results[6].Err)
	}
	balances, holders := b.data.Balances(t)
	if balances[0] != 950 || balances[1] != 1050 || balances[4] != 1000 || balances[5] != 1000 {
		t.Errorf("balances %v", balances)
	}
	for i, h := range holders {
		if h != "" {
			t.Errorf("account %d still locked by %q", i+1, h)
		}
	}
}

// TestTransferenciasRefused: a batch refused whole, by the client (no
// transfers, too many) or by the server, returns an *Error and no results.
func TestTransferenciasRefused(t *testing.T) {
	ctx := context.Background()
	b := startBank(t, businesstest.Options{})
	c := b.client(t, "ba0f")
	for _, n := range []int{0, client.MaxBatch + 1} {
		ans, err := c.Transferencias(ctx, make([]client.TransferItem, n))
		assertError(t, err, client.ErrInvalidValue, 0, teller.BadRequest)
		if ans.Results != nil {
			t.Errorf("%d transfers: results %v", n, ans.Results)
		}
	}
	one := []client.TransferItem{{ContaOrig: 1, ContaDest: 2, Valor: 1}}
	_, err := b.client(t, "nope").Transferencias(ctx, one)
	assertError(t, err, client.ErrUnauthorized, 401, teller.Unauthorized)

	slow := startBank(t, businesstest.Options{LockWait: 100 * time.Millisecond})
	slow.lockAs(t, "10.9.9.9:5001", "2")
	_, err = slow.client(t, "ba0f").Transferencias(ctx, one)
	assertError(t, err, client.ErrLocked, 403, teller.LockedAccount)
	if balances, _ := slow.data.Balances(t); balances[0] != 1000 {
		t.Errorf("balances %v", balances)
	}
}

// TestTransferenciasNotRetried: a batch whose outcome is unknown (503, a
// connection closed after the server applied it) is not repeated, whatever
// WithRetries says; a batch that could not be sent (no connection) is,
// to the next server.
func TestTransferenciasNotRetried(t *testing.T) {
	ctx := context.Background()
	one := []client.TransferItem{{ContaOrig: 1, ContaDest: 2, Valor: 100}}
	for _, tt := range []struct {
		name string
		fail int
		want [2]int64
	}{
		{"503", 503, [2]int64{1000, 1000}},
		{"connection closed after applying", 0, [2]int64{900, 1100}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kl := &keyLog{fail: []int{tt.fail, tt.fail, tt.fail}}
			b := startBank(t, businesstest.Options{Wrap: kl.wrap})
			_, err := b.client(t, "ba0f", client.WithRetries(2)).Transferencias(ctx, one)
			if !errors.Is(err, client.ErrUnavailable) {
				t.Fatalf("error %v, want ErrUnavailable", err)
			}
			if keys := kl.seen(); len(keys) != 1 || keys[0] != "" {
				t.Errorf("keys of the requests %q: want one request, without a key", keys)
			}
			if balances, _ := b.data.Balances(t); balances[0] != tt.want[0] || balances[1] != tt.want[1] {
				t.Errorf("balances %v, want %v first", balances, tt.want)
			}
		})
	}

	t.Run("not sent", func(t *testing.T) {
		b := startBank(t, businesstest.Options{})
		addr, err := freeport.Addr()
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New("http://"+addr, b.authURL, "ba0f", client.WithFailover(b.business.URL))
		if err != nil {
			t.Fatal(err)
		}
		ans, err := c.Transferencias(ctx, one)
		if err != nil || ans.Applied != 1 || ans.Results[0].SaldoOrig != 900 {
			t.Fatalf("answer %+v, %v", ans, err)
		}
		if balances, _ := b.data.Balances(t); balances[0] != 900 || balances[1] != 1100 {
			t.Errorf("balances %v: want applied once", balances)
		}
		// Without retries, the same batch fails at the closed port.
		c, err = client.New("http://"+addr, b.authURL, "ba0f", client.WithFailover(b.business.URL), client.WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Transferencias(ctx, one)
		var oe *net.OpError
		if !errors.Is(err, client.ErrUnavailable) || !errors.As(err, &oe) {
			t.Errorf("no retries: %v, want ErrUnavailable from the dial", err)
		}
	})
}

// TestTransferenciasNotTheBank: an answer that is not a batch's is an
// error, not results.
func TestTransferenciasNotTheBank(t *testing.T) {
	for _, body := range []string{
		`{"applied":1,"results":[]}`,
		`{"applied":2,"results":[{"saldo_orig":1,"saldo_dest":2}]}`,
		`{"applied":1,"results":[{"saldo_orig":1}]}`,
		`{"results":[{"saldo_orig":1,"saldo_dest":2}]}`,
		`[]`,
	} {
		url := serveBody(t, body)
		c, err := client.New(url, url+"/autentica", "ba0f")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Transferencias(context.Background(), []client.TransferItem{{ContaOrig: 1, ContaDest: 2, Valor: 1}})
		var e *client.Error
		if !errors.As(err, &e) || e.Code != teller.Internal {
			t.Errorf("answer %s: %v, want an INTERNAL *Error", body, err)
		}
	}
}

// serveBody serves body as the answer to every request but /autentica.
func serveBody(t *testing.T, body string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		if string(ctx.Path()) == "/autentica" {
			ctx.SetBodyString(`{}`)
			return
		}
		ctx.SetBodyString(body)
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return "http://" + ln.Addr().String()
}
