package client

import (
	"errors"
	"net/http"
	"testing"

	"github.com/bank/gobank/http/wire"
)

// TestAnswerCodes: the client's reading of every code of the contract
// (the sentinel an *Error of that code matches, its own and the client's
// grouping) and of the status of an answer without error_code.
func TestAnswerCodes(t *testing.T) {
	want := map[wire.Code]error{
		wire.LockedAccount: ErrLocked, wire.InvalidAccount: ErrNotFound, wire.InvalidValue: ErrInvalidValue,
		wire.NotFound: ErrNotFound, wire.StaleFence: nil, wire.InsufficientFunds: ErrInsufficientFunds,
		wire.SameAccount: ErrSameAccount, wire.Unauthorized: ErrUnauthorized, wire.Unavailable: ErrUnavailable,
		wire.Overflow: ErrInvalidValue, wire.Internal: nil, wire.BadRequest: ErrInvalidValue, wire.KeyReused: ErrKeyReused,
	}
	for _, c := range wire.Codes() {
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
		if got, ok := wire.CodeOf(c.Err()); !ok || got != c {
			t.Errorf("CodeOf(%v) = %v", c.Err(), got)
		}
		if defaultMessage(c) == "" {
			t.Errorf("%v: no default message", c)
		}
	}
	for _, tt := range []struct {
		status int
		code   wire.Code
	}{
		{http.StatusUnauthorized, wire.Unauthorized},
		{http.StatusForbidden, wire.LockedAccount},
		{http.StatusNotFound, wire.NotFound},
		{http.StatusConflict, wire.InsufficientFunds},
		{http.StatusUnprocessableEntity, wire.KeyReused},
		{http.StatusServiceUnavailable, wire.Unavailable},
		{http.StatusBadGateway, wire.Unavailable},
		{http.StatusGatewayTimeout, wire.Unavailable},
		{http.StatusBadRequest, wire.BadRequest},
		{http.StatusTeapot, wire.BadRequest},
		{http.StatusInternalServerError, wire.Internal},
		{http.StatusNotImplemented, wire.Internal},
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
