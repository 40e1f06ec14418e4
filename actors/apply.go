package actors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/bank/gobank/actors/store"
)

// Change is one account's part of an atomic Apply.
type Change struct {
	ID      int64
	Fence   uint64 // the holder's current grant on the account; required
	Balance int64  // the new balance
}

// ErrNoFence refuses an Apply change without a fence: an atomic write is
// allowed only under a lock grant in force.
var ErrNoFence = errors.New("a change needs the fence of the holder's grant")

// Pinned is a Change whose account has pinned it, with the version the
// store must find the account at (0 for a store without versions).
type Pinned struct {
	Change
	Version uint64
}

// Phases is what a two-phase Apply needs of a bank: pin, commit or unpin
// one account, and make pinned writes durable in one store batch. Bank
// implements it over its actors, cluster.Bank over its grains, so that
// both run the one ApplyPhases.
type Phases interface {
	// Pin checks and holds c's write on behalf of holder: until Commit
	// or Unpin the account's grant can neither end nor be written by
	// anyone else. It returns the version the store write is conditional on.
	Pin(ctx context.Context, holder string, c Change) (version uint64, err error)
	// Unpin drops a write Pin held, after a failure. It must not give
	// up: a pin left behind would block its account.
	Unpin(holder string, c Change)
	// CommitStore makes every pinned write durable together with rec, or
	// none of them.
	CommitStore(ctx context.Context, pinned []Pinned, rec *store.Record) error
	// Commit applies a durable write to its account, and releases the
	// holder's lock when unlock is set. The write is durable already:
	// an error here is one the caller must hear of, not a refusal.
	Commit(ctx context.Context, holder string, p Pinned, unlock bool) error
}

// ApplyPhases sets several balances atomically and durably on behalf of
// holder, who must hold every account's lock with the change's fence: it
// pins every account in the order of their numbers (so that two Applies
// never wait on each other crosswise), makes all the writes durable in
// one store batch with rec (an idempotency record, or nil), then commits
// each account — releasing the locks when unlock is set. A refusal or a
// store failure (ErrStore) changes nothing: every pin taken is dropped.
// A store failure that wraps store.ErrOutcomeUnknown may have made the
// writes durable: the pins are kept, for the bank to settle from the store
// (only a store over the network returns it, and only the cluster's grains,
// which time their pins out, use one).
func ApplyPhases(ctx context.Context, p Phases, holder string, changes []Change, unlock bool, rec *store.Record) error {
	if len(changes) == 0 {
		return errors.New("actors: nothing to apply")
	}
	pinned := make([]Pinned, len(changes))
	for i, c := range changes {
		pinned[i].Change = c
	}
	slices.SortFunc(pinned, func(x, y Pinned) int { return cmp.Compare(x.ID, y.ID) })
	for i, c := range pinned {
		if i > 0 && c.ID == pinned[i-1].ID {
			return fmt.Errorf("actors: account %d changed twice", c.ID)
		}
		if c.Fence == 0 {
			return ErrNoFence
		}
	}
	for i := range pinned {
		v, err := p.Pin(ctx, holder, pinned[i].Change)
		if err != nil {
			unpin(p, holder, pinned[:i])
			return err
		}
		pinned[i].Version = v
	}
	if o, ok := p.(orderedPhases); ok && o.ordersCommits() {
		return commitOrdered(ctx, o, holder, pinned, unlock, rec)
	}
	if err := p.CommitStore(ctx, pinned, rec); err != nil {
		// Writes that may be durable stay pinned: an unpin would let the
		// accounts answer their old balances, which the store may no
		// longer hold, until the bank settles them from the store (a
		// cluster grain's pin timeout reloads it).
		if !errors.Is(err, store.ErrOutcomeUnknown) {
			unpin(p, holder, pinned)
		}
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	for _, c := range pinned {
		if err := p.Commit(ctx, holder, c, unlock); err != nil {
			return err
		}
	}
	return nil
}

func unpin(p Phases, holder string, pinned []Pinned) {
	for _, c := range pinned {
		p.Unpin(holder, c.Change)
	}
}

// orderedPhases is a Phases whose store can order a commit before it is
// durable (a Bank with Config.EarlyLockRelease over an OrderedCommitter).
type orderedPhases interface {
	Phases
	ordersCommits() bool
	// commitStoreOrdered places the pinned writes (and rec) in the
	// store's log and returns the sync to wait for.
	commitStoreOrdered(ctx context.Context, pinned []Pinned, rec *store.Record) (*durability, error)
	// commitBeforeDurable is Commit of a write that d will make durable.
	commitBeforeDurable(ctx context.Context, holder string, p Pinned, unlock bool, d *durability) error
}

// commitOrdered is the end of ApplyPhases with early lock release: the
// writes are ordered in the store's log, applied to their accounts and
// the locks released (the next holders may go on at once), and only then
// is the sync awaited, so that Apply — a commit's acknowledgement —
// still answers only what is durable. Meanwhile the accounts answer their
// new balances only once durable (see waitsForDurable). A sync that fails
// leaves writes that were applied and may be erased by a crash: that is
// ErrStore with store.ErrOutcomeUnknown, and the accounts keep refusing
// answers that would show them.
func commitOrdered(ctx context.Context, o orderedPhases, holder string, pinned []Pinned, unlock bool, rec *store.Record) error {
	d, err := o.commitStoreOrdered(ctx, pinned, rec)
	if err != nil {
		unpin(o, holder, pinned) // nothing is in the log
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	var commitErr error
	for _, c := range pinned {
		if err := o.commitBeforeDurable(ctx, holder, c, unlock, d); err != nil && commitErr == nil {
			commitErr = err
		}
	}
	if err := d.finish(); err != nil {
		return fmt.Errorf("%w: %w: %w", ErrStore, store.ErrOutcomeUnknown, err)
	}
	return commitErr
}
