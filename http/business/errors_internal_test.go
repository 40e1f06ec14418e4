package business

import (
	"errors"
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/http/client"
	"github.com/bank/gobank/http/wire"
)

// TestDataCodes: the business server's reading of every error_code a data
// server answers, on a data route and at /autentica, and the round trip
// code → error → code for the domain errors among them.
func TestDataCodes(t *testing.T) {
	for _, tt := range []struct {
		code  wire.Code
		route string
		kind  error
	}{
		{wire.LockedAccount, wire.RouteGetLock, ErrLocked},
		{wire.InvalidAccount, wire.RouteGetSaldo, ErrInvalidAccount},
		{wire.InvalidValue, wire.RouteSetSaldo, ErrInvalidValue},
		{wire.NotFound, wire.RouteGetSaldo, ErrNotFound},
		{wire.StaleFence, wire.RouteCommit, ErrStaleFence},
		{wire.Unauthorized, wire.RouteGetSaldo, ErrCredentialRefused},
		{wire.Unauthorized, wire.RouteAutentica, ErrUnauthorized},
		{wire.Unavailable, wire.RouteCommit, ErrUnavailable},
	} {
		d, ok := readDataCode(tt.code, tt.route)
		if !ok || d.kind != tt.kind || d.reason == "" {
			t.Errorf("readDataCode(%v, %s) = %v %q %v, want %v", tt.code, tt.route, d.kind, d.reason, ok, tt.kind)
			continue
		}
		if got, ok := wire.CodeOf(d.kind); ok && got != tt.code {
			t.Errorf("%v at %s reads as %v, whose code is %v", tt.code, tt.route, d.kind, got)
		} else if !ok && tt.kind != ErrCredentialRefused {
			t.Errorf("%v at %s reads as %v, which has no code", tt.code, tt.route, d.kind)
		}
	}
	for _, c := range []wire.Code{wire.InsufficientFunds, wire.Internal, wire.BadRequest, 0, -99} {
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
		code   wire.Code
	}{
		{ErrUnauthorized, fasthttp.StatusUnauthorized, wire.Unauthorized},
		{ErrOriginalCredential, fasthttp.StatusServiceUnavailable, wire.Unavailable},
		{ErrCredentialRefused, fasthttp.StatusServiceUnavailable, wire.Unavailable},
		{ErrStaleFence, fasthttp.StatusServiceUnavailable, wire.Unavailable},
		{ErrLocked, fasthttp.StatusForbidden, wire.LockedAccount},
		{ErrNotFound, fasthttp.StatusNotFound, wire.NotFound},
		{ErrInvalidAccount, fasthttp.StatusNotFound, wire.InvalidAccount},
		{ErrInvalidValue, fasthttp.StatusNotFound, wire.InvalidValue},
		{ErrOverflow, fasthttp.StatusNotFound, wire.Overflow},
		{ErrInsufficientFunds, fasthttp.StatusConflict, wire.InsufficientFunds},
		{ErrSameAccount, fasthttp.StatusBadRequest, wire.SameAccount},
		{ErrUnavailable, fasthttp.StatusServiceUnavailable, wire.Unavailable},
		{ErrUnsupported, fasthttp.StatusServiceUnavailable, wire.Unavailable},
		{errors.New("a bug"), fasthttp.StatusInternalServerError, wire.Internal},
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
		if c, ok := wire.CodeOf(tt.err); ok && c == code && !errors.Is(read, tt.err) {
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
