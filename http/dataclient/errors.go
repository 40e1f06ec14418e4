package dataclient

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// Every error a Client returns is a *DataError wrapping exactly one error
// of Kind (plus the transport error, if any), except for an error_code the
// client does not know, which wraps none and is a bug somewhere. The kinds
// are the teller's domain errors (teller.ErrLocked, teller.ErrNotFound,
// ..., teller.ErrUnavailable; dataCodes maps the data server's error_code
// to them), teller.ErrUnsupported, ErrCredentialRefused and ErrOriginalCredential
// (original.go).
//
// ErrCredentialRefused: the data server refused this business server's own
// credential on a data route (HTTP 401 or 403). Nothing works until the
// operator gives the business server the data server's credential.
var ErrCredentialRefused = errors.New("data server refused this business server's credential " +
	"(give it the data server's token, e.g. through BANK_SERVER_TOKEN)")

// DataError describes a failed data server call. Kind is the error it
// wraps (nil for an unknown error_code); Err is the transport error, if
// any. Reason is a short text that is safe to show end users: it names
// neither the data server's address nor any credential.
//
// For the teller (see teller.Accounts), a DataError also wraps
// teller.ErrNotApplied when the data server surely applied nothing
// although Kind is not a domain refusal (it refused the credential, or
// answered 503 UNAVAILABLE), and teller.ErrInternal when Kind is nil: an
// answer outside the contract, a bug somewhere, whose outcome is unknown.
type DataError struct {
	Route  string      // data route, e.g. "/getLock"
	Conta  int64       // account, 0 for /autentica (of several, the first, unless the answer named one)
	Kind   error       // see above, or nil
	Code   teller.Code // error_code answered, 0 if none
	Status int         // HTTP status answered, 0 if none
	Reason string      // short human-readable cause
	Err    error       // underlying transport error, or nil
	// named: the data server's answer named Conta as the account that
	// refused (a /getLocks refusal's "conta").
	named bool
}

// Account returns the account the data server named in its refusal, and
// whether it named one: a /getLocks refusal names the account that
// refused it, so that a batch can leave out an account not found.
func (e *DataError) Account() (int64, bool) { return e.Conta, e.named }

