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
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/store"
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
	// ErrStore answers a write the store could not make durable; it was not
	// applied. The store's own error is wrapped beside it.
	ErrStore = errors.New("storage unavailable")
)

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
	// Store, when set, makes every write durable before it is
	// acknowledged, and holds the balances New starts from. Nil keeps
	// balances in memory only.
	Store Store
	// Logger receives protoactor-go's own logs. Nil discards them: by
	// default protoactor logs in colour to stderr.
	Logger *slog.Logger

	// Observer, when set, receives lock hold times, lease expiries and
	// store commit latencies.
	Observer Observer

	// Overdraft lets writes that ask for it (Request.Overdraft) leave a
	// balance negative, and lets the store hold negative balances at start:
	// the original bank's rules, for its business servers. Without it New
	// refuses a store holding a negative balance.
	Overdraft bool

	// TracerProvider, when set, makes Apply record its phases (each
	// account's pin, the store commit, each account's commit) as child
	// spans of the span in its context, if that one is recording. Nil: no
	// spans, at no cost.
	TracerProvider trace.TracerProvider

	// DeadlockDetection runs a detector (see Deadlocks) over the waits of
	// the lock requests that ask for it (Request.Detect): a cycle of
	// waits is broken at once by refusing its youngest transaction with
	// account.ErrDeadlock. Off, such requests simply wait. It also lets
	// a wound-wait request that takes a lock abort the wounded
	// transaction's pending wait elsewhere (account.ErrWounded).
	DeadlockDetection bool

	// EarlyLockRelease releases an Apply's locks as soon as its writes
	// are ordered in the store's log, before they are durable, when the
	// Store can order commits (an OrderedCommitter: store.Pebble). Apply
	// still returns only once they are durable, and no answer shows a
	// balance before it is (see Request.BeforeDurable): a hot account
	// then holds its lock for the commit's trip, not for its fsync.
	// Without it, or with another store, locks are released after the
	// fsync.
	EarlyLockRelease bool

	// hook, when set, runs in the actor before each request; tests use it
	// to hold an actor busy.
	hook func(Request)
}

// Observer receives the bank's measurements. Its methods are called from
// the actors and must be cheap and safe for concurrent use.
type Observer interface {
	// LockHeld reports a lock grant that ended (released, passed on or
	// expired) after being in force for d.
	LockHeld(d time.Duration)
	// LeaseExpired reports a grant ended by its lease running out.
	LeaseExpired()
	// StoreCommit reports a durable store commit that took d.
	StoreCommit(d time.Duration)
}

// Bank is a fixed set of account actors addressed by account number.
// It is safe for concurrent use.
type Bank struct {
	store     Store
	obs       Observer
	overdraft bool
	system    *actor.ActorSystem
	pids      []*actor.PID // pids[i] serves account i+1: a slice index is ~40x cheaper than the process registry
	timeout   time.Duration
	closed    atomic.Bool
	// ops[i] counts the operations asked of account i+1, for observers
	// that rank accounts by heat: one atomic add per call, read only
	// when someone looks.
	ops    []atomic.Uint64
	tracer trace.Tracer // nil: Apply is not traced
	det    *Deadlocks   // nil: no deadlock detection
	// ordered, when set, orders Apply's commits before they are durable
	// (Config.EarlyLockRelease).
	ordered OrderedCommitter
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
	balances, epoch, err := load(cfg)
	if err != nil {
		return nil, err
	}
	b := &Bank{system: system, pids: make([]*actor.PID, cfg.Accounts), ops: make([]atomic.Uint64, cfg.Accounts),
		timeout: cfg.Timeout, store: cfg.Store, obs: cfg.Observer, overdraft: cfg.Overdraft}
	if cfg.TracerProvider != nil {
		b.tracer = cfg.TracerProvider.Tracer(tracerScope)
	}
	if cfg.DeadlockDetection {
		b.det = NewDeadlocks(cfg.Observer)
	}
	if oc, ok := cfg.Store.(OrderedCommitter); ok && cfg.EarlyLockRelease {
		b.ordered = oc
	}
	for i := range b.pids {
		// The state lives outside the actor instance, so that if protoactor
		// ever restarts the actor, the new incarnation keeps the balance.
		// Fences start at the epoch's base so that they keep growing across
		// restarts without a durable write per grant.
		// load refused a negative balance unless cfg.Overdraft.
		st := &account.Account{}
		*st = account.RestoreOverdrawn(balances[i], epoch<<32)
		id := int64(i + 1)
		props := actor.PropsFromProducer(
			func() actor.Actor {
				a := newAccountActor(system, id, st, cfg.Store, cfg.hook)
				a.obs = cfg.Observer
				a.overdraft = cfg.Overdraft
				a.det = b.det
				return a
			},
			actor.WithDispatcher(dispatcher),
		)
		b.pids[i] = system.Root.Spawn(props)
	}
	return b, nil
}

