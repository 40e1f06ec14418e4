package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/store"
)

// accountActor serializes the requests for one account. It owns the
// timers of the account's leases and waits, which come back to it as
// messages, so the rules never see a clock of their own.
type accountActor struct {
	id      int64
	store   Committer // nil: in memory only
	acct    *account.Account
	hook    func(Request)
	system  *actor.ActorSystem
	timers  *scheduler.TimerScheduler
	waiting map[uint64]waiting // queued lock requests by ticket
	ticket  uint64
	lease   scheduler.CancelFunc // the lease timer of the grant in force
	// claim is a.claimWaiter, made once: the rules call it to hand the
	// lock to a queued request, which it leaves in granted.
	claim   account.Claim
	granted *call

	obs Observer // nil: not observed
	// det is the bank's deadlock detector (nil: none), told of the waits
	// of the requests that ask for detection; lastHolder is the holder
	// they were last reported waiting for.
	det        *Deadlocks
	lastHolder account.Txn
	// overdraft honours Request.Overdraft (Config.Overdraft).
	overdraft bool
	// dirty is the sync the balance waits for, when it comes from an
	// ordered commit (early lock release) that may not be durable yet;
	// nil once it is.
	dirty *durability
	// The grant last seen in force, for obs: its fence and since when.
	held      bool
	heldFence uint64
	grantedAt time.Time
}

// waiting is a queued lock request.
type waiting struct {
	call   *call
	cancel scheduler.CancelFunc // its wait timer
	since  time.Time            // when it was queued, for a detector's observer
}

// Timer messages. They name the grant or waiter they were armed for, so a
// late one (the grant was released, the waiter granted) changes nothing.
type (
	leaseEnded struct{ fence uint64 }
	waitEnded  struct{ ticket uint64 }
)

func newAccountActor(system *actor.ActorSystem, id int64, acct *account.Account, st Committer, hook func(Request)) *accountActor {
	a := &accountActor{id: id, store: st, acct: acct, hook: hook, system: system, timers: scheduler.NewTimerScheduler(system.Root), waiting: make(map[uint64]waiting)}
	a.claim = a.claimWaiter
	return a
}

// Receive implements actor.Actor.
func (a *accountActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *call:
		a.receiveCall(ctx.Self(), m)
	case leaseEnded:
		a.execute(ctx.Self(), a.acct.EndLease(m.fence, time.Now(), a.claim))
	case waitEnded:
		a.dequeue(m.ticket, account.ErrLocked)
	case victim:
		if w, ok := a.dequeue(m.ticket, m.err); ok && a.det != nil && m.err == account.ErrDeadlock {
			if o := a.det.obs; o != nil {
				now := time.Now()
				o.Deadlock(now.Sub(m.at), now.Sub(w.since))
			}
		}
	}
	a.afterStep(ctx.Self())
}

// afterStep reports what a step changed to the observer and the
// deadlock detector.
func (a *accountActor) afterStep(self *actor.PID) {
	if a.obs != nil {
		a.observeGrant()
	}
	if a.det != nil {
		a.reportHolder(self)
	}
}

// dequeue takes the request queued under ticket out of the queue and
// answers it err, unless it was granted or answered already.
func (a *accountActor) dequeue(ticket uint64, err error) (waiting, bool) {
	if !a.acct.Abandon(ticket) {
		return waiting{}, false
	}
	w := a.waiting[ticket]
	delete(a.waiting, ticket)
	if w.cancel != nil {
		w.cancel()
	}
	a.leftQueue(w, ticket)
	if w.call.state.CompareAndSwap(pending, claimed) {
		w.call.reply <- a.result(err)
	}
	return w, true
}

// leftQueue tells the detector that the request queued under ticket
// waits no more.
func (a *accountActor) leftQueue(w waiting, ticket uint64) {
	if a.det != nil && w.call != nil && tracked(w.call.req) {
		a.det.done(account.Txn{Holder: w.call.req.Holder, TS: w.call.req.TS}, a, ticket)
	}
}

// reportHolder reports the waits of the requests asking for detection
// anew when the holder they wait for has changed, aborting the victims
// of the cycles that closes.
func (a *accountActor) reportHolder(self *actor.PID) {
	h := a.acct.HolderTxn()
	if h == a.lastHolder {
		return
	}
	a.lastHolder = h
	if h.Holder == "" {
		return
	}
	for ticket, w := range a.waiting {
		if w.call != nil && tracked(w.call.req) {
			a.reportWait(self, ticket, w.call.req, h)
		}
	}
}

