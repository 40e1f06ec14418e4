package actors

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bank/gobank/actors/account"
)

// lockAs takes account id's lock for the transaction (holder, ts) under
// scheme, failing the test on a refusal.
func lockAs(t *testing.T, b *Bank, id int64, holder string, ts uint64, scheme account.Scheme) Reply {
	t.Helper()
	r, err := b.Do(id, Request{Op: OpLock, Holder: holder, TS: ts, Scheme: scheme, Wait: time.Minute, Detect: true})
	if err != nil {
		t.Fatalf("lock %d for %s/%d: %v", id, holder, ts, err)
	}
	return r
}

// lockLater asks for the lock in the background; its outcome arrives on
// the channel.
func lockLater(b *Bank, id int64, holder string, ts uint64, scheme account.Scheme) <-chan outcome {
	c := make(chan outcome, 1)
	go func() {
		r, err := b.Do(id, Request{Op: OpLock, Holder: holder, TS: ts, Scheme: scheme, Wait: time.Minute, Detect: true})
		c <- outcome{holder, r, err}
	}()
	return c
}

func TestWaitDieThroughActors(t *testing.T) {
	b := newBank(t, Config{Accounts: 1, InitialBalance: 10})
	g := lockAs(t, b, 1, "H", 10, account.WaitDie)
	if _, err := b.Do(1, Request{Op: OpLock, Holder: "Y", TS: 15, Scheme: account.WaitDie, Wait: time.Minute}); !errors.Is(err, account.ErrDied) {
		t.Fatalf("younger: %v, want ErrDied at once", err)
	}
	older := lockLater(b, 1, "O", 5, account.WaitDie)
	waitQueued(t, b, 1, 1)
	if _, err := b.Do(1, Request{Op: OpUnlock, Holder: "H", Fence: g.Fence}); err != nil {
		t.Fatal(err)
	}
	if o := <-older; o.err != nil || o.reply.Holder != "O" || o.reply.Fence != g.Fence+1 {
		t.Fatalf("older waiter: %+v, %v", o.reply, o.err)
	}
}

// TestWoundWaitThroughActors: an older request takes the lock from a
// younger holder, whose commit is then refused by its fence; a holder
// whose write is pinned is not wounded.
func TestWoundWaitThroughActors(t *testing.T) {
	b := newBank(t, Config{Accounts: 1, InitialBalance: 10})
	g := lockAs(t, b, 1, "Y", 10, account.WoundWait)
	o := lockAs(t, b, 1, "O", 5, account.WoundWait)
	if o.Holder != "O" || o.Fence != g.Fence+1 {
		t.Fatalf("older request: %+v, want the lock under a new fence", o)
	}
	err := b.Apply(t.Context(), "Y", []Change{{ID: 1, Balance: 99, Fence: g.Fence}}, true, nil)
	if !errors.Is(err, account.ErrStaleFence) {
		t.Fatalf("wounded holder's commit: %v, want ErrStaleFence", err)
	}
	// A younger request waits for the older holder.
	younger := lockLater(b, 1, "Y", 10, account.WoundWait)
	waitQueued(t, b, 1, 1)
	if err := b.Apply(t.Context(), "O", []Change{{ID: 1, Balance: 7, Fence: o.Fence}}, true, nil); err != nil {
		t.Fatal(err)
	}
	if r := <-younger; r.err != nil || r.reply.Holder != "Y" || r.reply.Balance != 7 {
		t.Fatalf("younger after the commit: %+v, %v", r.reply, r.err)
	}
}

// deadlockObserver records the deadlocks a detector broke.
type deadlockObserver struct {
	mu       sync.Mutex
	resolved []time.Duration
}

func (*deadlockObserver) LockHeld(time.Duration)    {}
func (*deadlockObserver) LeaseExpired()             {}
func (*deadlockObserver) StoreCommit(time.Duration) {}
func (o *deadlockObserver) Deadlock(resolved, _ time.Duration) {
	o.mu.Lock()
	o.resolved = append(o.resolved, resolved)
	o.mu.Unlock()
}

// TestDeadlockDetected: two transactions each hold the lock the other
// waits for; the younger is refused with ErrDeadlock at once (a wait that
// ran out would be ErrLocked, after a minute), the older is granted when
// the victim releases.
func TestDeadlockDetected(t *testing.T) {
	obs := &deadlockObserver{}
	b := newBank(t, Config{Accounts: 2, DeadlockDetection: true, Observer: obs})
	g1 := lockAs(t, b, 1, "T", 1, account.Wait)
	g2 := lockAs(t, b, 2, "T", 2, account.Wait)
	older := lockLater(b, 2, "T", 1, account.Wait)
	waitQueued(t, b, 2, 1)
	if _, err := b.Do(1, Request{Op: OpLock, Holder: "T", TS: 2, Wait: time.Minute, Detect: true}); !errors.Is(err, account.ErrDeadlock) {
		t.Fatalf("closing the cycle: %v, want ErrDeadlock", err)
	}
	if _, err := b.Do(2, Request{Op: OpUnlock, Holder: "T", Fence: g2.Fence}); err != nil {
		t.Fatal(err)
	}
	if o := <-older; o.err != nil || o.reply.Fence != g2.Fence+1 {
		t.Fatalf("the older transaction: %+v, %v", o.reply, o.err)
	}
	if _, err := b.Do(1, Request{Op: OpUnlock, Holder: "T", Fence: g1.Fence}); err != nil {
		t.Fatal(err)
	}
	if n := b.det.Len(); n != 0 {
		t.Errorf("%d waits left in the detector", n)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.resolved) != 1 {
		t.Fatalf("observer told of %d deadlocks, want 1", len(obs.resolved))
	}
	t.Logf("cycle broken %v after it closed", obs.resolved[0])
}

