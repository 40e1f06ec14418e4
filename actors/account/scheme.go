package account

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors of the concurrency-control schemes.
var (
	// ErrDied refuses a wait-die request younger than the holder: it must
	// abort (releasing what it holds) and retry under the same timestamp.
	ErrDied = errors.New("wait-die: younger than the holder, the request dies")
	// ErrDeadlock refuses a waiting request chosen as the victim of a
	// cycle of waits: it must abort and retry. The rules never return it;
	// the owner of a deadlock detector does.
	ErrDeadlock = errors.New("deadlock: the request was the youngest of a cycle of waits")
	// ErrChanged refuses a lock request that names a version the account
	// no longer has: what the requester read was written since.
	ErrChanged = errors.New("version changed since it was read")
	// ErrWounded refuses the pending lock request of a transaction a
	// wound-wait request took a grant from: it must abort (its commit
	// would be refused as stale) and retry. The rules never return it;
	// the owner that sees the transaction's waits does.
	ErrWounded = errors.New("wound-wait: an older transaction took a lock this one held")
	// ErrNoTimestamp refuses a wait-die or wound-wait request without a
	// timestamp: its age decides whether it waits.
	ErrNoTimestamp = errors.New("scheme needs a transaction timestamp")
)

// Scheme says what a lock request does when another transaction holds the
// lock: the concurrency-control schemes of two-phase locking compared by
// Yu et al., "Staring into the Abyss" (VLDB 2014).
type Scheme uint8

// The schemes.
const (
	// NoWait refuses at once with ErrLocked (DBx1000's NO_WAIT).
	NoWait Scheme = iota
	// Wait joins a FIFO queue; cycles are broken only by the waiter's
	// timeout, or by a deadlock detector its owner runs (DL_DETECT).
	Wait
	// WaitDie lets a request older than the holder wait and refuses a
	// younger one with ErrDied (WAIT_DIE). Waiters are queued youngest
	// first, so every waiter is older than everyone ahead of it and every
	// wait goes from older to younger: no cycle can form. The holder's
	// age strictly decreases from one grant to the next while a waiter
	// waits, so the oldest is granted in the end: no starvation as long
	// as a retry keeps its timestamp.
	WaitDie
	// WoundWait lets a request older than the holder take the lock at
	// once, ending the holder's grant (its later commit is refused with
	// ErrStaleFence), unless the holder's write is pinned for commit; a
	// younger request waits. Waiters are queued oldest first, so every
	// wait goes from younger to older, except behind a pinned holder,
	// which waits for nothing (Bamboo's WOUND_WAIT).
	WoundWait
)

var schemeNames = [...]string{NoWait: "no-wait", Wait: "wait", WaitDie: "wait-die", WoundWait: "wound-wait"}

// String returns the scheme's name, as flags and reports spell it.
func (s Scheme) String() string {
	if int(s) < len(schemeNames) {
		return schemeNames[s]
	}
	return fmt.Sprintf("Scheme(%d)", uint8(s))
}

// ParseScheme returns the scheme named s (as String spells it).
func ParseScheme(s string) (Scheme, error) {
	for i, n := range schemeNames {
		if n == s {
			return Scheme(i), nil
		}
	}
	return 0, fmt.Errorf("lock scheme %q: want no-wait, wait, wait-die or wound-wait", s)
}

// Txn names a transaction: its lock holder and its timestamp, which is
// its age (lower is older) and is kept across its retries. Two requests
// of one holder with different non-zero timestamps are different
// transactions: neither re-enters the other's grant. TS 0 is the
// original bank's identity, the holder alone.
type Txn struct {
	Holder string
	TS     uint64
}

// Older reports whether t is older than u: a lower timestamp, 0 being the
// youngest of all, ties broken by holder so that the order is total.
func (t Txn) Older(u Txn) bool {
	tt, ut := t.TS-1, u.TS-1 // 0 wraps to the largest: the youngest
	if tt != ut {
		return tt < ut
	}
	return t.Holder < u.Holder
}

// LockRequest is a lock request under a scheme.
type LockRequest struct {
	Txn    Txn
	Scheme Scheme
	// TTL is the grant's lease (<= 0: none).
	TTL time.Duration
	// Ticket is the waiter's ticket (unique, non-zero) for the schemes
	// that may queue it.
	Ticket uint64
	// Version, when non-zero, grants the lock only if the account's
	// version (see Version) is still this one, and refuses it with
	// ErrChanged otherwise: an optimistic transaction's validation.
	Version uint64
}

