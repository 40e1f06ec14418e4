// Package actors runs each bank account as a protoactor-go actor. The actor
// owns one account.Account and applies the requests sent to it one at a
// time, so the rules in package account need no locking of their own.
//
// A call carries its own buffered reply channel instead of going through
// protoactor's futures: measured on a 2-core machine, a future costs ~6.6 µs
// and 11 allocations per call (and upstream has an open data race in
// futures), against ~1.6 µs and 2 allocations for a pooled channel.
package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/bank/gobank/actors/account"
)

// Errors returned by Bank besides those of package account.
var (
	// ErrNotFound answers a call for an account the bank does not have.
	ErrNotFound = errors.New("no such account")
	// ErrTimeout answers a call the actor did not start within the bank's
	// timeout. The call was then abandoned: it has not been and will not be
	// applied.
	ErrTimeout = errors.New("account did not answer in time")
	// ErrInternal answers a call whose handling panicked. The account's
	// state is left as it was before the call.
	ErrInternal = errors.New("internal error in account actor")
	// ErrClosed answers a call made after Close.
	ErrClosed = errors.New("bank is closed")
)

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
}

// Reply is an account's answer. Balance, Holder, Fence and Expires
// describe the account after the operation, whether or not it succeeded.
type Reply struct {
	Balance int64
	Holder  string
	Fence   uint64    // of the grant in force, or of the last one
	Expires time.Time // end of the grant's lease; zero when none
	Waiting int       // lock requests queued behind the holder
}

// Config says which accounts a Bank holds and how long a call may wait.
type Config struct {
	// Accounts is the number of accounts, numbered 1..Accounts.
	Accounts int
	// InitialBalance is every account's balance at start.
	InitialBalance int64
	// Timeout bounds how long a call waits for its actor to take it up.
	// Zero means one second.
	Timeout time.Duration
	// Synchronous runs an actor on the goroutine of the caller that finds
	// its mailbox idle, instead of on a fresh goroutine per mailbox run.
	// Cheaper per call; under load one caller may serve a burst of others.
	Synchronous bool
	// Logger receives protoactor-go's own logs. Nil discards them: by
	// default protoactor logs in colour to stderr.
	Logger *slog.Logger

	// hook, when set, runs in the actor before each request; tests use it
	// to hold an actor busy.
	hook func(Request)
}

// Bank is a fixed set of account actors addressed by account number.
// It is safe for concurrent use.
type Bank struct {
	system  *actor.ActorSystem
	pids    []*actor.PID // pids[i] serves account i+1: a slice index is ~40x cheaper than the process registry
	timeout time.Duration
	closed  atomic.Bool
}

// New spawns one actor per account.
func New(cfg Config) (*Bank, error) {
	if cfg.Accounts < 0 {
		return nil, fmt.Errorf("actors: %d accounts: must not be negative", cfg.Accounts)
	}
	if _, err := account.New(cfg.InitialBalance); err != nil {
		return nil, fmt.Errorf("actors: initial balance %d: %w", cfg.InitialBalance, err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }),
		actor.WithDeadLetterRequestLogging(false),
	)
	dispatcher := actor.NewDefaultDispatcher(300)
	if cfg.Synchronous {
		dispatcher = actor.NewSynchronizedDispatcher(300)
	}
	b := &Bank{system: system, pids: make([]*actor.PID, cfg.Accounts), timeout: cfg.Timeout}
	for i := range b.pids {
		// The state lives outside the actor instance, so that if protoactor
		// ever restarts the actor, the new incarnation keeps the balance.
		st := &account.Account{}
		*st, _ = account.New(cfg.InitialBalance)
		props := actor.PropsFromProducer(
			func() actor.Actor { return newAccountActor(system, st, cfg.hook) },
			actor.WithDispatcher(dispatcher),
		)
		b.pids[i] = system.Root.Spawn(props)
	}
	return b, nil
}

// Len returns the number of accounts.
func (b *Bank) Len() int { return len(b.pids) }

