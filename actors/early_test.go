package actors

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bank/gobank/actors/store"
)

// gatedStore is a real pebble store whose ordered commits wait, before
// their sync, until the test opens their gate: it holds a commit in the
// window early lock release opens, ordered in the log and applied to its
// accounts, not yet on disk.
type gatedStore struct {
	*store.Pebble
	syncing chan gate // one per ordered commit, when its Apply awaits the sync
	commits atomic.Int32
	done    chan struct{} // closed when the test ends: every gate opens
}

// gate is one ordered commit waiting for its sync: the test sends the
// sync's outcome on open (nil: let it sync).
type gate struct{ open chan error }

func newGatedStore(t *testing.T) *gatedStore {
	g := &gatedStore{Pebble: openPebble(t, filepath.Join(t.TempDir(), "db")), syncing: make(chan gate, 16), done: make(chan struct{})}
	// Registered after openPebble's, so run before it: a test that failed
	// with a gate shut must not leave Close waiting for its sync.
	t.Cleanup(func() { close(g.done) })
	return g
}

func (g *gatedStore) Commit(w []store.Write, r *store.Record) error {
	g.commits.Add(1)
	return g.Pebble.Commit(w, r)
}

func (g *gatedStore) CommitOrdered(w []store.Write, r *store.Record) (func() error, error) {
	sync, err := g.Pebble.CommitOrdered(w, r)
	if err != nil {
		return nil, err
	}
	return func() error {
		gt := gate{open: make(chan error)}
		var err error
		select {
		case g.syncing <- gt:
			select {
			case err = <-gt.open:
			case <-g.done:
			}
		case <-g.done:
		}
		if err != nil {
			sync() // the real one must still be awaited once
			return err
		}
		return sync()
	}, nil
}

// within fails the test unless ch yields within a generous bound: what
// it waits for must not depend on a gate the test holds shut.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no answer in 5s", what)
		panic("unreachable")
	}
}

// notYet fails the test if ch yields while the gate is shut. A call that
// does not wait answers in microseconds, so 50 ms of silence is a clear
// verdict; a call that waits as it must never answers here at all.
func notYet[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s answered before the write it shows was durable: %+v", what, v)
	case <-time.After(50 * time.Millisecond):
	}
}

type answered struct {
	r   Reply
	err error
}

func doLater(b *Bank, id int64, req Request) <-chan answered {
	ch := make(chan answered, 1)
	go func() {
		r, err := b.Do(id, req)
		ch <- answered{r, err}
	}()
	return ch
}

func applyLater(b *Bank, holder string, changes []Change) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- b.Apply(context.Background(), holder, changes, true, nil) }()
	return ch
}