// TestDeadlockAfterTheHolderChanged: a waiter's edge follows its
// account's holder. T3 waits for account 1 behind T2, both behind T1;
// when T1 releases, T2 holds it, and T3 now waits for T2. T2 then waits
// for account 2, which T3 holds: a cycle the detector sees only if T3's
// edge was moved to the new holder.
func TestDeadlockAfterTheHolderChanged(t *testing.T) {
	b := newBank(t, Config{Accounts: 2, DeadlockDetection: true})
	g1 := lockAs(t, b, 1, "T", 1, account.Wait)
	lockAs(t, b, 2, "T", 3, account.Wait)
	t2 := lockLater(b, 1, "T", 2, account.Wait)
	waitQueued(t, b, 1, 1)
	t3 := lockLater(b, 1, "T", 3, account.Wait)
	waitQueued(t, b, 1, 2)
	if _, err := b.Do(1, Request{Op: OpUnlock, Holder: "T", Fence: g1.Fence}); err != nil {
		t.Fatal(err)
	}
	if o := <-t2; o.err != nil {
		t.Fatalf("T2's lock: %v", o.err)
	}
	cycle := lockLater(b, 2, "T", 2, account.Wait)
	if o := <-t3; !errors.Is(o.err, account.ErrDeadlock) {
		t.Fatalf("T3, the youngest of the cycle: %v, want ErrDeadlock", o.err)
	}
	select {
	case o := <-cycle:
		t.Fatalf("T2 answered %+v, %v while T3 still holds account 2", o.reply, o.err)
	default:
	}
}

// TestWithoutDetectionAWaitIsAWait: the same cycle on a bank without a
// detector is left to the waiters' timeouts (ErrLocked).
func TestWithoutDetectionAWaitIsAWait(t *testing.T) {
	b := newBank(t, Config{Accounts: 2})
	lockAs(t, b, 1, "T", 1, account.Wait)
	lockAs(t, b, 2, "T", 2, account.Wait)
	older := make(chan error, 1)
	go func() {
		_, err := b.Do(2, Request{Op: OpLock, Holder: "T", TS: 1, Wait: 50 * time.Millisecond, Detect: true})
		older <- err
	}()
	waitQueued(t, b, 2, 1)
	_, err := b.Do(1, Request{Op: OpLock, Holder: "T", TS: 2, Wait: 50 * time.Millisecond, Detect: true})
	if !errors.Is(err, account.ErrLocked) || !errors.Is(<-older, account.ErrLocked) {
		t.Fatalf("without a detector: %v, want ErrLocked (the wait ran out)", err)
	}
}

// TestVersionValidation: a lock naming the version read is granted only
// while nothing was written since.
func TestVersionValidation(t *testing.T) {
	b := newBank(t, Config{Accounts: 1, InitialBalance: 10})
	r, err := b.Do(1, Request{Op: OpRead})
	if err != nil || r.Version == 0 {
		t.Fatalf("read: %+v, %v", r, err)
	}
	if _, err := b.Do(1, Request{Op: OpWrite, Holder: "W", Value: 11}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Do(1, Request{Op: OpLock, Holder: "O", TS: 1, Version: r.Version}); !errors.Is(err, account.ErrChanged) {
		t.Fatalf("lock under the version read before a write: %v, want ErrChanged", err)
	}
	now, _ := b.Do(1, Request{Op: OpRead})
	if g, err := b.Do(1, Request{Op: OpLock, Holder: "O", TS: 1, Version: now.Version}); err != nil || g.Holder != "O" {
		t.Fatalf("lock under the current version: %+v, %v", g, err)
	}
}

// TestWoundAbortsTheWoundedWait: a wounded transaction waiting for
// another lock is refused there at once (ErrWounded), not left holding
// the rest until its commit finds the wound.
func TestWoundAbortsTheWoundedWait(t *testing.T) {
	b := newBank(t, Config{Accounts: 2, DeadlockDetection: true})
	lockAs(t, b, 1, "T", 10, account.WoundWait) // Y holds account 1
	lockAs(t, b, 2, "T", 1, account.WoundWait)  // O, the oldest, holds account 2
	// Y waits for O, without asking for deadlock detection: wound-wait
	// waits are seen all the same.
	y := make(chan outcome, 1)
	go func() {
		r, err := b.Do(2, Request{Op: OpLock, Holder: "T", TS: 10, Scheme: account.WoundWait, Wait: time.Minute})
		y <- outcome{"Y", r, err}
	}()
	waitQueued(t, b, 2, 1)
	x := lockAs(t, b, 1, "T", 5, account.WoundWait)
	if x.Fence != 2 {
		t.Fatalf("X's grant %+v: want account 1 taken from Y", x)
	}
	if o := <-y; !errors.Is(o.err, account.ErrWounded) {
		t.Fatalf("Y's wait while O still holds account 2: %+v, %v; want ErrWounded", o.reply, o.err)
	}
	if n := b.det.Len(); n != 0 {
		t.Errorf("%d waits left in the detector", n)
	}
}
