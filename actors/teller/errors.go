// Package teller is the bank's orchestration: deposit, withdraw, balance
// and transfer over the accounts, and the one vocabulary of domain errors
// that every boundary (HTTP server, data client, Go client) maps to and
// from its own codes. It imports no HTTP.
package teller

import "errors"

// Code is a domain error code, answered as HTTP 200 with {"error_code": N}:
// the original business server reads only error_code and treats any
// non-2xx answer as a crash.
type Code int

// The original's error codes.
const (
	// LockedAccount: another id_negoc holds the account's lock.
	LockedAccount Code = -1
	// InvalidAccount: no conta in the request, or not a number.
	InvalidAccount Code = -2
	// InvalidValue: no valor, or not an integer (or a negative balance).
	InvalidValue Code = -3
	// NotFound: no such account.
	NotFound Code = -4
	// StaleFence: the request names a lock grant that is no longer in force
	// (its lease ran out, or it was released and granted again).
	StaleFence Code = -5
)

// String returns the code's name in the contract.
func (c Code) String() string {
	switch c {
	case LockedAccount:
		return "LOCKED_ACCOUNT"
	case InvalidAccount:
		return "INVALID_ACCOUNT"
	case InvalidValue:
		return "INVALID_VALUE"
	case NotFound:
		return "NOT_FOUND"
	case StaleFence:
		return "STALE_FENCE"
	case InsufficientFunds:
		return "INSUFFICIENT_FUNDS"
	case SameAccount:
		return "SAME_ACCOUNT"
	case Unauthorized:
		return "UNAUTHORIZED"
	case Unavailable:
		return "UNAVAILABLE"
	case Overflow:
		return "OVERFLOW"
	case Internal:
		return "INTERNAL"
	case BadRequest:
		return "BAD_REQUEST"
	case KeyReused:
		return "KEY_REUSED"
	case Died:
		return "DIED"
	case Deadlock:
		return "DEADLOCK"
	case Changed:
		return "CHANGED"
	case LinkedFailed:
		return "LINKED_EVENT_FAILED"
	case LinkedOpen:
		return "LINKED_CHAIN_OPEN"
	}
	return "UNKNOWN_ERROR"
}

// Codes that business servers answer beside the data server's own, with a
// non-2xx status (see the README's table).
const (
	// InsufficientFunds: a withdrawal or transfer would make a balance negative.
	InsufficientFunds Code = -6
	// SameAccount: a transfer names the same account twice.
	SameAccount Code = -7
	// Unauthorized: the credential is missing, unknown or not allowed here.
	Unauthorized Code = -8
	// Unavailable: the data server is down, did not answer in time, or refused
	// the business server's own credential.
	Unavailable Code = -9
	// Overflow: the result would not fit in a signed 64-bit integer.
	Overflow Code = -10
	// Internal: a bug; the operation was not applied.
	Internal Code = -11
	// BadRequest: malformed request (a repeated or oversized parameter, a missing id_negoc).
	BadRequest Code = -12
	// KeyReused: an Idempotency-Key already used for a different request.
	KeyReused Code = -13
)

// Codes of the concurrency-control schemes: the data server refuses a
// transaction's lock with them, and the business server aborts the
// transaction and retries it (see LockMode); a client sees them only from
// the data server's /getLocks.
const (
	// Died: a wait-die lock request younger than the holder.
	Died Code = -14
	// Deadlock: the youngest waiter of a cycle of waits.
	Deadlock Code = -15
	// Changed: an optimistic transaction's validation found an account
	// written since it was read.
	Changed Code = -16
)

// Codes of a batch's transfers (see Teller.Transfers), after
// TigerBeetle's create_transfers results.
const (
	// LinkedFailed: another transfer of the same linked chain was refused.
	LinkedFailed Code = -17
	// LinkedOpen: the batch's last transfer is linked to nothing.
	LinkedOpen Code = -18
)

