package teller

import (
	"context"
	"errors"
	"time"

	"github.com/bank/gobank/actors/account"
)

// Accounts is what a Teller needs of the accounts it moves money between:
// locks with fenced grants, reads, an atomic commit under the grants, and
// the kept outcomes of keyed requests. Two implementations exist: the
// data server over HTTP (package http/dataclient), and the account actors
// of this process (package actors/teller/inprocess, over actors.Bank or
// cluster.Bank), so that one Go program can run a transfer with no socket.
//
// An implementation is bound to one lock holder (a business server's
// id_negoc) and one lease length, given when it is made.
//
// Errors: a refusal wraps one of the domain errors (ErrLocked, ErrNotFound,
// ErrStaleFence, ErrInvalidValue, ...) and applied nothing; so does an
// error wrapping ErrNotApplied. ErrUnsupported says the accounts lack the
// operation (the original data server) and applied nothing. Any other
// error leaves the call's outcome unknown: it may have been applied.
type Accounts interface {
	// Lock takes the locks of ids (1 to MaxLegs, distinct), in the order
	// given, all or none, and fills grants[i] (len(grants) == len(ids))
	// with ids[i]'s grant. A lock held by another transaction is waited
	// for up to opt.Wait in all (0: fail fast, ErrLocked at once), as
	// opt.Scheme says. A lock the transaction already has is granted
	// again (re-entrant). On a refusal the locks already taken are
	// released. Accounts that cannot take several locks in one call, or
	// lack schemes, timestamps or versions, answer ErrUnsupported, having
	// taken nothing: the Teller then locks one at a time, or refuses the
	// scheme.
	Lock(ctx context.Context, ids []int64, opt LockOptions, grants []Grant) error
	// Unlock releases the lock of id under the grant fence (0: none).
	// Unlocking a free account succeeds; another holder's lock is refused
	// with ErrLocked, a grant no longer in force with ErrStaleFence.
	Unlock(ctx context.Context, id int64, fence uint64) error
	// Read returns id's balance. It takes no lock.
	Read(ctx context.Context, id int64) (int64, error)
	// Commit writes every change's balance, each under its grant's fence,
	// atomically and durably, releasing the locks when unlock is set, and
	// keeps rec (nil: none) in the same durable batch. When rec's key has a
	// record already, nothing is applied, the locks stay held, and that
	// record is returned with a nil error.
	Commit(ctx context.Context, changes []Change, unlock bool, rec *Record) (*Record, error)
	// Outcome returns the record kept under key, and whether there is one.
	Outcome(ctx context.Context, key string) (Record, bool, error)
	// Keep keeps rec alone (an outcome that changed no balance), unless its
	// key has a record already: that one is then returned, rec not kept.
	Keep(ctx context.Context, rec Record) (*Record, error)
}

// LockOptions say how a Lock waits, and for which transaction.
type LockOptions struct {
	// Wait bounds the whole call's wait for locks held by others (0: fail
	// fast).
	Wait time.Duration
	// Scheme says what a request finding a lock held does (see
	// account.Scheme); NoWait with a positive Wait queues FIFO.
	Scheme account.Scheme
	// TS is the transaction's timestamp (0: none, the holder alone is the
	// transaction, as in the original bank). WaitDie and WoundWait need
	// it; with it, two transactions of one holder never share a grant.
	TS uint64
	// Detect asks the accounts to break a cycle of waits at once, by
	// refusing its youngest transaction with ErrDeadlock (needs TS).
	Detect bool
	// Versions, when set (one per id), grants the locks only while every
	// account still has the version its transaction read (VersionReader),
	// refusing with ErrChanged otherwise.
	Versions []uint64
	// BeforeDurable takes a grant whose balance may come from a write not
	// yet durable (a data server releasing locks early): the caller shows
	// it to no one before its own commit or unlock of the account has
	// answered, which wait until it is durable. A Teller always asks for
	// it, since it answers an operation only after one of those.
	BeforeDurable bool
}

// Plain reports whether o asks for nothing the original bank lacked: a
// lock the seed's /getLock can take.
func (o LockOptions) Plain() bool {
	return o.Scheme == account.NoWait && o.TS == 0 && !o.Detect && o.Versions == nil
}

// VersionReader is implemented by accounts whose reads tell the balance's
// version, for optimistic transactions (ModeOCC).
type VersionReader interface {
	// ReadVersion returns id's balance and its version (see
	// account.Account.Version). It takes no lock.
	ReadVersion(ctx context.Context, id int64) (balance int64, version uint64, err error)
}

// Writer is implemented by accounts that can write one balance under a
// grant without a commit: the original data server's setSaldo. A Teller
// whose Accounts answer Commit with ErrUnsupported writes with it, one
// account at a time (not atomic; see the Teller's legacy path).
type Writer interface {
	Write(ctx context.Context, id, balance int64, fence uint64) error
}

// MaxLegs bounds the accounts of one Lock or Commit.
const MaxLegs = 16

// Grant is a lock grant on one account.
type Grant struct {
	// Fence names the grant: commits, writes and unlocks under it pass it,
	// and are refused (ErrStaleFence) once its lease has run out. 0 when
	// the accounts give no fences (the original data server).
	Fence uint64
	// Saldo is the balance when the lock was granted: it cannot change
	// while the lock is held, which spares a read. Valid when HasSaldo.
	Saldo    int64
	HasSaldo bool
}

// Change is one account's part of a Commit.
type Change struct {
	Conta int64
	Saldo int64  // the new balance
	Fence uint64 // the grant held on Conta
}

// Record is the kept outcome of a request that carried an idempotency key:
// what a repetition of the request must be answered.
type Record struct {
	// Key is the key the record is kept under (at most 128 bytes).
	Key string
	// Fingerprint names the request (route and parameters, at most 512
	// bytes), so that the key reused for another request is refused.
	Fingerprint string
	// Status and Body are the answer: an HTTP status and a JSON body (at
	// most 4 KiB). The teller treats them as opaque.
	Status int
	Body   []byte
}

var (
	// ErrNotApplied marks a failure that surely applied nothing (the
	// accounts said so, e.g. a data server's 503 UNAVAILABLE), beside the
	// domain refusals.
	ErrNotApplied = errors.New("not applied")
	// ErrUnsupported: the accounts lack the operation (the original data
	// server has no /getLocks, /commit or /idem). Nothing was applied.
	ErrUnsupported = errors.New("the accounts lack atomic commits and idempotency records")
)