// TestEarlyLockRelease: an Apply's lock passes to the next holder while
// its write waits for its sync; the Apply, a read, a plain grant and an
// unlock answer only once it is durable; a grant that asks BeforeDurable
// answers at once, with the new balance, and its holder's own commit is
// ordered after the first.
func TestEarlyLockRelease(t *testing.T) {
	st := newGatedStore(t)
	b := newBank(t, Config{Accounts: 2, InitialBalance: 100, Store: st, EarlyLockRelease: true, Synchronous: true})
	if !b.EarlyLockRelease() {
		t.Fatal("EarlyLockRelease() = false over a pebble store")
	}
	created := st.commits.Load() // the accounts' creation
	g, err := b.Do(1, Request{Op: OpLock, Holder: "A"})
	if err != nil {
		t.Fatal(err)
	}
	applied := applyLater(b, "A", []Change{{ID: 1, Fence: g.Fence, Balance: 150}})
	first := within(t, st.syncing, "A's commit reaching its sync")

	// The lock is free, the balance new, the write not on disk.
	next := within(t, doLater(b, 1, Request{Op: OpLock, Holder: "B", BeforeDurable: true}), "B's early grant")
	if next.err != nil || next.r.Balance != 150 || next.r.Holder != "B" {
		t.Fatalf("B's grant = %+v, %v; want B holding balance 150", next.r, next.err)
	}
	read := doLater(b, 1, Request{Op: OpRead})
	plain := doLater(b, 2, Request{Op: OpLock, Holder: "C"}) // another account: clean, answers at once
	if a := within(t, plain, "a grant of an account with nothing pending"); a.err != nil {
		t.Fatal(a.err)
	}
	notYet(t, applied, "A's Apply")
	notYet(t, read, "a read")

	// B's commit goes after A's in the log, and waits too.
	appliedB := applyLater(b, "B", []Change{{ID: 1, Fence: next.r.Fence, Balance: 175}})
	second := within(t, st.syncing, "B's commit reaching its sync")
	lockC := doLater(b, 1, Request{Op: OpLock, Holder: "C"}) // a plain grant: waits for B's write
	notYet(t, lockC, "a plain grant")

	first.open <- nil
	if err := within(t, applied, "A's Apply"); err != nil {
		t.Fatalf("A's Apply: %v", err)
	}
	// The read was taken before B's write: it shows A's, now durable.
	if a := within(t, read, "the read"); a.err != nil || a.r.Balance != 150 {
		t.Fatalf("read = %d, %v; want 150", a.r.Balance, a.err)
	}
	readB := doLater(b, 1, Request{Op: OpRead})
	notYet(t, readB, "a read of B's write")
	notYet(t, appliedB, "B's Apply")
	second.open <- nil
	if err := within(t, appliedB, "B's Apply"); err != nil {
		t.Fatalf("B's Apply: %v", err)
	}
	if a := within(t, readB, "the read of B's write"); a.err != nil || a.r.Balance != 175 {
		t.Fatalf("read = %d, %v; want 175", a.r.Balance, a.err)
	}
	c := within(t, lockC, "C's grant")
	if c.err != nil || c.r.Balance != 175 {
		t.Fatalf("C's grant = %+v, %v; want balance 175", c.r, c.err)
	}
	if _, err := b.Do(1, Request{Op: OpUnlock, Holder: "C", Fence: c.r.Fence}); err != nil {
		t.Fatal(err)
	}
	if n := st.commits.Load() - created; n != 0 {
		t.Fatalf("%d commits went the unordered way", n)
	}

	// Both are on disk: a bank reopened from the same store starts there.
	b.Close()
	got, err := st.Accounts()
	if err != nil || got[1] != 175 {
		t.Fatalf("stored balance of account 1 = %d, %v; want 175", got[1], err)
	}
}

// TestEarlyLockReleaseUnlockWaits: a business server answers a refusal
// (insufficient funds, seen in its grant's balance) once its unlock has
// answered; the unlock therefore waits for the balance's write.
func TestEarlyLockReleaseUnlockWaits(t *testing.T) {
	st := newGatedStore(t)
	b := newBank(t, Config{Accounts: 1, InitialBalance: 100, Store: st, EarlyLockRelease: true, Synchronous: true})
	g, _ := b.Do(1, Request{Op: OpLock, Holder: "A"})
	applied := applyLater(b, "A", []Change{{ID: 1, Fence: g.Fence, Balance: 10}})
	gt := within(t, st.syncing, "A's commit reaching its sync")
	next := within(t, doLater(b, 1, Request{Op: OpLock, Holder: "B", BeforeDurable: true}), "B's early grant")
	if next.err != nil || next.r.Balance != 10 {
		t.Fatalf("B's grant = %+v, %v", next.r, next.err)
	}
	unlock := doLater(b, 1, Request{Op: OpUnlock, Holder: "B", Fence: next.r.Fence})
	notYet(t, unlock, "B's unlock")
	gt.open <- nil
	if a := within(t, unlock, "B's unlock"); a.err != nil {
		t.Fatal(a.err)
	}
	if err := within(t, applied, "A's Apply"); err != nil {
		t.Fatal(err)
	}
}