// Has reports whether id names an account of the bank.
func (b *Bank) Has(id int64) bool { return id >= 1 && id <= int64(len(b.pids)) }

// Do applies req to account id and returns the account's answer. Errors are
// ErrNotFound, ErrTimeout, ErrInternal, ErrClosed or one of package
// account's; they wrap nothing else, so callers compare with errors.Is.
func (b *Bank) Do(id int64, req Request) (Reply, error) {
	return b.DoContext(context.Background(), id, req)
}

// DoContext is Do for a caller that may go away: when ctx ends before the
// actor took the call up (for a waiting lock: before it was granted), the
// call is abandoned, never applied, and DoContext returns ctx's error.
func (b *Bank) DoContext(ctx context.Context, id int64, req Request) (Reply, error) {
	if !b.Has(id) {
		return Reply{}, ErrNotFound
	}
	if b.closed.Load() {
		return Reply{}, ErrClosed
	}
	c := getCall()
	c.req = req
	b.system.Root.Send(b.pids[id-1], c)

	timeout := b.timeout
	if req.Op == OpLock && req.Wait > 0 {
		timeout += req.Wait // the actor answers a waiter when its wait ends
	}
	t := getTimer(timeout)
	err := ErrTimeout
	select {
	case r := <-c.reply:
		putTimer(t)
		putCall(c)
		return r.Reply, r.err
	case <-t.C:
	case <-ctx.Done():
		err = ctx.Err()
	}
	putTimer(t)
	if c.state.CompareAndSwap(pending, abandoned) {
		// The actor will skip the call when it reaches it. It still holds a
		// pointer to it, so the call must not go back to the pool.
		return Reply{}, err
	}
	// The actor took the call up just as we gave up: its answer is on the
	// way and tells the caller what really happened.
	r := <-c.reply
	putCall(c)
	return r.Reply, r.err
}

// Close stops every actor. Calls made afterwards fail with ErrClosed.
func (b *Bank) Close() {
	if b.closed.Swap(true) {
		return
	}
	for _, pid := range b.pids {
		b.system.Root.Stop(pid)
	}
	b.system.Shutdown()
}

// accountActor serializes the requests for one account. It owns the
// timers of the account's leases and waits, which come back to it as
// messages, so the rules never see a clock of their own.
type accountActor struct {
	acct    *account.Account
	hook    func(Request)
	system  *actor.ActorSystem
	timers  *scheduler.TimerScheduler
	waiting map[uint64]waiting // queued lock requests by ticket
	ticket  uint64
	lease   scheduler.CancelFunc // the lease timer of the grant in force
}

// waiting is a queued lock request.
type waiting struct {
	call   *call
	cancel scheduler.CancelFunc // its wait timer
}

// Timer messages. They name the grant or waiter they were armed for, so a
// late one (the grant was released, the waiter granted) changes nothing.
type (
	leaseEnded struct{ fence uint64 }
	waitEnded  struct{ ticket uint64 }
)

func newAccountActor(system *actor.ActorSystem, acct *account.Account, hook func(Request)) *accountActor {
	return &accountActor{acct: acct, hook: hook, system: system, timers: scheduler.NewTimerScheduler(system.Root), waiting: make(map[uint64]waiting)}
}

// Receive implements actor.Actor.
func (a *accountActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *call:
		a.receiveCall(ctx.Self(), m)
	case leaseEnded:
		if expired, next, granted := a.acct.Expire(m.fence, time.Now()); expired {
			a.lease = nil
			if granted {
				a.passOn(ctx.Self(), next)
			}
		}
	case waitEnded:
		if a.acct.Abandon(m.ticket) {
			w := a.waiting[m.ticket]
			delete(a.waiting, m.ticket)
			if w.call.state.CompareAndSwap(pending, claimed) {
				w.call.reply <- a.result(account.ErrLocked)
			}
		}
	}
}

