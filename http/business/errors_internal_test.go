package business

import (
	"errors"
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/client"
	"github.com/bank/gobank/http/wire"
)

// TestDataCodes: the business server's reading of every error_code a data
// server answers, on a data route and at /autentica, and the round trip
// code → error → code for the domain errors among them.
func TestDataCodes(t *testing.T) {
	for _, tt := range []struct {
		code  teller.Code
		route string
		kind  error
	}{
		{teller.LockedAccount, wire.RouteGetLock, ErrLocked},
		{teller.InvalidAccount, wire.RouteGetSaldo, ErrInvalidAccount},
		{teller.InvalidValue, wire.RouteSetSaldo, ErrInvalidValue},
		{teller.NotFound, wire.RouteGetSaldo, ErrNotFound},
		{teller.StaleFence, wire.RouteCommit, ErrStaleFence},
		{teller.Unauthorized, wire.RouteGetSaldo, ErrCredentialRefused},
		{teller.Unauthorized, wire.RouteAutentica, ErrUnauthorized},
		{teller.Unavailable, wire.RouteCommit, ErrUnavailable},
	} {
		d, ok := readDataCode(tt.code, tt.route)
		if !ok || d.kind != tt.kind || d.reason == "" {
			t.Errorf("readDataCode(%v, %s) = %v %q %v, want %v", tt.code, tt.route, d.kind, d.reason, ok, tt.kind)
			continue
		}
		if got, ok := teller.CodeOf(d.kind); ok && got != tt.code {
			t.Errorf("%v at %s reads as %v, whose code is %v", tt.code, tt.route, d.kind, got)
		} else if !ok && tt.kind != ErrCredentialRefused {
			t.Errorf("%v at %s reads as %v, which has no code", tt.code, tt.route, d.kind)
		}
	}
	for _, c := range []teller.Code{teller.InsufficientFunds, teller.Internal, teller.BadRequest, 0, -99} {
		if d, ok := readDataCode(c, wire.RouteGetSaldo); ok {
			t.Errorf("readDataCode(%v) = %v: not an answer of the data server's domain", c, d.kind)
		}
	}
}

// TestErrAnswers: the business server's answer to each of its errors
// (wrapped, as the operations return them), and the Go client's reading
// of that answer back to the same domain error, with the error_code and
// from the status alone (as from the original business server).
func TestErrAnswers(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		code   teller.Code
	}{
		{ErrUnauthorized, fasthttp.StatusUnauthorized, teller.Unauthorized},
		{ErrOriginalCredential, fasthttp.StatusServiceUnavailable, teller.Unavailable},
		{ErrCredentialRefused, fasthttp.StatusServiceUnavailable, teller.Unavailable},
		{ErrStaleFence, fasthttp.StatusServiceUnavailable, teller.Unavailable},
		{ErrLocked, fasthttp.StatusForbidden, teller.LockedAccount},
		{ErrNotFound, fasthttp.StatusNotFound, teller.NotFound},
		{ErrInvalidAccount, fasthttp.StatusNotFound, teller.InvalidAccount},
		{ErrInvalidValue, fasthttp.StatusNotFound, teller.InvalidValue},
		{ErrOverflow, fasthttp.StatusNotFound, teller.Overflow},
		{ErrInsufficientFunds, fasthttp.StatusConflict, teller.InsufficientFunds},
		{ErrSameAccount, fasthttp.StatusBadRequest, teller.SameAccount},
		{ErrUnavailable, fasthttp.StatusServiceUnavailable, teller.Unavailable},
		{ErrUnsupported, fasthttp.StatusServiceUnavailable, teller.Unavailable},
		{errors.New("a bug"), fasthttp.StatusInternalServerError, teller.Internal},
	} {
		err := fmt.Errorf("transfer 1 2: %w", tt.err)
		status, code, msg := classify(err)
		if status != tt.status || code != tt.code || msg == "" {
			t.Errorf("classify(%v) = %d %v %q, want %d %v", tt.err, status, code, msg, tt.status, tt.code)
		}
		// The client's reading: the error_code names the domain error.
		read := &client.Error{Status: status, Code: code}
		if !errors.Is(read, code.Err()) {
			t.Errorf("%v: the client's reading of %v does not match %v", tt.err, code, code.Err())
		}
		if c, ok := teller.CodeOf(tt.err); ok && c == code && !errors.Is(read, tt.err) {
			t.Errorf("%v: round trip lost: the client's reading of %d %v does not match it", tt.err, status, code)
		}
	}
	if len(errAnswers) != 11 {
		t.Errorf("errAnswers has %d rows, the test knows 11", len(errAnswers))
	}
	// ErrOriginalCredential wraps ErrCredentialRefused and must answer its
	// own message: the first matching row wins.
	_, _, orig := classify(ErrOriginalCredential)
	_, _, refused := classify(ErrCredentialRefused)
	if orig == refused {
		t.Error("ErrOriginalCredential answers ErrCredentialRefused's message")
	}
}
