package account

import "time"

// Ready is what the owner of an account must do after a step of the rules.
// The rules decide and the owner only executes, the way etcd's raft
// returns a Ready for its caller to act on: the rules keep no timer and
// answer no caller, so every decision, including when a lease ends and
// who gets the lock next, is tested here without an actor.
type Ready struct {
	// Granted is set when the lock passed to a queued waiter, the one
	// with ticket Grant.Ticket, which Claim accepted: the owner answers
	// that waiter's caller with the grant.
	Granted bool
	Grant   Grant
	// SetLease is set when the lease timer must change: the owner stops
	// the timer it has and, unless Lease.Expires is zero, arms one that
	// calls EndLease(Lease.Fence, …) at Lease.Expires.
	SetLease bool
	Lease    Grant
	// Expired is set when a grant ended because its lease ran out.
	Expired bool
	// Wounded, when its Holder is set, is the transaction whose grant a
	// wound-wait request ended to take the lock (see Request): the owner
	// aborts its pending lock requests, if it can see them.
	Wounded Txn
}

// Claim asks the owner whether the queued waiter with ticket still wants
// the lock. It reports true when it took the grant for that waiter (who
// the owner then answers, as Ready.Granted says), and false when the
// waiter's caller has gone: the lock then passes to the next waiter. The
// rules call it at most once per ticket, and only for tickets the owner
// gave to Queue.
type Claim func(ticket uint64) bool

// Acquire is Lock, and says which lease timer the grant needs.
func (a *Account) Acquire(who string, fence uint64, ttl time.Duration, now time.Time) (Grant, Ready, error) {
	g, err := a.Lock(who, fence, ttl, now)
	if err != nil {
		return Grant{}, Ready{}, err
	}
	return g, Ready{SetLease: true, Lease: g}, nil
}

// Queue is Enqueue under the owner's ticket. When the lock is granted at
// once, the grant goes through claim like any waiter's (the caller may
// have gone already), and so on down the queue.
func (a *Account) Queue(who string, ticket uint64, ttl time.Duration, now time.Time, claim Claim) (queued bool, r Ready, err error) {
	return a.Request(LockRequest{Txn: Txn{Holder: who}, Scheme: Wait, TTL: ttl, Ticket: ticket}, now, claim)
}

// Release is Unlock, passing the lock to the first waiter whose caller
// still wants it.
func (a *Account) Release(who string, fence uint64, now time.Time, claim Claim) (Ready, error) {
	held := a.holder != ""
	next, granted, err := a.Unlock(who, fence, now)
	switch {
	case err != nil:
		return Ready{}, err
	case granted:
		return a.passOn(next, now, claim), nil
	case held:
		return Ready{SetLease: true}, nil
	}
	return Ready{}, nil
}

// EndLease is Expire for the owner's lease timer of the grant fenced
// fence: a late timer, or one for a lease renewed since, changes nothing.
func (a *Account) EndLease(fence uint64, now time.Time, claim Claim) Ready {
	expired, next, granted := a.Expire(fence, now)
	if !expired {
		return Ready{}
	}
	r := Ready{SetLease: true}
	if granted {
		r = a.passOn(next, now, claim)
	}
	r.Expired = true
	return r
}

// Settle applies the pinned write (Commit) and, when unlock is set,
// releases the lock of who under fence, as Release does; a failed release
// leaves the lock as it was. A lease that ran out while the write was
// pinned (its timer then changed nothing) ends now.
func (a *Account) Settle(unlock bool, who string, fence uint64, now time.Time, claim Claim) Ready {
	a.Commit()
	if unlock {
		if r, err := a.Release(who, fence, now, claim); err == nil {
			// The lock is free, or granted anew under a lease that ends
			// after now: nothing can have run out.
			return r
		}
	}
	return a.EndLease(a.fence, now, claim)
}

// Drop drops the pinned write (Unpin), because it could not be made
// durable. A lease that ran out while it was pinned ends now.
func (a *Account) Drop(now time.Time, claim Claim) Ready {
	a.Unpin()
	return a.EndLease(a.fence, now, claim)
}

// passOn hands grant g to its waiter through claim. When that waiter's
// caller has gone, the grant is released at once and the lock passes to
// the next waiter, until one takes it or the queue is empty.
func (a *Account) passOn(g Grant, now time.Time, claim Claim) Ready {
	for !claim(g.Ticket) {
		next, granted, err := a.Unlock(g.Holder, g.Fence, now)
		if err != nil || !granted {
			return Ready{SetLease: true}
		}
		g = next
	}
	return Ready{Granted: true, Grant: g, SetLease: true, Lease: g}
}
