package actors

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestInspect reads an account's state as the live view does: consistent
// with the operations before it, not counted as an operation itself, and
// never accepted through Do.
func TestInspect(t *testing.T) {
	for _, sync := range []bool{false, true} {
		b := newBank(t, Config{Accounts: 3, InitialBalance: 100, Synchronous: sync})
		ctx := context.Background()
		if _, err := b.Do(2, Request{Op: OpLock, Holder: "A", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		// A waiter queued behind A shows as the queue's length.
		waited := make(chan error, 1)
		go func() {
			_, err := b.Do(2, Request{Op: OpLock, Holder: "B", Wait: 5 * time.Second})
			waited <- err
		}()
		deadline := time.Now().Add(5 * time.Second)
		var r Reply
		for {
			var err error
			if r, err = b.Inspect(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if r.Waiting == 1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond) // polling a condition, with a deadline
		}
		if r.Balance != 100 || r.Holder != "A" || r.Fence == 0 || r.Waiting != 1 || time.Until(r.Expires) <= 0 {
			t.Errorf("sync=%v: Inspect(2) = %+v, want balance 100, holder A, a fence, one waiter, a lease", sync, r)
		}
		if _, err := b.Do(2, Request{Op: OpUnlock, Holder: "A"}); err != nil {
			t.Fatal(err)
		}
		if err := <-waited; err != nil {
			t.Fatalf("the waiter: %v", err)
		}
		after, err := b.Inspect(ctx, 2)
		if err != nil || after.Holder != "B" || after.Waiting != 0 || after.Fence != r.Fence+1 {
			t.Errorf("sync=%v: after the unlock Inspect(2) = %+v, %v; want holder B with the next fence, nobody waiting", sync, after, err)
		}
		if err := b.Apply(ctx, "B", []Change{{ID: 2, Fence: after.Fence, Balance: 7}}, true, nil); err != nil {
			t.Fatal(err)
		}
		// Account 2: lock, lock (waiter), unlock, one Apply change = 4;
		// the Inspects count nothing.
		if got := b.Ops(nil); len(got) != 3 || got[0] != 0 || got[1] != 4 || got[2] != 0 {
			t.Errorf("sync=%v: Ops = %v, want [0 4 0]", sync, got)
		}
		if _, err := b.Inspect(ctx, 4); !errors.Is(err, ErrNotFound) {
			t.Errorf("Inspect(4): %v, want ErrNotFound", err)
		}
		if _, err := b.Do(1, Request{Op: OpInspect}); err == nil {
			t.Error("Do accepted OpInspect, an internal operation")
		}
	}
}
