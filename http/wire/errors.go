package wire

import "errors"

// Error is a domain error of the bank: one of the contract's codes. The
// sentinels below are the project's one vocabulary of domain errors: the
// business server returns them (wrapped with context), the Go client's
// *Error matches them, and each boundary's table maps them to and from an
// HTTP status and an error_code. Compare with errors.Is.
type Error struct {
	Code Code
	msg  string
}

func (e *Error) Error() string { return e.msg }

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
)

// errs holds the sentinel of every code, indexed by -code.
var errs = [...]*Error{
	-LockedAccount: ErrLocked, -InvalidAccount: ErrInvalidAccount, -InvalidValue: ErrInvalidValue,
	-NotFound: ErrNotFound, -StaleFence: ErrStaleFence, -InsufficientFunds: ErrInsufficientFunds,
	-SameAccount: ErrSameAccount, -Unauthorized: ErrUnauthorized, -Unavailable: ErrUnavailable,
	-Overflow: ErrOverflow, -Internal: ErrInternal, -BadRequest: ErrBadRequest, -KeyReused: ErrKeyReused,
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
