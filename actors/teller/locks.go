package teller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Lock retry backoff against a data server that fails fast: full jitter,
// doubling from lockBackoffMin up to lockBackoffMax, bounded by the lock
// deadline.
const (
	lockBackoffMin = 1 * time.Millisecond
	lockBackoffMax = 50 * time.Millisecond
)

// maxLockWait bounds the wait one lock attempt asks the data server for,
// staying under the data server's own bound (a minute by default); a longer
// lock deadline takes several attempts.
const maxLockWait = 10 * time.Second

// unlockAttempts bounds how often an unlock (or a rollback write) is tried
// when the data server fails transiently.
const unlockAttempts = 3

// localLocks serializes this process's own operations per account.
//
// It is needed because the data server's locks are re-entrant per id_negoc:
// two requests served at once by the same business server would both "take"
// the data server's lock, and the first to finish would release it under the
// second. A waiter gives up at a deadline, which is why this is a channel
// semaphore rather than a sync.Mutex. Entries are reference counted and
// removed when unused, so memory follows the accounts in use.
type localLocks struct {
	mu sync.Mutex
	m  map[int64]*localLock
}

type localLock struct {
	sem  chan struct{} // holds one token while the account is taken
	refs int           // holders and waiters; guarded by localLocks.mu
}

func newLocalLocks() *localLocks { return &localLocks{m: make(map[int64]*localLock)} }

// lock takes the account's local lock, waiting until deadline at most; a
// deadline already past makes it a single try.
func (k *localLocks) lock(id int64, deadline time.Time) bool {
	k.mu.Lock()
	l := k.m[id]
	if l == nil {
		l = &localLock{sem: make(chan struct{}, 1)}
		k.m[id] = l
	}
	l.refs++
	k.mu.Unlock()

	select {
	case l.sem <- struct{}{}:
		return true
	default:
	}
	wait := time.Until(deadline)
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case l.sem <- struct{}{}:
			return true
		case <-t.C:
		}
	}
	k.drop(id, l)
	return false
}

// unlock releases a lock taken by lock.
func (k *localLocks) unlock(id int64) {
	k.mu.Lock()
	l := k.m[id]
	k.mu.Unlock()
	<-l.sem
	k.drop(id, l)
}

func (k *localLocks) drop(id int64, l *localLock) {
	k.mu.Lock()
	l.refs--
	if l.refs == 0 {
		delete(k.m, id)
	}
	k.mu.Unlock()
}

// held is the set of accounts an operation has locked, in locking order.
type held struct {
	t      *Teller
	ctx    context.Context // the operation's: its span is the parent of the unlocks' spans
	ids    []int64
	grants []Grant
	local  []bool // local lock taken
	remote []bool // the accounts' lock taken, or possibly taken
	n      int
	// gone: a commit that releases the locks may have been applied, so an
	// unlock refused as stale (or held by another since) is no surprise.
	gone bool
	// small backs the slices of an operation of at most MaxLegs
	// accounts, so that a pooled held serves it with no allocation; a
	// batch's larger ones are allocated.
	small struct {
		ids           [MaxLegs]int64
		grants        [MaxLegs]Grant
		local, remote [MaxLegs]bool
	}
}

// reset makes h an empty held of n accounts of t's operation ctx.
func (h *held) reset(ctx context.Context, t *Teller, n int) {
	*h = held{t: t, ctx: ctx, n: n}
	if n <= MaxLegs {
		h.ids, h.grants, h.local, h.remote = h.small.ids[:n], h.small.grants[:n], h.small.local[:n], h.small.remote[:n]
		return
	}
	h.ids, h.grants, h.local, h.remote = make([]int64, n), make([]Grant, n), make([]bool, n), make([]bool, n)
}

// released records that the data server released every lock of h (a
// commit with unlock applied): release only drops the local locks.
func (h *held) released() {
	clear(h.remote)
}

// maybeReleased records that a commit releasing the locks may have been
// applied: release still unlocks each account under its grant's fence, and
// takes a refusal as the commit having released it.
func (h *held) maybeReleased() {
	h.gone = true
}

// index returns the position of account id in h.
func (h *held) index(id int64) int {
	for i := range h.n {
		if h.ids[i] == id {
			return i
		}
	}
	panic("teller: account not locked by this operation")
}

// fence returns the fence of the grant on account id (0: none).
func (h *held) fence(id int64) uint64 { return h.grants[h.index(id)].Fence }

// balance returns account id's balance: the one its lock grant carried,
// which cannot change while the lock is held, or else a fresh read (the
// original data server's grants are empty).
func (h *held) balance(ctx context.Context, id int64) (int64, error) {
	if g := h.grants[h.index(id)]; g.HasSaldo {
		return g.Saldo, nil
	}
	return h.t.acc.Read(ctx, id)
}

// heldPool recycles helds: one is as large as MaxLegs accounts need.
var heldPool = sync.Pool{New: func() any { return new(held) }}

