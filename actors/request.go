package actors

import (
	"fmt"
	"time"

	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/store"
)

// Store keeps balances durably. Commit must return only once writes and
// rec are durable together, or not at all.
type Store interface {
	Accounts() (map[int64]int64, error)
	NextEpoch() (uint64, error)
	Committer
}

// Committer makes writes durable: all of them together with rec, or none.
// It is all an account actor needs of a store.
type Committer interface {
	Commit(writes []store.Write, rec *store.Record) error
}

// OrderedCommitter is a Committer that can order a commit before it is
// durable (store.Pebble.CommitOrdered): when CommitOrdered returns, the
// writes are placed in the store's log after every earlier commit, and
// sync waits until they are on disk. A later commit durable makes every
// earlier one durable. A Bank over such a store releases locks early
// (Config.EarlyLockRelease).
type OrderedCommitter interface {
	CommitOrdered(writes []store.Write, rec *store.Record) (sync func() error, err error)
}

// Op names what a Request asks of an account.
type Op uint8

// The operations an account actor serves.
const (
	// OpRead returns the balance; it never needs the lock.
	OpRead Op = iota
	// OpWrite sets the balance to Request.Value.
	OpWrite
	// OpLock takes the lock for Request.Holder.
	OpLock
	// OpUnlock releases the lock held by Request.Holder.
	OpUnlock
	// opPanic makes the actor panic; tests use it to check recovery.
	opPanic
	// OpPin, OpCommit and OpUnpin carry Apply's two phases: OpPin checks
	// and holds a holder's write (Value) under its fence, OpCommit applies
	// it once durable (and, with Request.Unlock, releases the lock),
	// OpUnpin drops it. Do refuses them; a host of Account (a cluster grain) serves
	// them for its own Apply.
	OpPin
	OpCommit
	OpUnpin
	// OpInspect reads the account's state for an observer (the live
	// view): it never runs the test hook and is not counted as an
	// operation. Do refuses it; Bank.Inspect and hosts send it.
	OpInspect
)

// String returns the operation's name as the data server logs it.
func (o Op) String() string {
	switch o {
	case OpRead:
		return "read"
	case OpWrite:
		return "write"
	case OpLock:
		return "lock"
	case OpUnlock:
		return "unlock"
	case OpInspect:
		return "inspect"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Request is one operation on one account.
type Request struct {
	Op     Op
	Holder string // who asks: the lock holder for OpLock, OpUnlock, OpWrite
	Value  int64  // the new balance for OpWrite
	// Fence, when non-zero, makes OpLock (a renewal), OpUnlock and OpWrite
	// valid only while Holder still holds the grant with this fence.
	Fence uint64
	// TTL is the lease of an OpLock grant (renewed by the holder locking
	// again); zero or negative: no lease.
	TTL time.Duration
	// Wait, when positive, queues an OpLock behind the holder for that long
	// (FIFO) instead of failing fast with account.ErrLocked.
	Wait time.Duration
	// Overdraft lets an OpWrite store a negative Value, as the original
	// bank's setSaldo did. It is refused (account.ErrNegativeBalance) by a
	// bank whose Config.Overdraft is not set.
	Overdraft bool
	// Unlock makes an OpCommit also release the lock (Apply's unlock).
	Unlock bool

	// Scheme says what an unfenced OpLock does when another transaction
	// holds the lock (see account.Scheme). The zero value, NoWait, queues
	// as account.Wait when Wait is positive, as before schemes existed;
	// the schemes that queue fail fast once Wait is spent (0).
	Scheme account.Scheme
	// TS is the transaction's timestamp (see account.Txn): two OpLocks
	// of one Holder with different non-zero TS are different
	// transactions. Wait-die and wound-wait need it.
	TS uint64
	// Version, when non-zero, grants an OpLock only while the account's
	// version is still this one (account.ErrChanged otherwise): an
	// optimistic transaction's validation of what it read.
	Version uint64
	// Detect reports a queued OpLock's wait to the bank's deadlock
	// detector (Config.DeadlockDetection), which refuses the youngest
	// waiter of a cycle with account.ErrDeadlock at once. It needs TS.
	Detect bool
	// BeforeDurable lets an OpLock grant be answered at once even when
	// the account's balance comes from a write not yet durable (early
	// lock release, Config.EarlyLockRelease): for a caller that shows that
	// balance to no one before its own commit or unlock of the account
	// has answered, since those wait until it is durable. Without it a
	// grant waits, as every other answer does.
	BeforeDurable bool

	// durable, on an OpCommit, is the sync of the ordered store commit
	// that holds its write.
	durable *durability
}

// Reply is an account's answer. Balance, Holder, Fence and Expires
// describe the account after the operation, whether or not it succeeded.
type Reply struct {
	Balance int64
	Holder  string
	Fence   uint64    // of the grant in force, or of the last one
	Expires time.Time // end of the grant's lease; zero when none
	Waiting int       // lock requests queued behind the holder
	// Version is the balance's version (account.Account.Version).
	Version uint64
}