// Version names the balance's value in time: it changes with every
// applied write (and jumps with the fence epoch at Restore), so that a
// reader can tell later whether the balance was written since.
func (a *Account) Version() uint64 { return a.version }

// HolderTxn returns the transaction holding the lock (zero when free).
func (a *Account) HolderTxn() Txn { return Txn{Holder: a.holder, TS: a.holderTS} }

// Request asks for the lock as r's scheme says. The lock is granted at
// once when it is free or held by r's own transaction (re-entrant, the
// lease renewed). Otherwise NoWait is refused with ErrLocked, WaitDie
// with ErrDied when r is not older than the holder, and WoundWait takes
// the lock from a younger holder whose write is not pinned (Ready.Wounded
// names the grant it ended); the rest is queued under r.Ticket (queued =
// true) and granted later, through claim, by Release, EndLease or Settle,
// or leaves the queue through Abandon. A grant at once goes through claim
// too, unless r has no ticket (NoWait): its caller is answered at once,
// and Ready only sets the lease.
func (a *Account) Request(r LockRequest, now time.Time, claim Claim) (queued bool, rd Ready, err error) {
	g, wounded, queued, err := a.request(r, now)
	if err != nil || queued {
		return queued, Ready{}, err
	}
	if r.Ticket == 0 {
		// A NoWait request's caller is there to be answered.
		return false, Ready{SetLease: true, Lease: g, Wounded: wounded}, nil
	}
	g.Ticket = r.Ticket
	rd = a.passOn(g, now, claim)
	rd.Wounded = wounded
	return false, rd, nil
}

func (a *Account) request(r LockRequest, now time.Time) (g Grant, wounded Txn, queued bool, err error) {
	t := r.Txn
	switch {
	case t.Holder == "":
		return Grant{}, Txn{}, false, ErrNoHolder
	case r.Scheme > WoundWait:
		return Grant{}, Txn{}, false, fmt.Errorf("account: unknown lock scheme %d", r.Scheme)
	case t.TS == 0 && (r.Scheme == WaitDie || r.Scheme == WoundWait):
		return Grant{}, Txn{}, false, ErrNoTimestamp
	case r.Scheme != NoWait && r.Ticket == 0:
		return Grant{}, Txn{}, false, errors.New("account: ticket 0 is reserved")
	case r.Version != 0 && r.Version != a.version:
		return Grant{}, Txn{}, false, ErrChanged
	}
	// A request without a timestamp is the holder's (the original
	// bank's re-entrance); one with a timestamp is its transaction's.
	own := a.holder == t.Holder && (t.TS == 0 || a.holderTS == t.TS)
	if a.holder == "" || own {
		if a.hasPinned && !own {
			// An unfenced write to the free account is being committed.
			return Grant{}, Txn{}, false, ErrBusy
		}
		return a.grantTo(t, r.TTL, now), Txn{}, false, nil
	}
	w := waiter{who: t.Holder, ts: t.TS, ticket: r.Ticket, ttl: r.TTL}
	holder := a.HolderTxn()
	switch r.Scheme {
	case NoWait:
		return Grant{}, Txn{}, false, ErrLocked
	case Wait:
		a.queue = append(a.queue, w)
	case WaitDie:
		if !t.Older(holder) {
			return Grant{}, Txn{}, false, ErrDied
		}
		// Youngest first: behind every waiter younger than t.
		i, _ := slices.BinarySearchFunc(a.queue, t, func(w waiter, t Txn) int {
			if w.txn().Older(t) {
				return 1
			}
			return -1
		})
		a.queue = slices.Insert(a.queue, i, w)
	case WoundWait:
		if t.Older(holder) && !a.hasPinned {
			wounded = a.HolderTxn()
			a.holder = ""
			return a.grantTo(t, r.TTL, now), wounded, false, nil
		}
		// Oldest first: behind every waiter older than t.
		i, _ := slices.BinarySearchFunc(a.queue, t, func(w waiter, t Txn) int {
			if w.txn().Older(t) {
				return -1
			}
			return 1
		})
		a.queue = slices.Insert(a.queue, i, w)
	}
	return Grant{}, Txn{}, true, nil
}

// grantTo gives the lock to t, a new grant unless t holds it already,
// and renews the lease.
func (a *Account) grantTo(t Txn, ttl time.Duration, now time.Time) Grant {
	if a.holder == "" {
		a.holder, a.holderTS = t.Holder, t.TS
		a.fence++
	}
	a.expires = leaseEnd(now, ttl)
	return a.current()
}

func (w waiter) txn() Txn { return Txn{Holder: w.who, TS: w.ts} }