func (a *accountActor) receiveCall(self *actor.PID, c *call) {
	if c.req.Op == OpLock && c.req.Wait > 0 {
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
	g, queued, err := a.acct.Enqueue(c.req.Holder, a.ticket, c.req.TTL, time.Now())
	switch {
	case err != nil:
		if c.state.CompareAndSwap(pending, claimed) {
			c.reply <- a.result(err)
		}
	case queued:
		ticket := a.ticket
		cancel := a.timers.SendOnce(c.req.Wait, self, waitEnded{ticket})
		a.waiting[ticket] = waiting{call: c, cancel: cancel}
	default:
		g.Ticket = a.ticket
		a.waiting[g.Ticket] = waiting{call: c}
		a.passOn(self, g)
	}
}

// passOn delivers a grant to the queued request it names. When that
// request's caller has given up, the grant is released at once and the
// lock passes on to the next waiter.
func (a *accountActor) passOn(self *actor.PID, g account.Grant) {
	for {
		w := a.waiting[g.Ticket]
		delete(a.waiting, g.Ticket)
		if w.cancel != nil {
			w.cancel()
		}
		if w.call != nil && w.call.state.CompareAndSwap(pending, claimed) {
			a.armLease(self, g)
			w.call.reply <- a.result(nil)
			return
		}
		next, granted, err := a.acct.Unlock(g.Holder, g.Fence, time.Now())
		if err != nil || !granted {
			a.disarmLease()
			return
		}
		g = next
	}
}

// armLease starts the timer that ends grant g's lease, replacing the
// timer of an earlier end.
func (a *accountActor) armLease(self *actor.PID, g account.Grant) {
	a.disarmLease()
	if !g.Expires.IsZero() {
		a.lease = a.timers.SendOnce(time.Until(g.Expires), self, leaseEnded{g.Fence})
	}
}

func (a *accountActor) disarmLease() {
	if a.lease != nil {
		a.lease()
		a.lease = nil
	}
}

// result describes the account after an operation that ended with err.
func (a *accountActor) result(err error) result {
	return result{Reply{
		Balance: a.acct.Balance(),
		Holder:  a.acct.Holder(),
		Fence:   a.acct.Fence(),
		Expires: a.acct.Expires(),
		Waiting: a.acct.Waiting(),
	}, err}
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
		err = a.acct.Write(req.Holder, req.Fence, req.Value)
	case OpLock:
		var g account.Grant
		if g, err = a.acct.Lock(req.Holder, req.Fence, req.TTL, time.Now()); err == nil {
			a.armLease(self, g)
		}
	case OpUnlock:
		held := a.acct.Holder() != ""
		var next account.Grant
		var granted bool
		next, granted, err = a.acct.Unlock(req.Holder, req.Fence, time.Now())
		switch {
		case err != nil:
		case granted:
			a.passOn(self, next)
		case held:
			a.disarmLease()
		}
	case opPanic:
		panic("account actor: panic requested by a test")
	default:
		err = fmt.Errorf("actors: unknown operation %v", req.Op)
	}
	return a.result(err)
}

// Call states: the caller and the actor race to move a call out of pending.
const (
	pending int32 = iota
	claimed
	abandoned
)

type result struct {
	Reply
	err error
}

// call is the message sent to an account actor. It is pooled together with
// its reply channel; a call whose caller gave up is never reused, so a late
// answer can never reach the next user of the channel.
type call struct {
	req   Request
	state atomic.Int32
	reply chan result
}

var callPool = sync.Pool{New: func() any { return &call{reply: make(chan result, 1)} }}

func getCall() *call {
	c := callPool.Get().(*call)
	c.state.Store(pending)
	return c
}

func putCall(c *call) {
	c.req = Request{}
	callPool.Put(c)
}

var timerPool sync.Pool

// getTimer returns a running timer. Since Go 1.23 a stopped or reset timer
// never delivers a stale tick, so pooled timers are safe to reuse.
func getTimer(d time.Duration) *time.Timer {
	if t, ok := timerPool.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func putTimer(t *time.Timer) {
	t.Stop()
	timerPool.Put(t)
}
