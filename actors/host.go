package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/bank/gobank/actors/account"
)

// Account is the behaviour of one account actor, for hosts other than
// Bank: a cluster grain embeds it, so that the account's rules, lock
// queue, leases and durable writes are the very ones a Bank runs. The host
// passes its messages to Receive and its requests to Serve, from the
// actor's own goroutine only.
type Account struct {
	a *accountActor
}

// NewAccount returns the behaviour of account id in state acct. Writes are
// made durable through w before they are acknowledged (nil: in memory);
// obs may be nil.
func NewAccount(system *actor.ActorSystem, id int64, acct account.Account, w Committer, obs Observer) *Account {
	st := acct
	a := newAccountActor(system, id, &st, w, nil)
	a.obs = obs
	return &Account{a: a}
}

// DetectDeadlocks reports the waits of the lock requests that ask for it
// (Request.Detect) to d, shared by the accounts of this process.
func (h *Account) DetectDeadlocks(d *Deadlocks) { h.a.det = d }

// State returns the account's rules, for the host to read (never to
// change: the actor keeps its timers in step with them).
func (h *Account) State() *account.Account { return h.a.acct }

// Reset replaces the account's state with acct, as when its host reloads
// it from the store: the lease timer is disarmed and every queued lock
// request is refused with err, answered rather than left to time out.
func (h *Account) Reset(acct account.Account, err error) {
	a := h.a
	a.disarmLease()
	for ticket, w := range a.waiting {
		delete(a.waiting, ticket)
		if w.cancel != nil {
			w.cancel()
		}
		a.leftQueue(w, ticket)
		if w.call != nil && w.call.state.CompareAndSwap(pending, claimed) {
			w.call.reply <- a.result(err)
		}
	}
	*a.acct = acct
}

// Receive handles the account's own timer messages (lease and wait ends),
// and reports whether msg was one of them.
func (h *Account) Receive(ctx actor.Context) bool {
	switch ctx.Message().(type) {
	case leaseEnded, waitEnded, victim:
		h.a.Receive(ctx)
		return true
	}
	return false
}

// Serve applies req, any operation including Apply's phases. answer is
// called exactly once: at once on this goroutine, or, for a lock request
// queued behind the holder, later on another goroutine when the lock is
// granted or the wait ends. When deadline passes first (the remote caller
// has given up by then), the request is abandoned instead: a waiter leaves
// the queue, a grant is passed on, and answer is not called at all.
func (h *Account) Serve(self *actor.PID, req Request, deadline time.Time, answer func(Reply, error)) {
	c := getCall()
	c.req = req
	h.a.receiveCall(self, c)
	h.a.afterStep(self)
	if r, ok := c.answered(); ok {
		answer(r.Reply, r.err)
		return
	}
	go func() {
		t := getTimer(time.Until(deadline))
		r, gaveUp := c.await(context.Background(), t.C)
		putTimer(t)
		if gaveUp == nil {
			answer(r.Reply, r.err)
		}
	}()
}
