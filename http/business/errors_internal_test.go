package business

import (
	"errors"
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/client"
)

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
		{ErrLinkedFailed, fasthttp.StatusConflict, teller.LinkedFailed},
		{ErrLinkedOpen, fasthttp.StatusBadRequest, teller.LinkedOpen},
		{errBatchKey, fasthttp.StatusBadRequest, teller.BadRequest},
		{&badBatchError{"transfers[3]: no \"valor\""}, fasthttp.StatusBadRequest, teller.BadRequest},
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
	if len(errAnswers) != 13 {
		t.Errorf("errAnswers has %d rows, the test knows 13", len(errAnswers))
	}
	// ErrOriginalCredential wraps ErrCredentialRefused and must answer its
	// own message: the first matching row wins.
	_, _, orig := classify(ErrOriginalCredential)
	_, _, refused := classify(ErrCredentialRefused)
	if orig == refused {
		t.Error("ErrOriginalCredential answers ErrCredentialRefused's message")
	}
}
