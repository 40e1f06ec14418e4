package actors

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bank/gobank/actors/account"
)

// waitQueued polls account id until n lock requests are queued on it.
func waitQueued(t *testing.T, b *Bank, id int64, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := b.Do(id, Request{Op: OpRead})
		if err != nil {
			t.Fatal(err)
		}
		if r.Waiting == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters queued, want %d", r.Waiting, n)
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronization
	}
}

type outcome struct {
	who   string
	reply Reply
	err   error
}

// TestFIFOGrants queues five waiters behind a holder and checks they are
// granted in arrival order, each with a larger fence.
func TestFIFOGrants(t *testing.T) {
	for _, sync_ := range []bool{false, true} {
		b := newBank(t, Config{Accounts: 1, InitialBalance: 10, Synchronous: sync_})
		g, err := b.Do(1, Request{Op: OpLock, Holder: "H"})
		if err != nil || g.Fence != 1 {
			t.Fatalf("first grant %+v, %v", g, err)
		}
		granted := make(chan outcome)
		names := []string{"W1", "W2", "W3", "W4", "W5"}
		for i, who := range names {
			go func() {
				r, err := b.Do(1, Request{Op: OpLock, Holder: who, Wait: time.Minute})
				granted <- outcome{who, r, err}
			}()
			waitQueued(t, b, 1, i+1)
		}
		if _, err := b.Do(1, Request{Op: OpUnlock, Holder: "H", Fence: 1}); err != nil {
			t.Fatal(err)
		}
		var order []string
		for range names {
			o := <-granted
			if o.err != nil || o.reply.Holder != o.who || o.reply.Fence != uint64(len(order)+2) {
				t.Fatalf("grant to %s: %+v, %v", o.who, o.reply, o.err)
			}
			order = append(order, o.who)
			if _, err := b.Do(1, Request{Op: OpUnlock, Holder: o.who, Fence: o.reply.Fence}); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(order, names) {
			t.Fatalf("sync=%v: grant order %v, want %v", sync_, order, names)
		}
	}
}

// TestAbandonedWaiterSkipped: a waiter whose caller went away is passed
// over, and the lock goes to the next one.
func TestAbandonedWaiterSkipped(t *testing.T) {
	b := newBank(t, Config{Accounts: 1})
	if _, err := b.Do(1, Request{Op: OpLock, Holder: "H"}); err != nil {
		t.Fatal(err)
	}
	ctx, goAway := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		_, err := b.DoContext(ctx, 1, Request{Op: OpLock, Holder: "gone", Wait: time.Minute})
		gone <- err
	}()
	waitQueued(t, b, 1, 1)
	next := make(chan outcome, 1)
	go func() {
		r, err := b.Do(1, Request{Op: OpLock, Holder: "next", Wait: time.Minute})
		next <- outcome{"next", r, err}
	}()
	waitQueued(t, b, 1, 2)
	goAway()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoning waiter: %v", err)
	}
	if _, err := b.Do(1, Request{Op: OpUnlock, Holder: "H"}); err != nil {
		t.Fatal(err)
	}
	o := <-next
	if o.err != nil || o.reply.Holder != "next" || o.reply.Fence != 3 {
		// Fence 2 went to the abandoned waiter and was released at once.
		t.Fatalf("next waiter: %+v, %v; want granted with fence 3", o.reply, o.err)
	}
}

// TestWaitRunsOut: a waiter still queued when its wait ends is answered
// ErrLocked, and leaves the queue.
func TestWaitRunsOut(t *testing.T) {
	b := newBank(t, Config{Accounts: 1})
	if _, err := b.Do(1, Request{Op: OpLock, Holder: "H"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := b.Do(1, Request{Op: OpLock, Holder: "W", Wait: 30 * time.Millisecond})
	if !errors.Is(err, account.ErrLocked) {
		t.Fatalf("waiter: %v, want ErrLocked", err)
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Fatalf("answered after %v, before its wait ended", waited)
	}
	if r, _ := b.Do(1, Request{Op: OpRead}); r.Waiting != 0 || r.Holder != "H" {
		t.Fatalf("after the wait: %+v", r)
	}
}

// TestLeaseFreesLockAndFencesHolder: a holder that never unlocks loses the
// lock when its lease ends; the waiter gets it with a newer fence, and the
// old holder's fenced write is refused.
func TestLeaseFreesLockAndFencesHolder(t *testing.T) {
	b := newBank(t, Config{Accounts: 1, InitialBalance: 10})
	g, err := b.Do(1, Request{Op: OpLock, Holder: "old", TTL: 50 * time.Millisecond})
	if err != nil || g.Expires.IsZero() {
		t.Fatalf("grant %+v, %v: want a lease", g, err)
	}
	r, err := b.Do(1, Request{Op: OpLock, Holder: "new", Wait: time.Minute, TTL: time.Minute})
	if err != nil || r.Holder != "new" || r.Fence != g.Fence+1 {
		t.Fatalf("waiter: %+v, %v", r, err)
	}
	if time.Now().Before(g.Expires) {
		t.Fatalf("granted before the old lease ended (%v)", g.Expires)
	}
	if _, err := b.Do(1, Request{Op: OpWrite, Holder: "old", Fence: g.Fence, Value: 0}); !errors.Is(err, account.ErrStaleFence) {
		t.Fatalf("stale write: %v, want ErrStaleFence", err)
	}
	if _, err := b.Do(1, Request{Op: OpWrite, Holder: "new", Fence: r.Fence, Value: 20}); err != nil {
		t.Fatalf("current holder's write: %v", err)
	}
	if r, _ := b.Do(1, Request{Op: OpRead}); r.Balance != 20 {
		t.Fatalf("balance %d, want 20", r.Balance)
	}
}
