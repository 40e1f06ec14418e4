package business_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

func TestParseAnswer(t *testing.T) {
	type A = business.Answer
	tests := []struct {
		body string
		ok   bool
		want A
	}{
		{body: "{}", ok: true},
		{body: " {}\n", ok: true},
		{body: `{"saldo":1000}`, ok: true, want: A{Saldo: 1000, HasSaldo: true}},
		{body: `{"saldo":0}`, ok: true, want: A{HasSaldo: true}},
		{body: `{"saldo":-0}`, ok: true, want: A{HasSaldo: true}},
		{body: `{"saldo":9223372036854775807}`, ok: true, want: A{Saldo: 1<<63 - 1, HasSaldo: true}},
		{body: `{"saldo": 1000}` + "\n", ok: true, want: A{Saldo: 1000, HasSaldo: true}},
		{body: "{\n  \"saldo\": 5\n}\n", ok: true, want: A{Saldo: 5, HasSaldo: true}},
		{body: `{"fence":7,"saldo":1000,"expires_at":"2026-01-01T00:00:00Z","ttl_ms":9999}`, ok: true,
			want: A{Fence: 7, Saldo: 1000, HasSaldo: true}},
		{body: `{"error_code":-1,"error":"locked"}`, ok: true, want: A{Code: -1, HasCode: true}},
		{body: `{"error": "x \"quoted\" \\ ç", "error_code": -4}`, ok: true, want: A{Code: -4, HasCode: true}},
		{body: `{"saldo":5,"error_code":-1}`, ok: true, want: A{Saldo: 5, HasSaldo: true, Code: -1, HasCode: true}},
		{body: `{"other":true,"nested":{"a":[1,2]}}`, ok: true},
		{body: `{"saldo":1,"saldo":2}`, ok: true, want: A{Saldo: 2, HasSaldo: true}},
		{body: `{"saldo":9223372036854775808}`},
		{body: `{"saldo":1.5}`},
		{body: `{"saldo":1e3}`},
		{body: `{"saldo":"5"}`},
		{body: `{"saldo":01}`},
		{body: `{"saldo":-}`},
		{body: `{"saldo":null}`},
		{body: `{"fence":0}`},
		{body: `{"fence":-3}`},
		{body: `{"saldo":`},
		{body: `{"error_code":"x"}`},
		{body: `null`},
		{body: `[1]`},
		{body: ``},
		{body: `<html>`},
		{body: `{}{}`},
		{body: `{"saldo":5}x`},
	}
	for _, tt := range tests {
		got, ok := business.ParseAnswer([]byte(tt.body))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseAnswer(%q) = %+v, %v; want %+v, %v", tt.body, got, ok, tt.want, tt.ok)
		}
		slow, slowOK := business.ParseAnswerJSON([]byte(tt.body))
		if slowOK != ok || (ok && slow != got) {
			t.Errorf("parseAnswer(%q) = %+v, %v but encoding/json says %+v, %v", tt.body, got, ok, slow, slowOK)
		}
	}
	grant := []byte(`{"fence":7,"saldo":1000,"expires_at":"2026-01-01T00:00:00Z","ttl_ms":9999}`)
	if n := testing.AllocsPerRun(100, func() { business.ParseAnswer(grant) }); n != 0 {
		t.Errorf("parsing a grant allocates %v times", n)
	}
}

