package teller

import (
	"context"
	"errors"
	"time"
)

// change is one account's part of an operation's write.
type change struct {
	conta int64
	old   int64 // the balance under the lock, before the operation
	saldo int64 // the new balance
}

// errReplayed stops an operation whose commit was answered with the record
// of its key: a duplicate of the operation was applied first. k.replay
// holds that record.
var errReplayed = errors.New("the idempotency key has a record already")

// write makes the new balances of changes durable and releases h's locks;
// the accounts are all locked by h.
//
// That is one Commit naming every account with its grant's fence, with
// unlock set, and, for a keyed operation, the success outcome k.body kept
// in the same durable batch: the accounts apply all the balances (and the
// record) or none, whenever this process dies. A commit refused or failed
// for sure (notApplied) changed nothing; one whose answer was lost may or
// may not have been applied, which ErrOutcomeUnknown reports: the locks are
// released by the caller's release all the same (an unlock refused as
// STALE_FENCE then means the commit released them). A keyed operation's
// retry finds out which from its record.
//
// Accounts that answer Commit with ErrUnsupported (the original data
// server) get writeLegacy instead, and so does a grant without a fence
// (the original's): both only for operations without a key, since such
// accounts keep no idempotency records either.
func (t *Teller) write(ctx context.Context, h *held, changes []change, k *keyed) error {
	fenced := true
	for _, c := range changes {
		fenced = fenced && h.fence(c.conta) != 0
	}
	if !fenced || t.noCommit.Load() {
		if k != nil {
			return ErrNoRecords
		}
		return t.writeLegacy(ctx, h, changes)
	}
	var cs [2]Change
	for i, c := range changes {
		cs[i] = Change{Conta: c.conta, Saldo: c.saldo, Fence: h.fence(c.conta)}
	}
	var rec *Record
	if k != nil {
		rec = &Record{Key: k.Key, Fingerprint: k.Fingerprint, Status: k.SuccessStatus, Body: k.body}
	}
	t.at("before-commit")
	replay, err := t.acc.Commit(ctx, cs[:len(changes)], true, rec)
	switch {
	case err == nil && replay != nil:
		// Nothing applied, and the locks are still ours: release unlocks.
		k.replay = replay
		return errReplayed
	case err == nil:
		h.released() // the commit released them
		t.at("after-commit")
		return nil
	case errors.Is(err, ErrUnsupported):
		if t.noCommit.CompareAndSwap(false, true) {
			t.logger.Warn("the accounts have no atomic commit (the original data server, or an older version): "+
				"writing one balance at a time, which is not atomic, and refusing idempotency keys", "id_negoc", t.cfg.Holder)
		}
		if k != nil {
			return ErrNoRecords
		}
		return t.writeLegacy(ctx, h, changes)
	case notApplied(err):
		return err
	}
	h.maybeReleased()
	if code, ok := CodeOf(err); ok && code == Internal {
		return err // a bug (an answer outside the contract), whose outcome is unknown as well
	}
	return &OutcomeUnknownError{Err: err}
}

// writeLegacy writes the balances one at a time, in order, each under its
// grant's fence (none on the original data server), for accounts without
// Commit. A write whose outcome is unknown, or that a later failure makes
// moot (the source of a transfer whose destination could not be written),
// is undone by writing the old balance back; a write-back that fails is
// logged with the balance to restore. One failure cannot be undone: when
// the leases run out between the two writes of a transfer, the source's
// write-back is refused as stale like the destination's write, and the
// debit stays. The caller releases the locks.
func (t *Teller) writeLegacy(ctx context.Context, h *held, changes []change) error {
	if t.writer == nil {
		return ErrUnsupported
	}
	// Which accounts may hold a new balance that must be undone if the
	// operation does not complete (error or panic).
	var dirty [2]bool
	defer func() {
		for i := len(changes) - 1; i >= 0; i-- {
			if dirty[i] {
				t.writeBack(h.ctx, changes[i].conta, changes[i].old, h.fence(changes[i].conta))
			}
		}
	}()
	t.at("before-commit")
	for i, c := range changes {
		if i > 0 {
			t.at("between-writes")
		}
		dirty[i] = true
		if err := t.writer.Write(ctx, c.conta, c.saldo, h.fence(c.conta)); err != nil {
			dirty[i] = !notApplied(err)
			return err
		}
	}
	dirty = [2]bool{}
	t.at("after-commit")
	return nil
}

// writeBack sets account id back to balance, under grant fence, after a
// failed or abandoned write by writeLegacy, with fresh timeouts and a few
// retries. Absolute writes make this safe whether or not the failed write
// was applied, and the fence makes the accounts refuse it if the lock was
// lost meanwhile (someone else may have written since). It reports whether
// the account is known to hold balance.
func (t *Teller) writeBack(op context.Context, id, balance int64, fence uint64) bool {
	var err error
	for attempt := range unlockAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 10 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(op), t.cfg.UnlockTimeout)
		err = t.writer.Write(ctx, id, balance, fence)
		cancel()
		if err == nil {
			return true
		}
		if refused(err) {
			break
		}
	}
	t.logger.Error("could not restore a balance: set it by hand",
		"conta", id, "saldo", balance, "id_negoc", t.cfg.Holder, "err", err)
	return false
}