// acquire locks the accounts of legs (distinct) in the configured
// order (Order: ascending account number, or the order given), locally and
// then on the accounts. A lock held by someone else is waited for as Mode
// says, all of them within one LockWait (see retryLocked). On failure
// everything taken so far is released before it returns. On success the
// caller must call release exactly once.
//
// Several accounts in ModeWait or ModeFailFast take their local locks in
// that order, then their accounts' locks with one Lock call, which takes
// them in the same order (a round trip less per extra account on a data
// server: the dearest part of a transfer after the durable commit).
// ModeRetry, and accounts that cannot lock several in one call, lock one
// account at a time, locally and then on the accounts, each before the
// next: a retry then retries only the lock not yet held.
func (t *Teller) acquire(ctx context.Context, ids []int64, tx txn) (*held, error) {
	h := heldPool.Get().(*held)
	h.reset(ctx, t, len(ids))
	copy(h.ids, ids)
	if t.cfg.Order != OrderRequest {
		slices.Sort(h.ids)
	}
	if tx.ts != 0 {
		err := h.lockTxn(ctx, tx)
		if t.cfg.Mode != ModeWait || !errors.Is(err, ErrUnsupported) {
			return h, err
		}
		// Nothing taken, h released: the accounts cannot tell this
		// Teller's operations apart, so they take local locks.
		if t.noTxn.CompareAndSwap(false, true) {
			t.logger.Info("the accounts have no transaction schemes (an older data server, or the original): "+
				"this business server's operations on one account take turns locally", "id_negoc", t.cfg.Holder)
		}
		return t.acquire(ctx, ids, txn{deadline: tx.deadline})
	}

	// In fail-fast mode the deadline is now: the local lock is tried once
	// and the accounts' lock is asked for without waiting.
	deadline := tx.deadline
	if h.n > 1 && t.cfg.Mode != ModeRetry && !t.noLockMany.Load() {
		for i := range h.n {
			if err := h.lockLocal(i, deadline); err != nil {
				return nil, err
			}
		}
		err := t.retryLocked(ctx, deadline, func(wait time.Duration) error {
			return t.acc.Lock(ctx, h.ids[:h.n], LockOptions{Wait: wait, BeforeDurable: true}, h.grants[:h.n])
		})
		switch {
		case err == nil:
			for i := range h.n {
				h.remote[i] = true
			}
			return h, nil
		case errors.Is(err, ErrUnsupported):
			// Nothing taken: one lock at a time below, under the local
			// locks already held.
			if t.noLockMany.CompareAndSwap(false, true) {
				t.logger.Info("the accounts cannot lock several in one call (an older data server, or the original): locking one account per call",
					"id_negoc", t.cfg.Holder)
			}
		default:
			// A refusal took nothing; a call that failed in transit may
			// have taken any of them: release them all to be sure
			// (unlocking a free account succeeds).
			for i := range h.n {
				h.remote[i] = !notApplied(err)
			}
			h.release()
			return nil, err
		}
	}
	for i := 0; i < h.n; i++ {
		if !h.local[i] {
			if err := h.lockLocal(i, deadline); err != nil {
				return nil, err
			}
		}
		err := t.retryLocked(ctx, deadline, func(wait time.Duration) error {
			return t.acc.Lock(ctx, h.ids[i:i+1], LockOptions{Wait: wait, BeforeDurable: true}, h.grants[i:i+1])
		})
		if err != nil {
			// A lock call that failed in transit may have been applied:
			// release it to be sure (unlocking a free account succeeds).
			h.remote[i] = !notApplied(err)
			h.release()
			return nil, err
		}
		h.remote[i] = true
	}
	return h, nil
}

// lockTxn takes every lock of h, in h's order, for transaction tx in one
// Lock, as the Teller's (transactional) mode says: no local locks, since
// the accounts tell tx from the Teller's other transactions. In ModeOCC it
// first reads every account with its version, and the Lock validates
// them without waiting. On failure h is released (and must not be used);
// the error is the accounts', an abort for transact to tell.
func (h *held) lockTxn(ctx context.Context, tx txn) error {
	t := h.t
	opt := LockOptions{Scheme: t.cfg.Mode.scheme(), TS: tx.ts, Detect: t.cfg.Mode == ModeDetect, BeforeDurable: true}
	if t.cfg.Mode == ModeOCC {
		vr, ok := t.acc.(VersionReader)
		if !ok {
			h.release()
			return fmt.Errorf("teller: lock mode %q needs accounts that read versions: %w", ModeOCC, ErrUnsupported)
		}
		var small [MaxLegs]uint64
		versions := small[:]
		if h.n > MaxLegs {
			versions = make([]uint64, h.n)
		}
		for i := range h.n {
			var err error
			if _, versions[i], err = vr.ReadVersion(ctx, h.ids[i]); err != nil {
				h.release()
				return err
			}
		}
		opt.Versions = versions[:h.n]
	} else {
		opt.Wait = max(min(time.Until(tx.deadline).Truncate(time.Millisecond), maxLockWait), 0)
	}
	var err error
	if t.cfg.Mode == ModeWait {
		// Not a transaction that aborts: a refusal means accounts that
		// fail fast instead of queueing, retried as ModeWait's are.
		err = t.retryLocked(ctx, tx.deadline, func(wait time.Duration) error {
			opt.Wait = wait
			return t.acc.Lock(ctx, h.ids[:h.n], opt, h.grants[:h.n])
		})
	} else {
		err = t.acc.Lock(ctx, h.ids[:h.n], opt, h.grants[:h.n])
	}
	switch {
	case err == nil:
		for i := range h.n {
			h.remote[i] = true
		}
		return nil
	case errors.Is(err, ErrUnsupported):
		h.release()
		return fmt.Errorf("teller: lock mode %q needs accounts with transaction schemes (this project's data server): %w", t.cfg.Mode, err)
	}
	// A call that failed in transit may have taken any of them.
	for i := range h.n {
		h.remote[i] = !notApplied(err)
	}
	h.release()
	return err
}

