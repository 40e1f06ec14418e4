// Package account holds the rules of one bank account: its balance and who
// holds its lock. It does no I/O, starts no timer and reads no clock (the
// time is an argument), so that every rule can be tested exhaustively and
// any transport can drive it. Package actors wraps it in an actor, which
// drives it through the steps of ready.go (Acquire, Queue, Release,
// EndLease, Settle, Drop): each returns a Ready saying what the actor
// must do — answer the waiter the lock passed to, set its lease timer —
// so that the actor decides nothing itself.
//
// A lock request that finds the lock free, or held by the same holder
// (re-entrant), is granted at once. Otherwise Lock fails fast, as in the
// original bank, while Enqueue joins a FIFO queue that is granted in
// arrival order as the lock is released.
//
// Every new grant carries a fence, growing per account, and may carry a
// lease: a time after which Expire releases it. A request that names a
// fence (non-zero) is valid only while its holder still holds that very
// grant, so a delayed writer whose lease ran out cannot overwrite the work
// of the next holder. Requests without a fence keep the original's rules.
package account

import (
	"errors"
	"slices"
	"time"
)

// Errors returned by the rules. They are sentinels so that transports can
// map them to wire codes with errors.Is.
var (
	// ErrLocked refuses an operation because another holder has the lock.
	ErrLocked = errors.New("account locked by another holder")
	// ErrNegativeBalance refuses a write that would leave a negative balance.
	ErrNegativeBalance = errors.New("balance cannot be negative")
	// ErrNoHolder refuses a lock or unlock that does not say who asks:
	// an anonymous lock could never be told apart from a free account.
	ErrNoHolder = errors.New("holder must not be empty")
	// ErrStaleFence refuses a fenced request whose grant is no longer the
	// current one: its lease ran out or it was released.
	ErrStaleFence = errors.New("stale fence: the lock was granted again since")
	// ErrBusy refuses a write or unlock while a commit of the account is in
	// progress (between Pin and Commit or Unpin).
	ErrBusy = errors.New("account busy: a commit is in progress")
)

// Grant describes who holds the lock after a grant.
type Grant struct {
	Holder  string
	Fence   uint64    // grows with every new grant of this account
	Expires time.Time // zero when the grant has no lease
	// Ticket is the queued waiter's ticket when the grant went to a waiter
	// of Enqueue, and 0 for a request granted at once.
	Ticket uint64
}

// Account is the state of one account. The zero value is a free account
// holding nothing. It is not safe for concurrent use: its owner (an actor)
// serializes access.
type Account struct {
	balance int64
	holder  string // "" while the lock is free
	// holderTS is the holder's transaction timestamp (0: none, the
	// holder alone names the transaction).
	holderTS uint64
	fence    uint64 // of the current or last grant
	// version changes with every applied write: see Version.
	version uint64
	expires time.Time
	queue   []waiter // non-empty only while the lock is held
	// pinned is the balance a commit in progress will write: between Pin
	// and Commit or Unpin the grant cannot end and no other write happens,
	// so that the durable store and the account never disagree.
	pinned    int64
	hasPinned bool
}

type waiter struct {
	who    string
	ts     uint64
	ticket uint64
	ttl    time.Duration
}

// New returns a free account holding balance.
func New(balance int64) (Account, error) {
	if balance < 0 {
		return Account{}, ErrNegativeBalance
	}
	return Account{balance: balance, version: 1}, nil
}

// Restore returns an account as it was saved: a balance and the last fence
// granted, so that fences keep growing across restarts. The lock is free.
func Restore(balance int64, fence uint64) (Account, error) {
	a, err := New(balance)
	a.fence, a.version = fence, fence+1
	return a, err
}

// RestoreOverdrawn is Restore for a balance that may be negative: one that
// PinOverdraft wrote, in the original bank's rules.
func RestoreOverdrawn(balance int64, fence uint64) Account {
	return Account{balance: balance, fence: fence, version: fence + 1}
}

// Balance returns the current balance. Reading never needs the lock.
func (a *Account) Balance() int64 { return a.balance }

// Holder returns who holds the lock, or "" when it is free.
func (a *Account) Holder() string { return a.holder }

// Fence returns the fence of the current grant, or of the last one when
// the lock is free (0 if it was never granted).
func (a *Account) Fence() uint64 { return a.fence }

// Expires returns when the current grant's lease ends (zero: no lease, or
// the lock is free).
func (a *Account) Expires() time.Time { return a.expires }

// Waiting returns how many requests are queued for the lock.
func (a *Account) Waiting() int { return len(a.queue) }

// current returns the grant in force.
func (a *Account) current() Grant {
	return Grant{Holder: a.holder, Fence: a.fence, Expires: a.expires}
}

// valid reports whether a request by who naming fence may act as the
// holder: unfenced requests follow the original rules (anyone while free,
// the holder while held); fenced ones must name the grant in force.
func (a *Account) check(who string, fence uint64) error {
	if fence != 0 {
		if a.holder != who || a.fence != fence {
			return ErrStaleFence
		}
		return nil
	}
	if a.holder != "" && a.holder != who {
		return ErrLocked
	}
	return nil
}

