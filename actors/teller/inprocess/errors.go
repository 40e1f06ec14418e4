package inprocess

import (
	"context"
	"errors"
	"strconv"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/teller"
)

// Error is an error of Accounts. It wraps the bank's own error (Err: one
// of package actors', account's or store's, which the data server's
// refusals table reads) and, through the table below, the teller's
// reading of it: errors.Is matches both.
type Error struct {
	// Conta is the account that answered Err, 0 when none in particular
	// (a commit's refusal does not say which account refused).
	Conta int64
	Err   error
	// domain is the teller's error Err maps to, nil when the outcome is
	// unknown (a cluster call whose answer was lost); notApplied adds
	// teller.ErrNotApplied (the call surely applied nothing).
	domain     *teller.Error
	notApplied bool
}

func (e *Error) Error() string {
	if e.Conta == 0 {
		return e.Err.Error()
	}
	return "conta " + strconv.FormatInt(e.Conta, 10) + ": " + e.Err.Error()
}

// Account returns the account that answered Err, and whether one did: a
// Lock's refusal names it (a batch leaves out an account that is not
// found, and locks the rest).
func (e *Error) Account() (int64, bool) { return e.Conta, e.Conta != 0 }

// Unwrap returns the teller's errors Err maps to, then Err.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 3)
	if e.domain != nil {
		errs = append(errs, e.domain)
	}
	if e.notApplied {
		errs = append(errs, teller.ErrNotApplied)
	}
	return append(errs, e.Err)
}

// errTable is this boundary's one table: the bank's errors (package
// actors, its account rules, a context's end) and the teller's reading of
// them. Every row applied nothing; an error no row matches leaves the
// outcome unknown. Commit reads two rows differently (see wrap).
var errTable = []struct {
	err        error
	domain     *teller.Error
	notApplied bool
}{
	{actors.ErrNotFound, teller.ErrNotFound, false},
	{account.ErrLocked, teller.ErrLocked, false},
	{account.ErrStaleFence, teller.ErrStaleFence, false},
	{account.ErrBusy, teller.ErrLocked, false}, // a commit of the account is in progress: it ends soon
	{account.ErrNegativeBalance, teller.ErrInvalidValue, false},
	{account.ErrNoHolder, teller.ErrBadRequest, false},
	{account.ErrNoTimestamp, teller.ErrBadRequest, false},
	{account.ErrDied, teller.ErrDied, false},
	{account.ErrDeadlock, teller.ErrDeadlock, false},
	{account.ErrChanged, teller.ErrChanged, false},
	{account.ErrWounded, teller.ErrStaleFence, false}, // a grant it held is gone
	{actors.ErrNoFence, teller.ErrBadRequest, false},
	{store.ErrOutcomeUnknown, teller.ErrUnavailable, false}, // before ErrStore, which it comes with: may be durable
	{actors.ErrStore, teller.ErrUnavailable, true},          // the store refused or failed: nothing is durable
	{actors.ErrTimeout, teller.ErrUnavailable, true},
	{actors.ErrClosed, teller.ErrUnavailable, true},
	{actors.ErrInternal, teller.ErrInternal, false},
	// The call was abandoned before the actor took it up (DoContext).
	{context.Canceled, nil, true},
	{context.DeadlineExceeded, nil, true},
}

// wrap returns err, account id's answer (0: the commit's), as an *Error.
// A commit names grants: a lock held by another there means the grant
// named is gone (ErrStaleFence). And a commit's ErrInternal may come from
// its last phase, after the store made it durable: its outcome is unknown.
func wrap(id int64, err error, commit bool) error {
	if commit && errors.Is(err, account.ErrLocked) {
		err = account.ErrStaleFence
	}
	e := &Error{Conta: id, Err: err}
	if commit && errors.Is(err, actors.ErrInternal) {
		return e
	}
	for _, r := range errTable {
		if errors.Is(err, r.err) {
			e.domain, e.notApplied = r.domain, r.notApplied
			break
		}
	}
	return e
}

// badRequest is a call outside the contract's bounds, refused before any
// account was asked.
func badRequest(msg string) error {
	return &Error{Err: errors.New(msg), domain: teller.ErrBadRequest}
}

// storeFailed is a failure of the records store: nothing was kept.
func storeFailed(err error) error {
	return &Error{Err: errors.Join(actors.ErrStore, err), domain: teller.ErrUnavailable, notApplied: true}
}

// errNoRecords answers a call that needs idempotency records of Accounts
// that keep none.
var errNoRecords = &Error{Err: teller.ErrUnsupported}