// lockLocal takes the local lock of h's i-th account before deadline; on
// failure it releases everything h holds and returns the error to answer.
func (h *held) lockLocal(i int, deadline time.Time) error {
	id := h.ids[i]
	if !h.t.locks.lock(id, deadline) {
		h.release()
		return fmt.Errorf("account %d busy with another operation of this teller: %w", id, ErrLocked)
	}
	h.local[i] = true
	return nil
}

// retryLocked makes lock attempts until one is not refused with ErrLocked
// or deadline passes, as Mode says. ModeWait asks the accounts to queue
// each attempt (FIFO) until the deadline (attempt's wait); accounts that
// fail fast instead (the original data server ignores the wait) are
// retried with jittered exponential backoff, which is all ModeRetry does.
// ModeFailFast (a deadline already past) makes a single fail-fast attempt.
func (t *Teller) retryLocked(ctx context.Context, deadline time.Time, attempt func(wait time.Duration) error) error {
	backoff := lockBackoffMin
	for {
		var wait time.Duration
		if t.cfg.Mode == ModeWait {
			wait = max(min(time.Until(deadline).Truncate(time.Millisecond), maxLockWait), 0)
		}
		err := attempt(wait)
		if err == nil || !errors.Is(err, ErrLocked) {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		sleep := min(rand.N(backoff)+time.Millisecond/4, left)
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		backoff = min(2*backoff, lockBackoffMax)
	}
}

// release unlocks everything h took, and recycles h: nothing may use it
// afterwards. It unlocks the accounts' locks first and then the
// local ones, in reverse order. Each unlock runs with a fresh timeout,
// independent of the operation's, and is retried on transient failure: the
// local lock is kept until the accounts' unlock is done, so that no other
// operation of this Teller can re-enter a lock that is about to be
// released.
func (h *held) release() {
	for i := h.n - 1; i >= 0; i-- {
		if h.remote[i] {
			h.t.unlockRemote(h.ctx, h.ids[i], h.grants[i].Fence, h.gone)
			h.remote[i] = false
		}
		if h.local[i] {
			h.t.locks.unlock(h.ids[i])
			h.local[i] = false
		}
	}
	if h.n > MaxLegs {
		return // a batch's: its slices are its own, not small's
	}
	*h = held{} // keeps nothing of the operation alive in the pool
	heldPool.Put(h)
}

// unlockRemote releases the accounts' lock on id (grant fence, 0 when
// unknown), retrying transient failures a few times. A lock that cannot be
// released is logged: it stays held until its lease runs out, or for good
// on accounts without leases. gone says that a commit which releases
// the lock may have been applied: a refusal (STALE_FENCE, or LOCKED_ACCOUNT
// by a new holder) then most likely means that it was, and is not logged.
// Of op, the operation's context, only its span is kept: the unlocks
// outlive its deadline.
func (t *Teller) unlockRemote(op context.Context, id int64, fence uint64, gone bool) {
	var err error
	for attempt := range unlockAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 10 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(op), t.cfg.UnlockTimeout)
		err = t.acc.Unlock(ctx, id, fence)
		cancel()
		if err == nil || refused(err) {
			break
		}
	}
	switch {
	case err == nil:
	case gone && (errors.Is(err, ErrStaleFence) || errors.Is(err, ErrLocked)):
		// Released by the commit whose answer was lost.
	case errors.Is(err, ErrStaleFence):
		// The lease ran out before the operation ended: nothing to release.
		t.logger.Warn("an account lock's lease ran out before its operation ended; consider a longer lock ttl",
			"conta", id, "id_negoc", t.cfg.Holder, "lock_ttl", t.cfg.LockTTL)
	default:
		t.logger.Error("could not release an account lock",
			"conta", id, "id_negoc", t.cfg.Holder, "err", err)
	}
}
