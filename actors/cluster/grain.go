package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/scheduler"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/store"
)

// grain is the activation of one account on one member. It claims the
// account from the shared store when it starts — which makes every write
// of an earlier activation, wherever it still runs, fail — and then runs
// the very account actor a single data server runs, with writes made
// conditional on the version it claimed.
type grain struct {
	cfg    *Config
	id     int64
	acct   *actors.Account // nil until claimed
	w      *versioned
	failed error // why the claim failed

	timers *scheduler.TimerScheduler
	pinEnd scheduler.CancelFunc // the pin timer of the pinned write

	// held are the reads that came while a write was pinned: answered
	// when the pin ends, not before. The pinned write may be durable in
	// the store already (its coordinator commits the store first, then the
	// grains), and another account of the same commit may show it: the
	// balance before the pin would then be a stale read.
	held []heldRead
}

// heldRead is a read waiting for a pin to end.
type heldRead struct {
	c      call
	sender *actor.PID
}

// pinExpired ends a pin whose Apply never came back: the coordinating
// member died between pinning and committing. Only the store knows
// whether the commit happened, so the activation retires and the next one
// reads the answer from the store.
type pinExpired struct{ version uint64 }

// versioned makes one account's writes conditional on the version its
// activation claimed, and notes when another activation superseded it.
type versioned struct {
	st         Store
	id         int64
	version    uint64
	superseded bool
}

// Commit implements actors.Committer.
func (v *versioned) Commit(writes []store.Write, rec *store.Record) error {
	if len(writes) != 1 || writes[0].ID != v.id {
		return fmt.Errorf("cluster: account %d: a grain writes only its own account", v.id)
	}
	w := [1]store.VersionedWrite{{ID: v.id, Balance: writes[0].Balance, Version: v.version}}
	err := v.st.CommitVersioned(w[:], rec)
	switch {
	case err == nil:
		v.version++
	case errors.Is(err, store.ErrSuperseded):
		v.superseded = true
	}
	return err
}

// Receive implements actor.Actor.
func (g *grain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *protocluster.ClusterInit:
		g.claim(ctx, m.Identity.Identity)
	case *wrapperspb.BytesValue:
		g.serve(ctx, m.Value)
	case pinExpired:
		if g.acct != nil && g.acct.State().Pinned() && g.w.version == m.version {
			g.cfg.Logger.Warn("pinned write never committed: the coordinating member is gone; reloading the account from the store",
				"account", g.id)
			g.reload(ctx)
		}
	default:
		if g.acct != nil {
			g.acct.Receive(ctx)
		}
	}
}

func (g *grain) claim(ctx actor.Context, identity string) {
	g.timers = scheduler.NewTimerScheduler(ctx.ActorSystem().Root) // timers fire on other goroutines: not ctx
	id, err := strconv.ParseInt(identity, 10, 64)
	if err != nil || id < 1 || id > int64(g.cfg.Accounts) {
		g.failed = actors.ErrNotFound
		return
	}
	g.id = id
	st, version, err := g.load()
	if err != nil {
		g.failed = err
		return
	}
	g.w = &versioned{st: g.cfg.Store, id: id, version: version}
	g.acct = actors.NewAccount(ctx.ActorSystem(), id, st, g.w, g.cfg.Observer)
	if g.cfg.deadlocks != nil {
		g.acct.DetectDeadlocks(g.cfg.deadlocks)
	}
}

// load claims the account from the store: its balance, and fences of an
// epoch above every earlier activation's.
func (g *grain) load() (account.Account, uint64, error) {
	c, err := g.cfg.Store.Claim(g.id, g.cfg.InitialBalance)
	if err == nil && c.Epoch >= 1<<31 {
		err = errors.New("fence epochs exhausted")
	}
	var st account.Account
	if err == nil {
		st, err = account.Restore(c.Balance, c.Epoch<<32)
	}
	if err != nil {
		g.cfg.Logger.Error("cannot activate account", "account", g.id, "err", err)
		return account.Account{}, 0, fmt.Errorf("%w: claiming account %d: %w", actors.ErrStore, g.id, err)
	}
	return st, c.Version, nil
}

// reload claims the account from the store again within this activation,
// after a pin whose coordinator never came back: only the store knows
// whether that commit happened. The queued lock requests are refused,
// the held reads answered with the store's balance. Stopping the
// activation instead, for the next one to claim the account, would lose
// the calls already in its mailbox: protoactor drops the messages a
// stopped actor still has queued without a dead-letter answer, and their
// callers would wait for their timeout (seen in CI, a read of a pinned
// account timing out after 5 s).
func (g *grain) reload(ctx actor.Context) {
	g.stopPinTimer()
	st, version, err := g.load()
	if err != nil {
		g.retire(ctx) // the next activation tries the store again
		return
	}
	g.acct.Reset(st, fmt.Errorf("%w: account %d was reloaded from the store", actors.ErrStore, g.id))
	g.w.version, g.w.superseded = version, false
	g.serveHeld(ctx)
}

