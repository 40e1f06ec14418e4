package dataclient

import (
	"testing"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// TestDataCodes: the data client's reading of every error_code a data
// server answers, on a data route and at /autentica, and the round trip
// code → error → code for the domain errors among them.
func TestDataCodes(t *testing.T) {
	for _, tt := range []struct {
		code  teller.Code
		route string
		kind  error
	}{
		{teller.LockedAccount, wire.RouteGetLock, teller.ErrLocked},
		{teller.InvalidAccount, wire.RouteGetSaldo, teller.ErrInvalidAccount},
		{teller.InvalidValue, wire.RouteSetSaldo, teller.ErrInvalidValue},
		{teller.NotFound, wire.RouteGetSaldo, teller.ErrNotFound},
		{teller.StaleFence, wire.RouteCommit, teller.ErrStaleFence},
		{teller.Unauthorized, wire.RouteGetSaldo, ErrCredentialRefused},
		{teller.Unauthorized, wire.RouteAutentica, teller.ErrUnauthorized},
		{teller.Unavailable, wire.RouteCommit, teller.ErrUnavailable},
		{teller.Died, wire.RouteGetLocks, teller.ErrDied},
		{teller.Deadlock, wire.RouteGetLocks, teller.ErrDeadlock},
		{teller.Changed, wire.RouteGetLocks, teller.ErrChanged},
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
