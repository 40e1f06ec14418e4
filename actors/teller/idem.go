package teller

import (
	"context"
	"errors"
)

// Idempotency: an operation run with RunKeyed is applied at most once per
// key, however often it is repeated, through however many Tellers of the
// same accounts. The Teller looks the key up (Accounts.Outcome); unknown,
// it runs the operation and keeps its outcome under the key: a success in
// the very Commit that writes the balances (one durable batch, so there is
// no instant at which the money moved but the outcome is not kept), a
// refusal that the same operation would get again alone with Keep.
// Transient failures are not kept: a repetition tries the operation again.
// When a duplicate running at the same time kept its outcome first, Commit
// applies nothing and answers that outcome, and so does Keep: every
// duplicate is answered the same. The key reused for another operation (its
// fingerprint differs) is refused with ErrKeyReused.

var (
	// ErrOutcomeUnknown: the answer to the commit of an operation was lost
	// (timeout, broken connection, failure in the middle): the operation
	// may or may not have been applied. The locks were released either
	// way. Repeating the operation with the same key tells which.
	ErrOutcomeUnknown = errors.New("the operation may or may not have been applied")
	// ErrNoRecords refuses an operation with a key when the accounts keep
	// no idempotency records (the original data server). Nothing changed.
	ErrNoRecords = errors.New("the accounts keep no idempotency records")
)

// OutcomeUnknownError wraps the failure of a commit whose outcome is
// unknown; it matches ErrOutcomeUnknown.
type OutcomeUnknownError struct{ Err error }

func (e *OutcomeUnknownError) Error() string {
	return "commit outcome unknown: " + e.Err.Error()
}

func (e *OutcomeUnknownError) Unwrap() []error { return []error{ErrOutcomeUnknown, e.Err} }

// KeyReusedError refuses a key kept for another operation: Fingerprint
// names that one. It matches ErrKeyReused.
type KeyReusedError struct{ Fingerprint string }

func (e *KeyReusedError) Error() string {
	return "idempotency key already used for " + e.Fingerprint
}

func (e *KeyReusedError) Unwrap() error { return ErrKeyReused }

// RefusalNotKeptError: a refusal whose outcome could not be kept under its
// key. It is not answered as the refusal, so that every outcome answered
// under a key is kept; nothing changed.
type RefusalNotKeptError struct{ Refusal, Err error }

func (e *RefusalNotKeptError) Error() string {
	return "keeping the refusal (" + e.Refusal.Error() + "): " + e.Err.Error()
}

func (e *RefusalNotKeptError) Unwrap() []error { return []error{e.Err} }

// Keyed is the idempotency of one operation: its key and what to keep
// under it. The answers are opaque to the Teller (an HTTP status and
// body, for a business server).
type Keyed struct {
	// Key is the key as kept (at most 128 bytes): a business server scopes
	// the client's key to its token.
	Key string
	// Fingerprint names the operation and its parameters (at most 512
	// bytes), e.g. "transferencia/1/2/100".
	Fingerprint string
	// SuccessStatus and Success make the answer kept for a success.
	SuccessStatus int
	Success       func(Result) []byte
	// Refusal makes the answer of a refusal, and says whether it is kept:
	// a refusal that the same operation would get again (no funds, no
	// such account), not a transient one (a lock wait that ran out).
	Refusal func(err error) (status int, body []byte, keep bool)
}

// keyed is the state of one keyed operation.
type keyed struct {
	*Keyed
	// body is the success answer, set by the operation once it knows the
	// new balances, before its commit keeps it.
	body []byte
	// replay is the record the accounts answered instead of applying the
	// commit (errReplayed).
	replay *Record
}

// Answer is the answer of a keyed operation.
type Answer struct {
	Status int
	Body   []byte
	// Replayed: the outcome kept under the key, answered again.
	Replayed bool
	// Err is the refusal answered (kept under the key); nil for a success
	// and a replay.
	Err error
}

// RunKeyed runs op at most once per k.Key: it answers the outcome kept
// under the key if there is one, and otherwise runs op, keeping its
// outcome. A Balance is run as Run does, nothing kept. The error is a
// failure that has no answer kept under the key (a transient one, which a
// repetition tries again, ErrNoRecords, a *KeyReusedError, a
// *RefusalNotKeptError): the caller answers it as it answers Run's.
func (t *Teller) RunKeyed(ctx context.Context, op Op, k *Keyed) (Answer, error) {
	if op.Kind == Balance {
		r, err := t.Run(ctx, op)
		if err != nil {
			return Answer{}, err
		}
		return Answer{Status: k.SuccessStatus, Body: k.Success(r)}, nil
	}
	rec, found, err := t.acc.Outcome(ctx, k.Key)
	switch {
	case errors.Is(err, ErrUnsupported):
		return Answer{}, ErrNoRecords
	case err != nil:
		return Answer{}, err
	case found:
		return replay(k, rec)
	}
	st := keyed{Keyed: k}
	_, err = t.run(ctx, op, &st)
	switch {
	case errors.Is(err, errReplayed):
		return replay(k, *st.replay)
	case err == nil:
		return Answer{Status: k.SuccessStatus, Body: st.body}, nil
	}
	status, body, keep := k.Refusal(err)
	if !keep {
		return Answer{}, err
	}
	kept, kerr := t.acc.Keep(ctx, Record{Key: k.Key, Fingerprint: k.Fingerprint, Status: status, Body: body})
	switch {
	case kerr != nil:
		return Answer{}, &RefusalNotKeptError{Refusal: err, Err: kerr}
	case kept != nil:
		return replay(k, *kept) // a duplicate kept its outcome first
	}
	return Answer{Status: status, Body: body, Err: err}, nil
}

// replay answers a kept outcome, or a *KeyReusedError when it was kept for
// another operation.
func replay(k *Keyed, rec Record) (Answer, error) {
	if rec.Fingerprint != k.Fingerprint {
		return Answer{}, &KeyReusedError{Fingerprint: rec.Fingerprint}
	}
	return Answer{Status: rec.Status, Body: rec.Body, Replayed: true}, nil
}
