package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store"
)

// Apply sets several balances atomically and durably on behalf of holder,
// as actors.Bank.Apply does (actors.ApplyPhases): it pins every account on
// its member, writes all of them to the shared store in one transaction
// conditional on the versions the pins returned, then commits each
// account. A member that dies after the store commit leaves its accounts
// pinned until their pin timeout, when they reload the committed balances
// from the store.
func (b *Bank) Apply(ctx context.Context, holder string, changes []actors.Change, unlock bool, rec *store.Record) error {
	err := actors.ApplyPhases(ctx, (*phases)(b), holder, changes, unlock, rec)
	if se := (*store.SupersededError)(nil); errors.As(err, &se) {
		// That account's activation is stale: retire it, so that the
		// next request reloads it from the store.
		b.retire(se.ID)
	}
	return err
}

// retire asks account id's activation to retire (it refuses the reads it
// holds, then stops) and returns once it has stopped, or after the call
// timeout: protoactor drops the messages that reach an actor while it
// stops, unanswered, so a request sent before then could be lost and
// time out. Once it has stopped, a request is a dead letter, which call
// sends again to the next activation.
func (b *Bank) retire(id int64) {
	inc := b.inc.Load()
	if inc == nil {
		return
	}
	pid := b.pid(inc, id)
	if pid == nil {
		return
	}
	if _, err := b.call(id, call{req: actors.Request{Op: opRetire}}, b.cfg.Timeout); err != nil {
		return
	}
	// A watch of the activation: its Terminated completes the future,
	// at once if it has stopped already. The second poison it sends is
	// dropped by the stopped actor.
	stopped := make(chan struct{})
	go func() {
		_ = inc.c.ActorSystem.Root.PoisonFuture(pid).Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(b.cfg.Timeout):
	}
	inc.forget(id, pid)
}

// phases is a member's side of actors.ApplyPhases.
type phases Bank

// Pin implements actors.Phases: the grain answers with the version its
// activation holds.
func (p *phases) Pin(ctx context.Context, holder string, c actors.Change) (uint64, error) {
	b := (*Bank)(p)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if b.Has(c.ID) {
		b.ops[c.ID-1].Add(1)
	}
	r, err := b.call(c.ID, call{req: actors.Request{Op: actors.OpPin, Holder: holder, Fence: c.Fence, Value: c.Balance}}, b.cfg.Timeout)
	return r.version, err
}

// Unpin implements actors.Phases. A pin it cannot reach ends with its
// pin timeout.
func (p *phases) Unpin(holder string, c actors.Change) {
	_, _ = (*Bank)(p).call(c.ID, call{req: actors.Request{Op: actors.OpUnpin, Holder: holder, Fence: c.Fence}}, p.cfg.Timeout)
}

// CommitStore implements actors.Phases: one transaction in the shared
// store, each write conditional on its pinned version.
func (p *phases) CommitStore(_ context.Context, pinned []actors.Pinned, rec *store.Record) error {
	writes := make([]store.VersionedWrite, len(pinned))
	for i, c := range pinned {
		writes[i] = store.VersionedWrite{ID: c.ID, Balance: c.Balance, Version: c.Version}
	}
	return p.cfg.Store.CommitVersioned(writes, rec)
}

// Commit implements actors.Phases. The write is durable already: a commit
// that does not arrive is made good by the grain's pin timeout, which
// reloads from the store, so it is logged, not returned.
func (p *phases) Commit(_ context.Context, holder string, c actors.Pinned, unlock bool) error {
	req := actors.Request{Op: actors.OpCommit, Holder: holder, Fence: c.Fence, Unlock: unlock}
	if _, err := (*Bank)(p).call(c.ID, call{req: req, version: c.Version + 1}, p.cfg.Timeout); err != nil {
		p.cfg.Logger.Warn("commit did not reach the account; it reloads from the store when its pin times out",
			"account", c.ID, "err", err)
	}
	return nil
}
