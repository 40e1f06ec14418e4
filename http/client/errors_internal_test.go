package client

import (
	"errors"
	"net/http"
	"testing"

	"github.com/bank/gobank/actors/teller"
)

// TestAnswerCodes: the client's reading of every code of the contract
// (the sentinel an *Error of that code matches, its own and the client's
// grouping) and of the status of an answer without error_code.
func TestAnswerCodes(t *testing.T) {
	want := map[teller.Code]error{
		teller.LockedAccount: ErrLocked, teller.InvalidAccount: ErrNotFound, teller.InvalidValue: ErrInvalidValue,
		teller.NotFound: ErrNotFound, teller.StaleFence: nil, teller.InsufficientFunds: ErrInsufficientFunds,
		teller.SameAccount: ErrSameAccount, teller.Unauthorized: ErrUnauthorized, teller.Unavailable: ErrUnavailable,
		teller.Overflow: ErrInvalidValue, teller.Internal: nil, teller.BadRequest: ErrInvalidValue, teller.KeyReused: ErrKeyReused,
		teller.Died: ErrLocked, teller.Deadlock: ErrLocked, teller.Changed: ErrLocked,
		teller.LinkedFailed: ErrLinkedFailed, teller.LinkedOpen: ErrLinkedOpen,
	}
	for _, c := range teller.Codes() {
		w, known := want[c]
		if !known {
			t.Errorf("%v: not in the test", c)
		}
		e := &Error{Code: c}
		if got := sentinel(c); got != w {
			t.Errorf("sentinel(%v) = %v, want %v", c, got, w)
		}
		if w != nil && !errors.Is(e, w) {
			t.Errorf("an *Error of %v does not match %v", c, w)
		}
		// code → error → code: the error matches the code's own sentinel.
		if !errors.Is(e, c.Err()) {
			t.Errorf("an *Error of %v does not match %v", c, c.Err())
		}
		if got, ok := teller.CodeOf(c.Err()); !ok || got != c {
			t.Errorf("CodeOf(%v) = %v", c.Err(), got)
		}
		if defaultMessage(c) == "" {
			t.Errorf("%v: no default message", c)
		}
	}
	for _, tt := range []struct {
		status int
		code   teller.Code
	}{
		{http.StatusUnauthorized, teller.Unauthorized},
		{http.StatusForbidden, teller.LockedAccount},
		{http.StatusNotFound, teller.NotFound},
		{http.StatusConflict, teller.InsufficientFunds},
		{http.StatusUnprocessableEntity, teller.KeyReused},
		{http.StatusServiceUnavailable, teller.Unavailable},
		{http.StatusBadGateway, teller.Unavailable},
		{http.StatusGatewayTimeout, teller.Unavailable},
		{http.StatusBadRequest, teller.BadRequest},
		{http.StatusTeapot, teller.BadRequest},
		{http.StatusInternalServerError, teller.Internal},
		{http.StatusNotImplemented, teller.Internal},
	} {
		if got := codeForStatus(tt.status); got != tt.code {
			t.Errorf("codeForStatus(%d) = %v, want %v", tt.status, got, tt.code)
		}
	}
	// status → code → status: every status a row lists implies its code.
	for _, row := range answerCodes {
		for _, st := range row.statuses {
			if got := codeForStatus(st); got != row.code {
				t.Errorf("status %d implies %v, its row says %v", st, got, row.code)
			}
		}
	}
}
