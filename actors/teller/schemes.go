package teller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/bank/gobank/actors/account"
)

// The concurrency-control modes beside ModeWait, ModeRetry and
// ModeFailFast (DBx1000's NO_WAIT), after Yu et al., "Staring into the
// Abyss" (VLDB 2014). Each names its transactions by a timestamp taken at
// their first attempt and kept across their retries, so that the oldest
// always wins in the end (no starvation); an aborted attempt applied
// nothing, releases every lock it took and is retried after a short
// jittered backoff until LockWait runs out (ErrLocked). They take no
// local locks: the accounts tell one transaction of this Teller from
// another by its timestamp. They need accounts that have schemes (this
// project's data server or the in-process accounts, not the original's).
const (
	// ModeWaitDie waits for a younger holder and dies (ErrDied, then
	// retries) behind an older one.
	ModeWaitDie LockMode = "wait-die"
	// ModeWoundWait takes the lock from a younger holder, whose commit is
	// then refused (ErrStaleFence, then it retries), unless the holder's
	// write is already pinned for commit; it waits for an older holder.
	ModeWoundWait LockMode = "wound-wait"
	// ModeDetect waits in FIFO order, and the accounts break a cycle of
	// waits at once by refusing its youngest transaction (ErrDeadlock,
	// then it retries), instead of leaving it to LockWait.
	ModeDetect LockMode = "detect"
	// ModeOCC reads without locks, computes, then validates: it takes the
	// locks without waiting, each granted only if its account's version is
	// still the one read (ErrChanged or ErrLocked: validation failed, it
	// reads again), and commits under them.
	ModeOCC LockMode = "occ"
)

// Modes lists every lock mode, in the order tables show them.
func Modes() []LockMode {
	return []LockMode{ModeFailFast, ModeWait, ModeRetry, ModeWaitDie, ModeWoundWait, ModeDetect, ModeOCC}
}

// transactional reports whether m names transactions by timestamp and
// retries the ones aborted.
func (m LockMode) transactional() bool {
	switch m {
	case ModeWaitDie, ModeWoundWait, ModeDetect, ModeOCC:
		return true
	}
	return false
}

// scheme returns the accounts' scheme for the lock requests of a
// transactional mode.
func (m LockMode) scheme() account.Scheme {
	switch m {
	case ModeWaitDie:
		return account.WaitDie
	case ModeWoundWait:
		return account.WoundWait
	case ModeDetect, ModeWait:
		return account.Wait
	}
	return account.NoWait // ModeOCC validates without waiting
}

// Retry backoff after an abort: full jitter, doubling from abortBackoffMin
// up to abortBackoffMax. Short: an abort means a conflict now, which the
// winner resolves within a commit's time.
const (
	abortBackoffMin = 100 * time.Microsecond
	abortBackoffMax = 10 * time.Millisecond
)

// Stats counts what a Teller's operations that write went through, since
// it was made.
type Stats struct {
	// Operations that ended: committed, refused by a rule (insufficient
	// funds, ...), or given up.
	Done uint64
	// Attempts made by them, Done + Aborts() once every operation has
	// ended: Attempts/Done is the wasted work.
	Attempts uint64
	// Aborts by cause: a wait-die request died; a wound-wait grant was
	// taken by an older transaction (its commit found the grant gone); a
	// deadlock's victim; an optimistic validation failed.
	Died, Wounded, Deadlocks, Validations uint64
	// Timeouts: operations given up at LockWait (ErrLocked).
	Timeouts uint64
}

// Add returns the counts of s and o together: several Tellers' (business
// servers') counts.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Done: s.Done + o.Done, Attempts: s.Attempts + o.Attempts,
		Died: s.Died + o.Died, Wounded: s.Wounded + o.Wounded, Deadlocks: s.Deadlocks + o.Deadlocks, Validations: s.Validations + o.Validations,
		Timeouts: s.Timeouts + o.Timeouts,
	}
}

// Aborts returns the sum of the aborts by cause.
func (s Stats) Aborts() uint64 { return s.Died + s.Wounded + s.Deadlocks + s.Validations }

type stats struct {
	done, attempts, died, wounded, deadlocks, validations, timeouts atomic.Uint64
}

