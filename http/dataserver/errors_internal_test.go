package dataserver

import (
	"errors"
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/teller"
)

// TestRefusals pins the data server's table from the account layer's
// errors to its answers, row by row, wrapped as the actors wrap them, and
// checks each answer's code round-trips through the one vocabulary.
func TestRefusals(t *testing.T) {
	want := []struct {
		err    error
		status int
		code   teller.Code
	}{
		{actors.ErrNotFound, fasthttp.StatusOK, teller.NotFound},
		{account.ErrLocked, fasthttp.StatusOK, teller.LockedAccount},
		{account.ErrStaleFence, fasthttp.StatusOK, teller.StaleFence},
		{account.ErrBusy, fasthttp.StatusOK, teller.LockedAccount},
		{account.ErrNegativeBalance, fasthttp.StatusOK, teller.InvalidValue},
		{account.ErrDied, fasthttp.StatusOK, teller.Died},
		{account.ErrDeadlock, fasthttp.StatusOK, teller.Deadlock},
		{account.ErrChanged, fasthttp.StatusOK, teller.Changed},
		{account.ErrWounded, fasthttp.StatusOK, teller.StaleFence},
		{account.ErrNoTimestamp, fasthttp.StatusBadRequest, teller.BadRequest},
		{actors.ErrNoFence, fasthttp.StatusBadRequest, teller.BadRequest},
		{actors.ErrStore, fasthttp.StatusServiceUnavailable, teller.Unavailable},
		// A store failure whose commit may be durable: never 503, which
		// says "not applied".
		{fmt.Errorf("%w: %w", actors.ErrStore, store.ErrOutcomeUnknown), fasthttp.StatusGatewayTimeout, teller.Unavailable},
		{actors.ErrTimeout, fasthttp.StatusServiceUnavailable, teller.Unavailable},
		{actors.ErrClosed, fasthttp.StatusServiceUnavailable, teller.Unavailable},
		{actors.ErrInternal, fasthttp.StatusInternalServerError, teller.Internal},
		{errors.New("a bug"), fasthttp.StatusInternalServerError, teller.Internal},
	}
	if len(refusals) != len(want)-2 {
		t.Errorf("refusals has %d rows, the test knows %d", len(refusals), len(want)-2)
	}
	for _, w := range want {
		for _, err := range []error{w.err, fmt.Errorf("account 7: %w", w.err), errors.Join(errors.New("io"), w.err)} {
			r := refusalOf(err)
			if r.status != w.status || r.code != w.code || r.msg == "" {
				t.Errorf("refusalOf(%v) = %d %v %q, want %d %v", err, r.status, r.code, r.msg, w.status, w.code)
			}
			if got, ok := teller.CodeOf(r.code.Err()); !ok || got != w.code {
				t.Errorf("%v: code %v does not round-trip through its sentinel (%v, %v)", err, w.code, got, ok)
			}
		}
	}
	// A store failure (an unknown outcome too) or a bug is logged; a
	// refusal is not.
	for _, r := range refusals {
		if (r.log != "") != (errors.Is(r.err, actors.ErrStore) || errors.Is(r.err, store.ErrOutcomeUnknown)) {
			t.Errorf("%v: log %q", r.err, r.log)
		}
	}
	if internal.log == "" {
		t.Error("an unknown error is not logged")
	}
}

// TestRefusalMessage: a refusal's detail is appended to a domain
// refusal's message only.
func TestRefusalMessage(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{account.ErrLocked, "account locked by another id_negoc (conta 3); no lock taken"},
		{actors.ErrNotFound, "no such account (conta 3); no lock taken"},
		{actors.ErrStore, "storage unavailable; not applied"},
		{actors.ErrNoFence, "a change needs the fence of the holder's grant"},
		{errors.New("a bug"), "internal error"},
	} {
		if got := refusalOf(tt.err).message(" (conta 3); no lock taken"); got != tt.want {
			t.Errorf("%v: message %q, want %q", tt.err, got, tt.want)
		}
	}
}