// tracked reports whether the detector sees req's waits: it asked for
// detection, or it is wound-wait's (a wound aborts the wounded one's wait).
func tracked(req Request) bool { return req.Detect || req.Scheme == account.WoundWait }

// reportWait tells the detector that req, queued under ticket, waits for
// holder, and aborts the victim if that closes a cycle.
func (a *accountActor) reportWait(self *actor.PID, ticket uint64, req Request, holder account.Txn) {
	e := waitEdge{holder: holder, pid: self, owner: a, ticket: ticket}
	if v, ok := a.det.wait(account.Txn{Holder: req.Holder, TS: req.TS}, e); ok {
		a.system.Root.Send(v.pid, victim{ticket: v.ticket, at: time.Now(), err: account.ErrDeadlock})
	}
}

// observeGrant reports the end of the grant last seen in force, if it is
// over, and notes the start of a new one. It compares two fields per
// message, and reads the clock only when the grant changed.
func (a *accountActor) observeGrant() {
	held := a.acct.Holder() != ""
	fence := a.acct.Fence()
	if held == a.held && (!held || fence == a.heldFence) {
		return
	}
	now := time.Now()
	if a.held {
		a.obs.LockHeld(now.Sub(a.grantedAt))
	}
	a.held, a.heldFence, a.grantedAt = held, fence, now
}

func (a *accountActor) receiveCall(self *actor.PID, c *call) {
	if c.req.Op == OpInspect {
		if c.state.CompareAndSwap(pending, claimed) {
			c.reply <- a.result(nil)
		}
		return
	}
	if c.req.Op == OpLock && c.req.Fence == 0 && lockScheme(c.req) != account.NoWait {
		a.receiveWaitingLock(self, c)
		return
	}
	if !c.state.CompareAndSwap(pending, claimed) {
		return // the caller gave up; it was told the call was not applied
	}
	c.reply <- a.apply(self, c.req)
}

// receiveWaitingLock queues a lock request. The call is claimed only when
// it is answered, so that its caller can still give up while it waits.
func (a *accountActor) receiveWaitingLock(self *actor.PID, c *call) {
	if c.state.Load() == abandoned {
		return
	}
	a.ticket++
	ticket := a.ticket
	a.waiting[ticket] = waiting{call: c} // for claimWaiter, should the lock be granted at once
	queued, r, err := a.acct.Request(lockRequest(c.req, ticket), time.Now(), a.claim)
	switch {
	case err != nil:
		delete(a.waiting, ticket)
		if c.state.CompareAndSwap(pending, claimed) {
			c.reply <- a.result(err)
		}
	case queued:
		cancel := a.timers.SendOnce(c.req.Wait, self, waitEnded{ticket})
		w := waiting{call: c, cancel: cancel}
		if a.det != nil && tracked(c.req) {
			w.since = time.Now()
			a.waiting[ticket] = w
			a.reportWait(self, ticket, c.req, a.acct.HolderTxn())
			return
		}
		a.waiting[ticket] = w
	default:
		a.execute(self, r)
	}
}

// lockScheme returns the scheme an unfenced OpLock is served under: a
// positive Wait without a scheme queues (as before schemes existed), and
// no wait left queues under none.
func lockScheme(r Request) account.Scheme {
	switch {
	case r.Wait <= 0:
		return account.NoWait
	case r.Scheme == account.NoWait:
		return account.Wait
	}
	return r.Scheme
}

// lockRequest is the rules' form of an unfenced OpLock.
func lockRequest(r Request, ticket uint64) account.LockRequest {
	return account.LockRequest{
		Txn:     account.Txn{Holder: r.Holder, TS: r.TS},
		Scheme:  lockScheme(r),
		TTL:     r.TTL,
		Ticket:  ticket,
		Version: r.Version,
	}
}

// claimWaiter implements account.Claim: it takes the queued request with
// ticket out of the queue and claims its call, unless its caller has given
// up. A claimed call is left in a.granted for execute to answer.
func (a *accountActor) claimWaiter(ticket uint64) bool {
	w := a.waiting[ticket]
	delete(a.waiting, ticket)
	if w.cancel != nil {
		w.cancel()
	}
	a.leftQueue(w, ticket)
	if w.call != nil && w.call.state.CompareAndSwap(pending, claimed) {
		a.granted = w.call
		return true
	}
	return false
}