// load returns the balances of accounts 1..cfg.Accounts and the epoch:
// from the store when there is one, creating the accounts it lacks
// durably, or the initial balance.
func load(cfg Config) (balances []int64, epoch uint64, err error) {
	balances = make([]int64, cfg.Accounts)
	for i := range balances {
		balances[i] = cfg.InitialBalance
	}
	if cfg.Store == nil {
		return balances, 0, nil
	}
	saved, err := cfg.Store.Accounts()
	if err != nil {
		return nil, 0, fmt.Errorf("actors: loading accounts: %w", err)
	}
	var missing []store.Write
	for id, balance := range saved {
		if id < 1 || id > int64(cfg.Accounts) {
			return nil, 0, fmt.Errorf("actors: the store holds account %d but the bank has accounts 1..%d: "+
				"start with at least that many accounts (removing accounts would lose their money)", id, cfg.Accounts)
		}
		if balance < 0 && !cfg.Overdraft {
			return nil, 0, fmt.Errorf("actors: the store holds a negative balance (%d) for account %d, which only a bank "+
				"that allows overdrafts writes (dataserver --allow-client-tokens): start it that way", balance, id)
		}
		balances[id-1] = balance
	}
	for i := range balances {
		if _, ok := saved[int64(i+1)]; !ok {
			missing = append(missing, store.Write{ID: int64(i + 1), Balance: cfg.InitialBalance})
		}
	}
	if len(missing) > 0 {
		if err := cfg.Store.Commit(missing, nil); err != nil {
			return nil, 0, fmt.Errorf("actors: creating accounts: %w", err)
		}
	}
	if epoch, err = cfg.Store.NextEpoch(); err != nil {
		return nil, 0, fmt.Errorf("actors: %w", err)
	}
	if epoch >= 1<<31 {
		return nil, 0, errors.New("actors: fence epochs exhausted")
	}
	return balances, epoch, nil
}

// Overdraft reports whether writes may leave a balance negative when they
// ask for it (Config.Overdraft).
func (b *Bank) Overdraft() bool { return b.overdraft }

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
	if req.Op >= OpPin {
		return Reply{}, fmt.Errorf("actors: operation %v is internal", req.Op)
	}
	timeout := b.timeout
	if req.Op == OpLock && req.Wait > 0 {
		timeout += req.Wait // the actor answers a waiter when its wait ends
	}
	if b.Has(id) {
		b.ops[id-1].Add(1)
	}
	return b.do(ctx, id, req, timeout)
}

// Inspect returns account id's state — balance, lock holder, fence, lease
// end, queue length — read by its actor between two requests, so that it
// is consistent. It is meant for observers: it is not counted in Ops.
func (b *Bank) Inspect(ctx context.Context, id int64) (Reply, error) {
	return b.do(ctx, id, Request{Op: OpInspect}, b.timeout)
}

// Ops appends to dst the number of operations asked of each account so
// far (Do calls, and one per account of each Apply), accounts 1..Len in
// order. Observers rank accounts by how fast these grow.
func (b *Bank) Ops(dst []uint64) []uint64 {
	for i := range b.ops {
		dst = append(dst, b.ops[i].Load())
	}
	return dst
}

