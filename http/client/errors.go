package client

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/bank/gobank/actors/teller"
)

// Sentinel errors, matched with errors.Is against the *Error a Client
// returns. Each names a kind of failure; the *Error tells the details.
// They are the project's domain errors (package teller); answerCodes says which
// error_code each one stands for.
var (
	// ErrUnauthorized: the token is missing or unknown (HTTP 401,
	// UNAUTHORIZED), at /autentica or at the business server.
	ErrUnauthorized = teller.ErrUnauthorized
	// ErrLocked: another business server holds the account's lock (HTTP
	// 403, LOCKED_ACCOUNT); trying again later may succeed.
	ErrLocked = teller.ErrLocked
	// ErrNotFound: no such account (HTTP 404, NOT_FOUND, or
	// INVALID_ACCOUNT for a number that cannot be an account).
	ErrNotFound = teller.ErrNotFound
	// ErrInvalidValue: the value was refused (INVALID_VALUE, e.g. a
	// negative amount), the result would overflow (OVERFLOW), or the
	// request was malformed (BAD_REQUEST).
	ErrInvalidValue = teller.ErrInvalidValue
	// ErrInsufficientFunds: a withdrawal or transfer would make a balance
	// negative (HTTP 409, INSUFFICIENT_FUNDS).
	ErrInsufficientFunds = teller.ErrInsufficientFunds
	// ErrSameAccount: a transfer names the same account twice (HTTP 400,
	// SAME_ACCOUNT).
	ErrSameAccount = teller.ErrSameAccount
	// ErrUnavailable: the server could not be reached (connection refused),
	// did not answer in time, or reported that the data server is
	// unavailable (HTTP 503, UNAVAILABLE), after every retry. Nothing was
	// changed if the request never reached the server; after a timeout,
	// the operation may or may not have been applied: repeat it with the
	// same key (Error.Key, the Key call option) to find out safely.
	ErrUnavailable = teller.ErrUnavailable
	// ErrKeyReused: the idempotency key was used before for another
	// operation (HTTP 422, KEY_REUSED); nothing was changed.
	ErrKeyReused = teller.ErrKeyReused
	// ErrLinkedFailed: a transfer of a batch (Transferencias) was not
	// applied because another transfer of its linked chain was refused
	// (LINKED_EVENT_FAILED); it changed nothing.
	ErrLinkedFailed = teller.ErrLinkedFailed
	// ErrLinkedOpen: the last transfer of a batch is linked, and no
	// transfer follows it (LINKED_CHAIN_OPEN); its chain changed nothing.
	ErrLinkedOpen = teller.ErrLinkedOpen
)

// answerCodes is the client's one table for reading a business server's
// answer: the sentinel each error_code matches, and the HTTP status that
// implies the code when an answer carries none (the original business
// server's, or a proxy's). The business server's side of the same
// boundary is package business's errAnswers table. A status not listed
// implies BAD_REQUEST (other 4xx) or INTERNAL.
var answerCodes = []struct {
	code     teller.Code
	sentinel error
	statuses []int
}{
	{teller.Unauthorized, ErrUnauthorized, []int{http.StatusUnauthorized}},
	{teller.LockedAccount, ErrLocked, []int{http.StatusForbidden}},
	{teller.NotFound, ErrNotFound, []int{http.StatusNotFound}},
	{teller.InvalidAccount, ErrNotFound, nil},
	{teller.InvalidValue, ErrInvalidValue, nil},
	{teller.Overflow, ErrInvalidValue, nil},
	{teller.BadRequest, ErrInvalidValue, nil},
	{teller.InsufficientFunds, ErrInsufficientFunds, []int{http.StatusConflict}},
	{teller.SameAccount, ErrSameAccount, nil},
	{teller.KeyReused, ErrKeyReused, []int{http.StatusUnprocessableEntity}},
	// A transaction's lock refusals: a business server retries them, so
	// only the data server's /getLocks answers them; locked all the same.
	{teller.Died, ErrLocked, nil},
	{teller.Deadlock, ErrLocked, nil},
	{teller.Changed, ErrLocked, nil},
	// A batch's transfers' refusals, in its results (HTTP 200).
	{teller.LinkedFailed, ErrLinkedFailed, nil},
	{teller.LinkedOpen, ErrLinkedOpen, nil},
	{teller.Unavailable, ErrUnavailable, []int{http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout}},
}

// codeForStatus gives the code of an answer without error_code.
func codeForStatus(status int) teller.Code {
	for _, c := range answerCodes {
		if slices.Contains(c.statuses, status) {
			return c.code
		}
	}
	if status >= 400 && status < 500 {
		return teller.BadRequest
	}
	return teller.Internal
}

// Error is a failed call. It matches the sentinel of its Code with
// errors.Is, and unwraps to Err, the transport error if any (so that
// errors.Is(err, context.DeadlineExceeded) works too).
type Error struct {
	// Op is the operation as typed, e.g. "saque 1 1000" or "autentica".
	Op string
	// Status is the HTTP status answered, 0 when no answer came.
	Status int
	// Code is the bank's error_code, or the code implied by Status when
	// the answer had none, or teller.Unavailable when no answer came.
	Code teller.Code
	// Message is the server's "error" text, or a description by the
	// client when there was none.
	Message string
	// Err is the underlying transport or decoding error, or nil.
	Err error
	// Key is the Idempotency-Key the operation was sent with ("" when
	// none). Repeating the operation with it (the Key call option) is
	// safe: it is applied at most once.
	Key string
}

func newError(op string, status int, code teller.Code, msg string) *Error {
	return &Error{Op: op, Status: status, Code: code, Message: msg}
}

// Error returns e.g. "saque 1 5000: insufficient funds (INSUFFICIENT_FUNDS,
// HTTP 409)".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	msg := e.Message
	if msg == "" {
		msg = defaultMessage(e.Code)
	}
	b.WriteString(msg)
	b.WriteString(" (")
	b.WriteString(e.Code.String())
	if e.Status != 0 {
		b.WriteString(", HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
	}
	b.WriteByte(')')
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying transport or decoding error, or nil.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's Code, or its
// client's sentinel (answerCodes: e.g. ErrNotFound for INVALID_ACCOUNT).
func (e *Error) Is(target error) bool {
	if s := sentinel(e.Code); s != nil && s == target {
		return true
	}
	return target != nil && e.Code.Err() == target
}

// sentinel maps a code to its client's sentinel; nil for INTERNAL and
// codes the client does not know.
func sentinel(c teller.Code) error {
	for _, row := range answerCodes {
		if row.code == c {
			return row.sentinel
		}
	}
	return nil
}

func defaultMessage(c teller.Code) string {
	if s := sentinel(c); s != nil {
		return s.Error()
	}
	return "server error"
}