func leaseEnd(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// Lock gives the lock to who, failing fast with ErrLocked when another
// holder has it. The holder locking again keeps its grant and fence and
// renews its lease to now+ttl (ttl <= 0: no lease). A fenced request
// renews only the grant it names.
func (a *Account) Lock(who string, fence uint64, ttl time.Duration, now time.Time) (Grant, error) {
	if who == "" {
		return Grant{}, ErrNoHolder
	}
	if err := a.check(who, fence); err != nil {
		return Grant{}, err
	}
	if a.hasPinned && a.holder != who {
		// An unfenced write to the free account is being committed: a
		// grant now would let that write land under the new holder.
		return Grant{}, ErrBusy
	}
	return a.grantTo(Txn{Holder: who}, ttl, now), nil
}

// Enqueue is Lock that waits: when the lock cannot be granted at once, who
// joins the FIFO queue under ticket (unique, non-zero, chosen by the
// caller) and Enqueue returns queued = true. The waiter is granted later by
// Unlock or Expire, or leaves the queue through Abandon.
func (a *Account) Enqueue(who string, ticket uint64, ttl time.Duration, now time.Time) (g Grant, queued bool, err error) {
	g, _, queued, err = a.request(LockRequest{Txn: Txn{Holder: who}, Scheme: Wait, TTL: ttl, Ticket: ticket}, now)
	return g, queued, err
}

// Abandon removes a queued waiter whose caller gave up. It reports whether
// the ticket was still queued; false means it was already granted (or never
// queued), and the caller must treat that grant as its own to release.
func (a *Account) Abandon(ticket uint64) bool {
	i := slices.IndexFunc(a.queue, func(w waiter) bool { return w.ticket == ticket })
	if i < 0 {
		return false
	}
	a.queue = slices.Delete(a.queue, i, i+1)
	return true
}

// Unlock releases the lock held by who. Unlocking a free account unfenced
// succeeds, so that a retried unlock does no harm; unlocking another
// holder's lock is refused. When waiters are queued the lock passes to the
// first at once, and next describes that grant (granted = true).
func (a *Account) Unlock(who string, fence uint64, now time.Time) (next Grant, granted bool, err error) {
	if who == "" {
		return Grant{}, false, ErrNoHolder
	}
	if err := a.check(who, fence); err != nil {
		return Grant{}, false, err
	}
	if a.hasPinned {
		return Grant{}, false, ErrBusy
	}
	if a.holder == "" {
		return Grant{}, false, nil
	}
	return a.release(now)
}

// Expire ends the grant fenced fence if its lease has run out by now. A
// late or repeated timer naming an older grant, or a lease renewed since,
// changes nothing. When the grant ends, the lock passes to the first
// waiter, as with Unlock.
func (a *Account) Expire(fence uint64, now time.Time) (expired bool, next Grant, granted bool) {
	if a.holder == "" || a.fence != fence || a.expires.IsZero() || now.Before(a.expires) || a.hasPinned {
		return false, Grant{}, false
	}
	next, granted, _ = a.release(now)
	return true, next, granted
}

// release frees the lock and grants it to the first waiter, if any.
func (a *Account) release(now time.Time) (Grant, bool, error) {
	a.holder, a.holderTS, a.expires = "", 0, time.Time{}
	if len(a.queue) == 0 {
		a.queue = nil // let a long queue's array go
		return Grant{}, false, nil
	}
	w := a.queue[0]
	a.queue = a.queue[1:]
	a.holder, a.holderTS = w.who, w.ts
	a.fence++
	a.expires = leaseEnd(now, w.ttl)
	g := a.current()
	g.Ticket = w.ticket
	return g, true, nil
}

// Write sets the balance on behalf of who. Unfenced, as in the original
// bank, a write needs no lock while the account is free but is refused
// while another holder has it; fenced, it needs the grant it names. A
// negative balance is never stored.
func (a *Account) Write(who string, fence uint64, balance int64) error {
	if err := a.Pin(who, fence, balance); err != nil {
		return err
	}
	a.Commit()
	return nil
}

// Pin checks that who may write balance under fence, as Write does, and
// reserves the write without applying it: until Commit or Unpin, the grant
// in force cannot end (Expire waits, Unlock and other writes are refused
// with ErrBusy). A transport pins, makes the write durable, then commits;
// several accounts pinned together commit atomically.
func (a *Account) Pin(who string, fence uint64, balance int64) error {
	return a.pin(who, fence, balance, false)
}

// PinOverdraft is Pin without the rule that a balance is never negative:
// the original bank's setSaldo stored any integer, and its business
// servers rely on that, since they ignore a refused write and go on to
// write the other account of a transfer (refusing it would create money).
func (a *Account) PinOverdraft(who string, fence uint64, balance int64) error {
	return a.pin(who, fence, balance, true)
}

func (a *Account) pin(who string, fence uint64, balance int64, overdraft bool) error {
	// A grant no longer in force is refused as such, pinned or not: its
	// holder must abort (a wound-wait holder whose grant was taken finds
	// the taker's commit in progress), not wait for the commit to end.
	if fence != 0 {
		if err := a.check(who, fence); err != nil {
			return err
		}
	}
	if a.hasPinned {
		return ErrBusy
	}
	if err := a.check(who, fence); err != nil {
		return err
	}
	if balance < 0 && !overdraft {
		return ErrNegativeBalance
	}
	a.pinned, a.hasPinned = balance, true
	return nil
}

// Commit applies the pinned write. It reports false, changing nothing,
// when nothing is pinned.
func (a *Account) Commit() bool {
	if !a.hasPinned {
		return false
	}
	a.balance, a.hasPinned = a.pinned, false
	a.version++
	return true
}

// Unpin drops the pinned write, because it could not be made durable.
func (a *Account) Unpin() { a.hasPinned = false }

// Pinned reports whether a write is pinned.
func (a *Account) Pinned() bool { return a.hasPinned }

// PinnedBalance returns the balance of the pinned write.
func (a *Account) PinnedBalance() int64 { return a.pinned }