func (e *DataError) Error() string {
	var b strings.Builder
	b.WriteString("data server ")
	b.WriteString(e.Route)
	if e.Conta != 0 {
		b.WriteString(" conta=")
		b.WriteString(strconv.FormatInt(e.Conta, 10))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is see the kind (or teller.ErrInternal),
// teller.ErrNotApplied when it applies, and the transport error.
func (e *DataError) Unwrap() []error {
	errs := make([]error, 0, 3)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	} else {
		errs = append(errs, teller.ErrInternal)
	}
	if e.notApplied() || errors.Is(e.Kind, ErrCredentialRefused) {
		errs = append(errs, teller.ErrNotApplied)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// notApplied reports our data server's 503 UNAVAILABLE: it answers that
// only for a request it did not apply.
func (e *DataError) notApplied() bool {
	return e.Status == fasthttp.StatusServiceUnavailable && e.Code == teller.Unavailable
}

// NotApplied reports whether err, from a Client's call, surely means that
// nothing was applied, as teller.Accounts defines it: a domain refusal
// (any but teller.ErrUnavailable and teller.ErrInternal), teller.ErrNotApplied (a refused
// credential, our data server's 503 UNAVAILABLE) or teller.ErrUnsupported.
// Otherwise the outcome of a failed call is unknown.
func NotApplied(err error) bool {
	if code, ok := teller.CodeOf(err); ok && code != teller.Unavailable && code != teller.Internal {
		return true
	}
	return errors.Is(err, teller.ErrNotApplied) || errors.Is(err, teller.ErrUnsupported)
}

// statusError reads an answer other than 200 on route from data server ep.
// lockParams says that the call was a lock naming a wait or ttl.
func (c *Client) statusError(ep *endpoint, resp *fasthttp.Response, route string, conta int64, lockParams bool) *DataError {
	status := resp.StatusCode()
	e := &DataError{Route: route, Conta: conta, Kind: teller.ErrUnavailable, Status: status}
	switch {
	case (status == fasthttp.StatusUnauthorized || status == fasthttp.StatusForbidden) && route == wire.RouteAutentica:
		e.Kind, e.Reason = teller.ErrUnauthorized, "token refused"
	case status == fasthttp.StatusUnauthorized && ep.isOriginal(time.Now().Add(c.timeout)):
		e.Kind, e.Reason = ErrOriginalCredential, originalCredentialReason
	case status == fasthttp.StatusUnauthorized || status == fasthttp.StatusForbidden:
		e.Kind, e.Reason = ErrCredentialRefused, "data server refused this business server's credential"
	case status == fasthttp.StatusNotFound && (route == wire.RouteCommit || route == wire.RouteIdem || route == wire.RouteGetLocks):
		e.Kind, e.Reason = teller.ErrUnsupported, unsupportedReason(route)
	case status >= 500:
		e.Reason = "data server failed (HTTP " + strconv.Itoa(status) + ")"
		// Our data server answers 503 UNAVAILABLE for a request it did not
		// apply (storage failed, account busy): keep the code, which says so.
		if a, ok := parseAnswer(resp.Body()); ok && a.hasCode {
			e.Code = teller.Code(a.code)
		}
	case status == fasthttp.StatusBadRequest && lockParams:
		e.Reason = "data server refused the lock's wait or ttl (HTTP 400): " +
			"the lock wait and ttl must not exceed its --max-lock-wait and --max-lock-ttl"
	default:
		e.Reason = "data server answered HTTP " + strconv.Itoa(status) + " (is the data server URL right?)"
	}
	return e
}

// codeError reads the error_code code of answer a on route with status;
// conta is the call's account, unless a names another.
func codeError(route string, conta int64, a answer, status int) *DataError {
	code := a.code
	e := &DataError{Route: route, Conta: conta, Code: teller.Code(code), Status: status}
	if a.conta > 0 {
		e.Conta, e.named = a.conta, true
	}
	if d, ok := readDataCode(e.Code, route); ok {
		e.Kind, e.Reason = d.kind, d.reason
	} else {
		e.Reason = "data server answered unexpected error_code " + strconv.FormatInt(code, 10) + " (" + e.Code.String() + ")"
	}
	return e
}

// dataCode is what an error_code of the data server means to its client:
// the error a DataError wraps, and its Reason.
type dataCode struct {
	code   teller.Code
	kind   error
	reason string
}

// dataCodes is the client's one table for reading the data server's
// error_code (answered with 200, or 503 for UNAVAILABLE). The data
// server's side of the same boundary is package dataserver's refusals
// table.
var dataCodes = []dataCode{
	{teller.LockedAccount, teller.ErrLocked, "account locked by another business server"},
	{teller.InvalidAccount, teller.ErrInvalidAccount, "invalid account"},
	{teller.InvalidValue, teller.ErrInvalidValue, "invalid value"},
	{teller.NotFound, teller.ErrNotFound, "no such account"},
	{teller.StaleFence, teller.ErrStaleFence, "the lock's lease ran out before the operation finished"},
	// On a data route, UNAUTHORIZED refuses this business server's own
	// credential; at /autentica, the client's token (readDataCode).
	{teller.Unauthorized, ErrCredentialRefused, "data server refused this business server's credential"},
	{teller.Unavailable, teller.ErrUnavailable, "data server busy"},
	{teller.Died, teller.ErrDied, "wait-die: younger than the lock's holder"},
	{teller.Deadlock, teller.ErrDeadlock, "deadlock: the youngest waiter of a cycle"},
	{teller.Changed, teller.ErrChanged, "the account was written since it was read"},
}

// readDataCode looks code up in dataCodes, as answered on route.
func readDataCode(code teller.Code, route string) (dataCode, bool) {
	if code == teller.Unauthorized && route == wire.RouteAutentica {
		return dataCode{code, teller.ErrUnauthorized, "token refused"}, true
	}
	for _, d := range dataCodes {
		if d.code == code {
			return d, true
		}
	}
	return dataCode{}, false
}