// TestEarlyLockReleaseSyncFails: a sync that fails leaves a write that is
// applied and may be erased: its Apply is told the outcome is unknown,
// and the account refuses every answer that would show the balance.
func TestEarlyLockReleaseSyncFails(t *testing.T) {
	st := newGatedStore(t)
	b := newBank(t, Config{Accounts: 1, InitialBalance: 100, Store: st, EarlyLockRelease: true, Synchronous: true})
	g, _ := b.Do(1, Request{Op: OpLock, Holder: "A"})
	applied := applyLater(b, "A", []Change{{ID: 1, Fence: g.Fence, Balance: 150}})
	read := doLater(b, 1, Request{Op: OpRead})
	gt := within(t, st.syncing, "A's commit reaching its sync")
	gt.open <- errDiskFull
	err := within(t, applied, "A's Apply")
	if !errors.Is(err, ErrStore) || !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("Apply = %v; want ErrStore and store.ErrOutcomeUnknown", err)
	}
	// The read raced the Apply: it saw the old balance (durable) or the
	// new one, which it must refuse.
	if a := within(t, read, "a read"); a.err == nil && a.r.Balance != 100 {
		t.Fatalf("read during a failed sync = %d, nil", a.r.Balance)
	}
	if _, err := b.Do(1, Request{Op: OpRead}); !errors.Is(err, ErrStore) {
		t.Fatalf("read after a failed sync: %v; want ErrStore", err)
	}
}

// TestEarlyLockReleaseOff: without the option, or over a store that
// cannot order commits, Apply syncs before it releases.
func TestEarlyLockReleaseOff(t *testing.T) {
	st := newGatedStore(t)
	b := newBank(t, Config{Accounts: 1, InitialBalance: 100, Store: st, Synchronous: true})
	if b.EarlyLockRelease() {
		t.Fatal("EarlyLockRelease() without the option")
	}
	created := st.commits.Load()
	g, _ := b.Do(1, Request{Op: OpLock, Holder: "A"})
	if err := b.Apply(context.Background(), "A", []Change{{ID: 1, Fence: g.Fence, Balance: 150}}, true, nil); err != nil {
		t.Fatal(err)
	}
	if n := st.commits.Load() - created; n != 1 {
		t.Fatalf("%d synced commits; want 1", n)
	}
	mem := newBank(t, Config{Accounts: 1, InitialBalance: 100, Store: store.NewMemory(), EarlyLockRelease: true})
	if mem.EarlyLockRelease() {
		t.Fatal("EarlyLockRelease() over a store that cannot order commits")
	}
}

// TestEarlyLockReleaseHotAccount: many holders take turns on one account
// over a real pebble store, every Apply acknowledged is on disk after the
// bank closes, and the balance is the sum of them.
func TestEarlyLockReleaseHotAccount(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	st := openPebble(t, dir)
	b := newBank(t, Config{Accounts: 2, InitialBalance: 0, Store: st, EarlyLockRelease: true, Synchronous: true})
	const workers, each = 8, 50
	var wg sync.WaitGroup
	var acked atomic.Int64
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := string(rune('A' + w))
			for range each {
				g, err := b.Do(1, Request{Op: OpLock, Holder: holder, Wait: 5 * time.Second, BeforeDurable: true})
				if err != nil {
					errs <- err
					return
				}
				if err := b.Apply(context.Background(), holder, []Change{{ID: 1, Fence: g.Fence, Balance: g.Balance + 1}}, true, nil); err != nil {
					errs <- err
					return
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b.Close()
	st.Close()
	st = openPebble(t, dir)
	got, err := st.Accounts()
	if err != nil || got[1] != acked.Load() || acked.Load() != workers*each {
		t.Fatalf("stored %d (%v) after %d acknowledged increments; want %d", got[1], err, acked.Load(), workers*each)
	}
}