// Stats returns the counts so far.
func (t *Teller) Stats() Stats {
	s := &t.stats
	return Stats{
		Done: s.done.Load(), Attempts: s.attempts.Load(),
		Died: s.died.Load(), Wounded: s.wounded.Load(), Deadlocks: s.deadlocks.Load(), Validations: s.validations.Load(),
		Timeouts: s.timeouts.Load(),
	}
}

// clock hands out transaction timestamps: the time in nanoseconds, made
// strictly increasing within the process's Teller, so that the order of
// first attempts is the order of age. Timestamps of different Tellers are
// comparable (one machine's clock; between machines, as close as their
// clocks), and ties are broken by holder.
type clock struct{ last atomic.Uint64 }

func (c *clock) next() uint64 {
	now := uint64(time.Now().UnixNano())
	for {
		last := c.last.Load()
		ts := max(now, last+1)
		if c.last.CompareAndSwap(last, ts) {
			return ts
		}
	}
}

// txn is one transaction's identity across its attempts.
type txn struct {
	ts       uint64    // 0: not transactional
	deadline time.Time // its locks' wait ends, for all attempts
}

// lockDeadline returns when an operation starting now stops waiting for
// locks: LockWait from now (now itself in fail-fast mode), or ctx's
// deadline if sooner.
func (t *Teller) lockDeadline(ctx context.Context) time.Time {
	deadline := time.Now()
	if t.cfg.Mode != ModeFailFast {
		deadline = deadline.Add(t.cfg.LockWait)
	}
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return deadline
}

// transact runs attempt as one transaction of the Teller's mode: once
// for the modes that are not transactional, and until it is not aborted
// otherwise, each retry under the same timestamp.
func (t *Teller) transact(ctx context.Context, attempt func(txn) error) error {
	if !t.cfg.Mode.transactional() {
		t.stats.attempts.Add(1)
		tx := txn{deadline: t.lockDeadline(ctx)}
		if t.cfg.Mode == ModeWait && !t.noTxn.Load() {
			tx.ts = t.clock.next() // see ModeWait
		}
		err := attempt(tx)
		t.ended(err)
		return err
	}
	tx := txn{ts: t.clock.next(), deadline: t.lockDeadline(ctx)}
	backoff := abortBackoffMin
	for n := 1; ; n++ {
		t.stats.attempts.Add(1)
		err := attempt(tx)
		cause := t.aborted(err)
		if cause == nil {
			t.ended(err)
			return err
		}
		cause.Add(1)
		left := time.Until(tx.deadline)
		if left <= 0 {
			t.gaveUp(cause)
			return fmt.Errorf("%w: gave up after %d attempts of a %s transaction (the last: %w)", ErrLocked, n, t.cfg.Mode, err)
		}
		timer := time.NewTimer(min(rand.N(backoff)+backoff/4, left))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			t.gaveUp(cause)
			return fmt.Errorf("%w: %w after %d attempts (the last: %w)", ErrLocked, ctx.Err(), n, err)
		}
		backoff = min(2*backoff, abortBackoffMax)
	}
}

// gaveUp counts an operation given up after an abort counted in cause:
// that abort becomes the timeout, so that Attempts stays Done + Aborts.
func (t *Teller) gaveUp(cause *atomic.Uint64) {
	cause.Add(^uint64(0))
	t.stats.done.Add(1)
	t.stats.timeouts.Add(1)
}

// ended counts an operation that ended with err, not aborted.
func (t *Teller) ended(err error) {
	t.stats.done.Add(1)
	if errors.Is(err, ErrLocked) {
		t.stats.timeouts.Add(1)
	}
}

// aborted returns the counter of the abort err is, or nil when err ends
// the transaction (success, a rule's refusal, a failure, a wait that ran
// out). An abort applied nothing.
func (t *Teller) aborted(err error) *atomic.Uint64 {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrDied):
		return &t.stats.died
	case errors.Is(err, ErrDeadlock):
		return &t.stats.deadlocks
	case errors.Is(err, ErrChanged):
		return &t.stats.validations
	case t.cfg.Mode == ModeOCC && errors.Is(err, ErrLocked):
		// Validation found the account locked by a transaction
		// committing: what was read may be written any moment.
		return &t.stats.validations
	case t.cfg.Mode == ModeWoundWait && errors.Is(err, ErrStaleFence):
		// The commit found a grant gone: an older transaction took it.
		// (A lease that ran out reads the same, and is retried too.)
		return &t.stats.wounded
	}
	return nil
}