// Error is a domain error of the bank: one of the contract's codes. The
// sentinels below are the project's one vocabulary of domain errors: the
// business server returns them (wrapped with context), the Go client's
// *Error matches them, and each boundary's table maps them to and from an
// HTTP status and an error_code. Compare with errors.Is.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// The domain errors, one per code.
var (
	// ErrLocked: another holder has the account's lock (LOCKED_ACCOUNT);
	// trying again later may succeed.
	ErrLocked = &Error{LockedAccount, "account locked"}
	// ErrInvalidAccount: the account is missing or not a number (INVALID_ACCOUNT).
	ErrInvalidAccount = &Error{InvalidAccount, "invalid account"}
	// ErrInvalidValue: the value is missing, not an integer, or refused, e.g.
	// a negative balance (INVALID_VALUE).
	ErrInvalidValue = &Error{InvalidValue, "invalid value"}
	// ErrNotFound: no such account (NOT_FOUND).
	ErrNotFound = &Error{NotFound, "no such account"}
	// ErrStaleFence: the lock grant named is no longer in force (its lease
	// ran out, or it was released and granted again): the call was refused
	// and the lock is lost (STALE_FENCE).
	ErrStaleFence = &Error{StaleFence, "lock grant no longer in force"}
	// ErrInsufficientFunds: a withdrawal or transfer would make a balance
	// negative (INSUFFICIENT_FUNDS).
	ErrInsufficientFunds = &Error{InsufficientFunds, "insufficient funds"}
	// ErrSameAccount: a transfer names the same account twice (SAME_ACCOUNT).
	ErrSameAccount = &Error{SameAccount, "same account"}
	// ErrUnauthorized: the token is missing or unknown (UNAUTHORIZED).
	ErrUnauthorized = &Error{Unauthorized, "token refused"}
	// ErrUnavailable: the server could not be reached, did not answer in
	// time, or could not apply the request (UNAVAILABLE).
	ErrUnavailable = &Error{Unavailable, "server unavailable"}
	// ErrOverflow: the balance would exceed the largest amount (OVERFLOW).
	ErrOverflow = &Error{Overflow, "the balance would exceed the largest amount"}
	// ErrInternal: a bug; the operation was not applied (INTERNAL).
	ErrInternal = &Error{Internal, "internal error"}
	// ErrBadRequest: a malformed request (BAD_REQUEST).
	ErrBadRequest = &Error{BadRequest, "bad request"}
	// ErrKeyReused: the idempotency key was used before for another
	// operation (KEY_REUSED); nothing was changed.
	ErrKeyReused = &Error{KeyReused, "idempotency key used for another operation"}
	// ErrDied: a wait-die lock request was younger than the holder, and
	// died (DIED); its transaction must abort and retry.
	ErrDied = &Error{Died, "wait-die: younger than the lock's holder"}
	// ErrDeadlock: a waiting lock request was the youngest of a cycle of
	// waits (DEADLOCK); its transaction must abort and retry.
	ErrDeadlock = &Error{Deadlock, "deadlock: the youngest waiter of a cycle"}
	// ErrChanged: an account was written since the transaction read it
	// (CHANGED); the transaction must read again.
	ErrChanged = &Error{Changed, "written since it was read"}
	// ErrLinkedFailed: a transfer of a batch was not applied because
	// another of its linked chain was refused (LINKED_EVENT_FAILED).
	ErrLinkedFailed = &Error{LinkedFailed, "another transfer of its linked chain was refused"}
	// ErrLinkedOpen: the last transfer of a batch is linked to a next one
	// that is not there (LINKED_CHAIN_OPEN); its chain is not applied.
	ErrLinkedOpen = &Error{LinkedOpen, "the batch's last transfer is linked, and no transfer follows it"}
)

// errs holds the sentinel of every code, indexed by -code.
var errs = [...]*Error{
	-LockedAccount: ErrLocked, -InvalidAccount: ErrInvalidAccount, -InvalidValue: ErrInvalidValue,
	-NotFound: ErrNotFound, -StaleFence: ErrStaleFence, -InsufficientFunds: ErrInsufficientFunds,
	-SameAccount: ErrSameAccount, -Unauthorized: ErrUnauthorized, -Unavailable: ErrUnavailable,
	-Overflow: ErrOverflow, -Internal: ErrInternal, -BadRequest: ErrBadRequest, -KeyReused: ErrKeyReused,
	-Died: ErrDied, -Deadlock: ErrDeadlock, -Changed: ErrChanged,
	-LinkedFailed: ErrLinkedFailed, -LinkedOpen: ErrLinkedOpen,
}

// Codes lists every code of the contract, -1 down.
func Codes() []Code {
	codes := make([]Code, 0, len(errs)-1)
	for i := 1; i < len(errs); i++ {
		codes = append(codes, Code(-i))
	}
	return codes
}

// Err returns the sentinel of c, or nil when c is not a code of the contract.
func (c Code) Err() error {
	if c >= 0 || int(-c) >= len(errs) {
		return nil
	}
	return errs[-c]
}

// CodeOf returns the code of the domain error err wraps, and false when it
// wraps none.
func CodeOf(err error) (Code, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}
