package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/bank/gobank/actors/account"
)

// Deadlocks is a deadlock detector over the waits of account actors
// (DBx1000's DL_DETECT): each actor reports which transaction a queued
// lock request waits for — its account's holder — as it queues and
// whenever the holder changes, and a wait that closes a cycle refuses the
// youngest transaction of the cycle with account.ErrDeadlock at once,
// instead of leaving the cycle to the waiters' timeouts.
//
// It also sees the waits of wound-wait requests, so that a transaction
// wounded at one account while it waits at another is refused there at
// once (account.ErrWounded), releasing everything it holds, instead of
// holding it until its commit finds the wound.
//
// A transaction waits at one account at a time (its locks are taken one
// after another), so the graph has at most one edge out of each waiter
// and finding a cycle is following a chain. It is safe for concurrent
// use; its lock is held for that walk only.
type Deadlocks struct {
	mu    sync.Mutex
	waits map[account.Txn]waitEdge
	obs   DeadlockObserver // nil: not observed
}

// DeadlockObserver is an Observer that is also told of the deadlocks a
// bank's detector broke.
type DeadlockObserver interface {
	// Deadlock reports a victim refused resolved after the cycle closed,
	// having waited waited in all.
	Deadlock(resolved, waited time.Duration)
}

// waitEdge is one waiting lock request: what it waits for, and where.
type waitEdge struct {
	holder account.Txn
	pid    *actor.PID    // the account actor it is queued at
	owner  *accountActor // that actor, naming it for done
	ticket uint64
}

// victim is the message that aborts a waiter: one chosen to break a
// cycle (ErrDeadlock), or one whose transaction was wounded (ErrWounded).
type victim struct {
	ticket uint64
	at     time.Time // when the cycle was found
	err    error
}

// NewDeadlocks returns a detector for hosts of Account (a Bank makes its
// own: Config.DeadlockDetection); obs, when it is a DeadlockObserver, is
// told of every deadlock broken.
func NewDeadlocks(obs Observer) *Deadlocks {
	d := &Deadlocks{waits: make(map[account.Txn]waitEdge)}
	d.obs, _ = obs.(DeadlockObserver)
	return d
}

// wait records that w waits for e.holder, replacing w's previous edge,
// and reports the edge of the cycle's youngest transaction if the new edge
// closes a cycle; that edge is removed, so that no victim is chosen
// twice. A cycle that does not pass through w was found when its own last
// edge was added.
func (d *Deadlocks) wait(w account.Txn, e waitEdge) (waitEdge, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.waits[w] = e
	youngest, ye := w, e
	cur := e.holder
	for range len(d.waits) {
		if cur == w {
			delete(d.waits, youngest)
			return ye, true
		}
		next, ok := d.waits[cur]
		if !ok {
			return waitEdge{}, false
		}
		if youngest.Older(cur) {
			youngest, ye = cur, next
		}
		cur = next.holder
	}
	return waitEdge{}, false
}

// take removes w's edge, if it waits, and returns it: w was wounded, and
// its wait is to be aborted.
func (d *Deadlocks) take(w account.Txn) (waitEdge, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.waits[w]
	if ok {
		delete(d.waits, w)
	}
	return e, ok
}

// done removes w's edge, if it is still the one of the request queued at
// owner under ticket.
func (d *Deadlocks) done(w account.Txn, owner *accountActor, ticket uint64) {
	d.mu.Lock()
	if e, ok := d.waits[w]; ok && e.owner == owner && e.ticket == ticket {
		delete(d.waits, w)
	}
	d.mu.Unlock()
}

// Len returns the number of waits recorded, for tests.
func (d *Deadlocks) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.waits)
}
