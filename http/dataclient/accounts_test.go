package dataclient_test

import (
	"context"
	"errors"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/dataclient"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// TestAccountsLock: Lock of several accounts is one /getLocks, all or
// none, and the commit under its grants applies every balance.
func TestAccountsLock(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	ctx := context.Background()
	var a, b teller.Accounts = newClient(t, data, "10.0.0.1:5001"), newClient(t, data, "10.0.0.2:5001")

	gs := make([]teller.Grant, 2)
	if err := a.Lock(ctx, []int64{2, 1}, teller.LockOptions{}, gs); err != nil {
		t.Fatal(err)
	}
	if gs[0].Fence == 0 || gs[1].Fence == 0 || !gs[0].HasSaldo || gs[0].Saldo != 1000 || gs[1].Saldo != 1000 {
		t.Fatalf("grants %+v: want fences and the balances", gs)
	}
	// Another holder gets none of them: account 3 stays free.
	other := make([]teller.Grant, 2)
	err := b.Lock(ctx, []int64{3, 1}, teller.LockOptions{}, other)
	if !errors.Is(err, teller.ErrLocked) || !dataclient.NotApplied(err) || other[0] != (teller.Grant{}) {
		t.Errorf("Lock of a held account: %v, grants %+v", err, other)
	}
	if _, err := lock1(ctx, b.(*dataclient.Client), 3, 0); err != nil {
		t.Errorf("account 3 was left locked: %v", err)
	}
	if err := b.Unlock(ctx, 3, 0); err != nil {
		t.Error(err)
	}
	for _, ids := range [][]int64{nil, make([]int64, teller.MaxAccounts+1)} {
		if err := a.Lock(ctx, ids, teller.LockOptions{}, make([]teller.Grant, len(ids))); !errors.Is(err, teller.ErrBadRequest) {
			t.Errorf("Lock of %d accounts: %v", len(ids), err)
		}
	}
	if err := a.Lock(ctx, []int64{4}, teller.LockOptions{}, nil); !errors.Is(err, teller.ErrBadRequest) {
		t.Errorf("Lock without room for the grant: %v", err)
	}
	rec, err := a.Commit(ctx, []teller.Change{{Conta: 2, Saldo: 900, Fence: gs[0].Fence}, {Conta: 1, Saldo: 1100, Fence: gs[1].Fence}}, true, nil)
	if err != nil || rec != nil {
		t.Fatalf("Commit = %v, %v", rec, err)
	}
	wantBank(t, data, 1100, 900, 1000)
}

// TestAccountsOriginal: the original data server has no /getLocks,
// /commit or /idem (teller.ErrUnsupported, nothing taken or applied), and
// its grants are empty; one lock at a time and setSaldo work.
func TestAccountsOriginal(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{AllowClientTokens: true, Wrap: original})
	ctx := context.Background()
	c := newClient(t, data, "10.0.0.1:5001")

	if err := c.Lock(ctx, []int64{1, 2}, teller.LockOptions{}, make([]teller.Grant, 2)); !errors.Is(err, teller.ErrUnsupported) || !dataclient.NotApplied(err) {
		t.Errorf("Lock of two accounts: %v, want ErrUnsupported", err)
	}
	wantBank(t, data) // nothing taken
	g, err := lock1(ctx, c, 1, 0)
	if err != nil || g != (teller.Grant{}) {
		t.Fatalf("Lock = %+v, %v; want an empty grant", g, err)
	}
	if _, err := c.Commit(ctx, []teller.Change{{Conta: 1, Saldo: 5}}, true, nil); !errors.Is(err, teller.ErrUnsupported) {
		t.Errorf("Commit: %v", err)
	}
	if _, _, err := c.Outcome(ctx, "k"); !errors.Is(err, teller.ErrUnsupported) {
		t.Errorf("Outcome: %v", err)
	}
	if _, err := c.Keep(ctx, teller.Record{Key: "k", Fingerprint: "f", Status: 200, Body: []byte("{}")}); !errors.Is(err, teller.ErrUnsupported) {
		t.Errorf("Keep: %v", err)
	}
	var w teller.Writer = c
	if err := w.Write(ctx, 1, 5, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Unlock(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	wantBank(t, data, 5)
}

// TestAccountsNotApplied: a 503 UNAVAILABLE and a refused credential wrap
// teller.ErrNotApplied; a 500 leaves the outcome unknown, and so does an
// unknown error_code, which wraps teller.ErrInternal (a bug).
func TestAccountsNotApplied(t *testing.T) {
	for _, tt := range []struct {
		name       string
		status     int
		body       string
		notApplied bool
		internal   bool
	}{
		{"503 UNAVAILABLE", 503, `{"error_code":-9,"error":"not applied"}`, true, false},
		{"401", 401, `{"error_code":-8}`, true, false},
		{"500", 500, `boom`, false, false},
		{"garbled", 200, `{"saldo":`, false, false},
		{"unknown error_code", 200, `{"error_code":-42}`, false, true},
	} {
		url := startFailing(t, func(ctx *fasthttp.RequestCtx) {
			ctx.SetStatusCode(tt.status)
			ctx.SetBodyString(tt.body)
		})
		c, err := dataclient.New(dataclient.Config{URL: url, ServerToken: "x", ID: "x:1"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Commit(context.Background(), []teller.Change{{Conta: 1, Saldo: 5, Fence: 1}}, true, nil)
		if err == nil || errors.Is(err, teller.ErrNotApplied) != tt.notApplied || dataclient.NotApplied(err) != tt.notApplied {
			t.Errorf("%s: %v; want not applied %v", tt.name, err, tt.notApplied)
		}
		if errors.Is(err, teller.ErrInternal) != tt.internal {
			t.Errorf("%s: %v; want ErrInternal %v", tt.name, err, tt.internal)
		}
		c.CloseIdleConnections()
	}
}