// FuzzParseAnswer: the hand scanner never panics and agrees with
// encoding/json.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{"{}", `{"saldo":1}`, `{"error_code":-1,"error":"x"}`, `{"saldo":-0}`, "x",
		`{"fence":1,"saldo":2,"expires_at":"t","ttl_ms":3}`, `{"a":"\u00e7"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := business.ParseAnswer(b)
		slow, slowOK := business.ParseAnswerJSON(b)
		if ok != slowOK || (ok && got != slow) {
			t.Errorf("parseAnswer(%q) = %+v, %v but encoding/json says %+v, %v", b, got, ok, slow, slowOK)
		}
	})
}

func TestDataClientErrors(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	ctx := context.Background()
	a := otherClient(t, data, "10.0.0.1:5001")
	b := otherClient(t, data, "10.0.0.2:5001")

	if err := a.Authenticate(ctx, token); err != nil {
		t.Errorf("Authenticate(valid): %v", err)
	}
	g, err := a.Lock(ctx, 1, 0)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if g.Fence == 0 || !g.HasSaldo || g.Saldo != 1000 {
		t.Errorf("grant %+v: want a fence and the balance 1000", g)
	}
	g2, err := a.Lock(ctx, 1, 0)
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
		{"auth unknown token", a.Authenticate(ctx, "nope"), business.ErrUnauthorized},
		{"auth empty token", a.Authenticate(ctx, ""), business.ErrUnauthorized},
		{"lock held by other", second(b.Lock(ctx, 1, 0)), business.ErrLocked},
		{"lock held by other, waiting", second(b.Lock(ctx, 1, 50*time.Millisecond)), business.ErrLocked},
		{"write while other holds", b.Write(ctx, 1, 5, 0), business.ErrLocked},
		{"unlock other's lock", b.Unlock(ctx, 1, 0), business.ErrLocked},
		{"negative balance", a.Write(ctx, 2, -1, 0), business.ErrInvalidValue},
		{"lock missing account", second(a.Lock(ctx, 11, 0)), business.ErrNotFound},
		{"read missing account", func() error { _, err := a.Read(ctx, 0); return err }(), business.ErrNotFound},
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
	g3, err := b.Lock(ctx, 1, 0)
	if err != nil || g3.Fence <= g2.Fence || g3.Saldo != 1234 {
		t.Fatalf("Lock after release = %+v, %v", g3, err)
	}
	if err := b.Unlock(ctx, 1, g3.Fence); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(ctx, 1, 7, g3.Fence); !errors.Is(err, business.ErrStaleFence) {
		t.Errorf("Write under a released grant: %v", err)
	}
	if err := b.Unlock(ctx, 1, g3.Fence); err != nil && !errors.Is(err, business.ErrStaleFence) {
		t.Errorf("Unlock under a released grant: %v", err)
	}

	for _, cred := range []string{"wrong", token} {
		c, err := business.NewDataClient(business.DataClientConfig{URL: data.URL, ServerToken: cred, ID: "x:1"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Read(ctx, 1)
		var de *business.DataError
		if !errors.Is(err, business.ErrCredentialRefused) || !errors.As(err, &de) || de.Status == 0 {
			t.Errorf("credential %q: %v", cred, err)
		}
		if strings.Contains(err.Error(), cred) {
			t.Errorf("error %q leaks the credential", err)
		}
	}
	checkBank(t, data, with(uniform(10, 1000), 1, 1234))
}

func second[T any](_ T, err error) error { return err }

func TestDataClientUnavailable(t *testing.T) {
	c, err := business.NewDataClient(business.DataClientConfig{URL: closedURL(t), ServerToken: "x", ID: "x:1",
		Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Lock(context.Background(), 1, 0)
	if !errors.Is(err, business.ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Errorf("Lock on a closed port: %v after %v", err, time.Since(start))
	}

	// A context that is already over fails at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Unlock(ctx, 1, 0); !errors.Is(err, business.ErrUnavailable) || !errors.Is(err, context.Canceled) {
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
	c2, err := business.NewDataClient(business.DataClientConfig{URL: slow.URL, ServerToken: slow.ServerToken, ID: "x:1",
		Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = c2.Read(context.Background(), 1)
	var de *business.DataError
	if !errors.Is(err, business.ErrUnavailable) || !errors.As(err, &de) || !strings.Contains(de.Reason, "in time") {
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
	c, err := business.NewDataClient(business.DataClientConfig{URL: data.URL, ServerToken: data.ServerToken, ID: "x:1",
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