// execute does what the rules decided: it reports an expiry, sets the
// lease timer and answers the waiter the lock passed to, in that order.
func (a *accountActor) execute(self *actor.PID, r account.Ready) {
	if r.Expired && a.obs != nil {
		a.obs.LeaseExpired()
	}
	if r.Wounded.Holder != "" && a.det != nil {
		if e, ok := a.det.take(r.Wounded); ok {
			a.system.Root.Send(e.pid, victim{ticket: e.ticket, at: time.Now(), err: account.ErrWounded})
		}
	}
	if r.SetLease {
		a.disarmLease()
		if !r.Lease.Expires.IsZero() {
			a.lease = a.timers.SendOnce(time.Until(r.Lease.Expires), self, leaseEnded{r.Lease.Fence})
		}
	}
	if r.Granted {
		c := a.granted
		a.granted = nil
		c.reply <- a.result(nil)
	}
}

func (a *accountActor) disarmLease() {
	if a.lease != nil {
		a.lease()
		a.lease = nil
	}
}

// commitPinned makes the pinned write durable, then applies it; when the
// store fails, the write is dropped and the caller told so.
func (a *accountActor) commitPinned(self *actor.PID) error {
	if a.store != nil {
		w := [1]store.Write{{ID: a.id, Balance: a.acct.PinnedBalance()}}
		start := time.Now()
		err := a.store.Commit(w[:], nil)
		if a.obs != nil {
			a.obs.StoreCommit(time.Since(start))
		}
		if err != nil {
			a.execute(self, a.acct.Drop(time.Now(), a.claim))
			return fmt.Errorf("%w: %w", ErrStore, err)
		}
		// Synced after every earlier entry of the log, so that an
		// ordered commit this balance replaces is durable too.
		a.dirty = nil
	}
	a.acct.Commit()
	return nil
}

// result describes the account after an operation that ended with err.
func (a *accountActor) result(err error) result {
	if a.dirty != nil && a.dirty.synced() {
		a.dirty = nil
	}
	return result{Reply: Reply{
		Balance: a.acct.Balance(),
		Holder:  a.acct.Holder(),
		Fence:   a.acct.Fence(),
		Expires: a.acct.Expires(),
		Waiting: a.acct.Waiting(),
		Version: a.acct.Version(),
	}, err: err, durable: a.dirty}
}

// apply runs one immediate request against the account. A panic is turned
// into ErrInternal so that the caller is answered at once and the actor is
// not restarted; the rules change the account only after every check
// passed, so a panic leaves it as it was.
func (a *accountActor) apply(self *actor.PID, req Request) (r result) {
	defer func() {
		if p := recover(); p != nil {
			r = a.result(ErrInternal)
		}
	}()
	if a.hook != nil {
		a.hook(req)
	}
	var err error
	switch req.Op {
	case OpRead:
	case OpWrite:
		pin := a.acct.Pin
		if req.Overdraft && a.overdraft {
			pin = a.acct.PinOverdraft
		}
		if err = pin(req.Holder, req.Fence, req.Value); err == nil {
			err = a.commitPinned(self)
		}
	case OpPin:
		err = a.acct.Pin(req.Holder, req.Fence, req.Value)
	case OpUnpin:
		a.execute(self, a.acct.Drop(time.Now(), a.claim))
	case OpCommit:
		if req.durable != nil {
			// Before Settle: the waiter it may grant the lock to is
			// answered this balance, which is not durable yet.
			a.dirty = req.durable
		}
		a.execute(self, a.acct.Settle(req.Unlock, req.Holder, req.Fence, time.Now(), a.claim))
	case OpLock:
		var r account.Ready
		if req.Fence != 0 {
			_, r, err = a.acct.Acquire(req.Holder, req.Fence, req.TTL, time.Now())
		} else {
			_, r, err = a.acct.Request(lockRequest(req, 0), time.Now(), a.claim)
		}
		if err == nil {
			a.execute(self, r)
		}
	case OpUnlock:
		var r account.Ready
		r, err = a.acct.Release(req.Holder, req.Fence, time.Now(), a.claim)
		a.execute(self, r)
	case opPanic:
		panic("account actor: panic requested by a test")
	default:
		err = fmt.Errorf("actors: unknown operation %v", req.Op)
	}
	return a.result(err)
}