// do sends req to account id and waits for the answer, at most timeout
// unless timeout is 0: a call that must not be abandoned waits for good.
func (b *Bank) do(ctx context.Context, id int64, req Request, timeout time.Duration) (Reply, error) {
	if !b.Has(id) {
		return Reply{}, ErrNotFound
	}
	if b.closed.Load() {
		return Reply{}, ErrClosed
	}
	c := getCall()
	c.req = req
	b.system.Root.Send(b.pids[id-1], c)
	// With the synchronized dispatcher, an idle actor has run the call on
	// this goroutine already: take the answer without arming a timer (a
	// timer's reset and stop cost more than the rest of the call).
	if r, ok := c.answered(); ok {
		return answer(req, r)
	}
	if timeout == 0 {
		r, _ := c.await(context.Background(), nil)
		return answer(req, r)
	}
	t := getTimer(timeout)
	r, gaveUp := c.await(ctx, t.C)
	putTimer(t)
	if gaveUp != nil {
		return Reply{}, gaveUp
	}
	return answer(req, r)
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

// Apply sets several balances atomically and durably, on behalf of holder,
// who must hold every account's lock with the change's fence (see
// ApplyPhases). Errors are those of Do for the account that refused, or
// ErrStore.
func (b *Bank) Apply(ctx context.Context, holder string, changes []Change, unlock bool, rec *store.Record) error {
	return ApplyPhases(ctx, (*phases)(b), holder, changes, unlock, rec)
}

// phases is a Bank's side of ApplyPhases, traced (account.pin,
// store.commit, account.commit) when the bank has a tracer and ctx a
// recording span.
type phases Bank

func (p *phases) traced(ctx context.Context) bool {
	return p.tracer != nil && trace.SpanFromContext(ctx).IsRecording()
}

// Pin implements Phases.
func (p *phases) Pin(ctx context.Context, holder string, c Change) (uint64, error) {
	b := (*Bank)(p)
	if b.Has(c.ID) {
		b.ops[c.ID-1].Add(1)
	}
	var span trace.Span
	if p.traced(ctx) {
		span = b.startSpan(ctx, "account.pin", c.ID, c.Fence)
	}
	_, err := b.do(ctx, c.ID, Request{Op: OpPin, Holder: holder, Fence: c.Fence, Value: c.Balance}, b.timeout)
	if span != nil {
		endSpan(span, err)
	}
	return 0, err
}

// Unpin implements Phases. It waits for the actor however long it takes.
func (p *phases) Unpin(_ string, c Change) {
	_, _ = (*Bank)(p).do(context.Background(), c.ID, Request{Op: OpUnpin}, 0)
}

// storeWrites returns the store's form of the pinned writes.
func storeWrites(pinned []Pinned) []store.Write {
	writes := make([]store.Write, len(pinned))
	for i, c := range pinned {
		writes[i] = store.Write{ID: c.ID, Balance: c.Balance}
	}
	return writes
}

// CommitStore implements Phases; without a store there is nothing to do.
func (p *phases) CommitStore(ctx context.Context, pinned []Pinned, rec *store.Record) error {
	b := (*Bank)(p)
	if b.store == nil {
		return nil
	}
	writes := storeWrites(pinned)
	var span trace.Span
	if p.traced(ctx) {
		span = b.startStoreSpan(ctx, len(writes), rec != nil)
	}
	start := time.Now()
	err := b.store.Commit(writes, rec)
	if b.obs != nil {
		b.obs.StoreCommit(time.Since(start))
	}
	if span != nil {
		endSpan(span, err)
	}
	return err
}

// EarlyLockRelease reports whether Apply releases its locks before its
// writes are durable (Config.EarlyLockRelease over a store that can).
func (b *Bank) EarlyLockRelease() bool { return b.ordered != nil }

func (p *phases) ordersCommits() bool { return p.ordered != nil }

// commitStoreOrdered implements orderedPhases.
func (p *phases) commitStoreOrdered(ctx context.Context, pinned []Pinned, rec *store.Record) (*durability, error) {
	b := (*Bank)(p)
	writes := storeWrites(pinned)
	var span trace.Span
	if p.traced(ctx) {
		span = b.startStoreSpan(ctx, len(writes), rec != nil)
	}
	start := time.Now()
	sync, err := b.ordered.CommitOrdered(writes, rec)
	if err != nil {
		if span != nil {
			endSpan(span, err)
		}
		return nil, err
	}
	// The span and the observer time the commit until it is durable, as
	// CommitStore's do.
	return newDurability(func() error {
		err := sync()
		if b.obs != nil {
			b.obs.StoreCommit(time.Since(start))
		}
		if span != nil {
			endSpan(span, err)
		}
		return err
	}), nil
}

// commitBeforeDurable implements orderedPhases: Commit, with the account
// told which sync its new balance waits for (nil: none, it is durable).
func (p *phases) commitBeforeDurable(ctx context.Context, holder string, c Pinned, unlock bool, d *durability) error {
	b := (*Bank)(p)
	var span trace.Span
	if p.traced(ctx) {
		span = b.startSpan(ctx, "account.commit", c.ID, c.Fence)
	}
	_, err := b.do(context.Background(), c.ID, Request{Op: OpCommit, Holder: holder, Fence: c.Fence, Unlock: unlock, durable: d}, 0)
	if span != nil {
		endSpan(span, err)
	}
	if err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("actors: committing account %d: %w", c.ID, err)
	}
	return nil
}

// Commit implements Phases. The write is durable already, so the call
// cannot be abandoned; a bank closed meanwhile is no error (the write
// stands in the store).
func (p *phases) Commit(ctx context.Context, holder string, c Pinned, unlock bool) error {
	return p.commitBeforeDurable(ctx, holder, c, unlock, nil)
}