func (g *grain) serve(ctx actor.Context, b []byte) {
	c, err := decodeCall(b)
	if err != nil {
		ctx.Respond(encodeReply(reply{err: err}))
		return
	}
	if g.acct == nil {
		ctx.Respond(encodeReply(reply{err: g.failed}))
		if !errors.Is(g.failed, actors.ErrNotFound) {
			ctx.Poison(ctx.Self()) // the next request tries the store again
		}
		return
	}
	st := g.acct.State()
	switch c.req.Op {
	case opRetire:
		ctx.Respond(encodeReply(reply{}))
		g.retire(ctx)
		return
	case actors.OpRead:
		if st.Pinned() {
			g.held = append(g.held, heldRead{c: c, sender: ctx.Sender()})
			return
		}
	case actors.OpCommit, actors.OpUnpin:
		// Only the Apply that pinned may end the pin: a late message from
		// an Apply that lost an earlier activation carries a fence of an
		// older epoch and must not commit someone else's write.
		if !st.Pinned() || st.Holder() != c.req.Holder || st.Fence() != c.req.Fence ||
			(c.req.Op == actors.OpCommit && c.version != g.w.version+1) {
			ctx.Respond(encodeReply(reply{err: account.ErrStaleFence}))
			return
		}
		g.stopPinTimer()
		if c.req.Op == actors.OpCommit {
			g.w.version = c.version // the coordinator wrote it to the store
		}
	}
	version := g.w.version
	sender := ctx.Sender()
	system := ctx.ActorSystem()
	deadline := time.Now().Add(c.timeout)
	g.acct.Serve(ctx.Self(), c.req, deadline, func(r actors.Reply, err error) {
		// A queued lock is answered from another goroutine: Send, not
		// Respond, which only the actor's own goroutine may call.
		system.Root.Send(sender, encodeReply(reply{rep: r, err: err, version: version}))
	})
	if c.req.Op == actors.OpPin && st.Pinned() {
		g.pinEnd = g.timers.SendOnce(g.cfg.PinTimeout, ctx.Self(), pinExpired{version})
	}
	if g.w.superseded {
		g.cfg.Logger.Warn("account claimed by another activation: retiring this one", "account", g.id)
		g.retire(ctx)
		return
	}
	if !st.Pinned() && len(g.held) > 0 {
		g.serveHeld(ctx)
	}
}

// serveHeld answers the reads held during a pin that has ended.
func (g *grain) serveHeld(ctx actor.Context) {
	held := g.held
	g.held = nil
	system := ctx.ActorSystem()
	for _, h := range held {
		sender, version := h.sender, g.w.version
		g.acct.Serve(ctx.Self(), h.c.req, time.Now().Add(h.c.timeout), func(r actors.Reply, err error) {
			system.Root.Send(sender, encodeReply(reply{rep: r, err: err, version: version}))
		})
	}
}

// retire stops this activation, so that the next request activates the
// account afresh from the store. The reads it held are refused (the
// caller may read again): their balance is the store's to tell.
func (g *grain) retire(ctx actor.Context) {
	for _, h := range g.held {
		err := fmt.Errorf("%w: account %d is being reloaded from the store", actors.ErrStore, g.id)
		ctx.ActorSystem().Root.Send(h.sender, encodeReply(reply{err: err}))
	}
	g.held = nil
	ctx.Poison(ctx.Self())
}

func (g *grain) stopPinTimer() {
	if g.pinEnd != nil {
		g.pinEnd()
		g.pinEnd = nil
	}
}

// logger returns l, or one that discards.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// workers runs grains' mailboxes on long-lived goroutines. protoactor's
// default dispatcher starts a goroutine per mailbox run, whose stack then
// grows by copying on every call (a profile of a local call showed ~28%
// of its CPU in newstack/copystack); the synchronized dispatcher that a
// single data server uses would run a grain on the goroutine that
// delivers its message, which for remote calls is the gRPC stream
// reader, stalling every other call from that member while a grain
// claims its account from the store.
type workers struct {
	runs chan func()
	done chan struct{} // closed by stop
}

// newWorkers starts n idle workers.
func newWorkers(n int) workers {
	w := workers{runs: make(chan func()), done: make(chan struct{})}
	for range n {
		go func() {
			for {
				select {
				case run := <-w.runs:
					run()
				case <-w.done:
					return
				}
			}
		}()
	}
	return w
}

// stop ends the workers once idle; later runs get goroutines of their own.
func (w workers) stop() { close(w.done) }

// Schedule implements actor.Dispatcher: an idle worker takes the run, or
// a new goroutine when all are busy, so that a slow grain never delays
// another.
func (w workers) Schedule(run func()) {
	select {
	case w.runs <- run:
	default:
		go run()
	}
}

// Throughput implements actor.Dispatcher: messages a mailbox run
// processes before it yields.
func (w workers) Throughput() int { return 300 }
