package actors

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bank/gobank/actors/account"
)

func newBank(t testing.TB, cfg Config) *Bank {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Accounts: -1}, {Accounts: 1, InitialBalance: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestOperations(t *testing.T) {
	for _, sync := range []bool{false, true} {
		b := newBank(t, Config{Accounts: 3, InitialBalance: 1000, Synchronous: sync})
		steps := []struct {
			id      int64
			req     Request
			err     error
			balance int64
			holder  string
		}{
			{1, Request{Op: OpRead}, nil, 1000, ""},
			{0, Request{Op: OpRead}, ErrNotFound, 0, ""},
			{4, Request{Op: OpRead}, ErrNotFound, 0, ""},
			{-1, Request{Op: OpLock, Holder: "A"}, ErrNotFound, 0, ""},
			{2, Request{Op: OpLock, Holder: "A"}, nil, 1000, "A"},
			{2, Request{Op: OpLock, Holder: "B"}, account.ErrLocked, 1000, "A"},
			{2, Request{Op: OpWrite, Holder: "B", Value: 5}, account.ErrLocked, 1000, "A"},
			{2, Request{Op: OpRead, Holder: "B"}, nil, 1000, "A"},
			{2, Request{Op: OpWrite, Holder: "A", Value: -5}, account.ErrNegativeBalance, 1000, "A"},
			{2, Request{Op: OpWrite, Holder: "A", Value: 5}, nil, 5, "A"},
			{2, Request{Op: OpUnlock, Holder: "A"}, nil, 5, ""},
			{2, Request{Op: OpLock, Holder: "B"}, nil, 5, "B"},
			{3, Request{Op: Op(200)}, nil, 1000, ""}, // unknown op: an error, checked below
		}
		for i, s := range steps {
			r, err := b.Do(s.id, s.req)
			if s.req.Op == Op(200) {
				if err == nil {
					t.Errorf("step %d: unknown op accepted", i)
				}
				continue
			}
			if !errors.Is(err, s.err) {
				t.Errorf("sync=%v step %d %+v: error %v, want %v", sync, i, s.req, err, s.err)
			}
			if r.Balance != s.balance || r.Holder != s.holder {
				t.Errorf("sync=%v step %d %+v: reply %+v, want balance %d holder %q", sync, i, s.req, r, s.balance, s.holder)
			}
		}
	}
}

// TestConcurrentIncrements has many goroutines lock, read, write and
// unlock the same accounts; no increment may be lost.
func TestConcurrentIncrements(t *testing.T) {
	for _, sync_ := range []bool{false, true} {
		b := newBank(t, Config{Accounts: 2, Synchronous: sync_})
		const workers, rounds = 16, 200
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				me := string(rune('a' + w))
				id := int64(1 + w%2)
				for range rounds {
					for {
						if _, err := b.Do(id, Request{Op: OpLock, Holder: me}); err == nil {
							break
						} else if !errors.Is(err, account.ErrLocked) {
							t.Error(err)
							return
						}
					}
					r, err := b.Do(id, Request{Op: OpRead})
					if err == nil {
						_, err = b.Do(id, Request{Op: OpWrite, Holder: me, Value: r.Balance + 1})
					}
					if _, uerr := b.Do(id, Request{Op: OpUnlock, Holder: me}); uerr != nil || err != nil {
						t.Error(err, uerr)
						return
					}
				}
			}()
		}
		wg.Wait()
		var total int64
		for id := int64(1); id <= 2; id++ {
			r, err := b.Do(id, Request{Op: OpRead})
			if err != nil {
				t.Fatal(err)
			}
			total += r.Balance
		}
		if total != workers*rounds {
			t.Fatalf("sync=%v: total %d after %d increments", sync_, total, workers*rounds)
		}
	}
}

// TestPanicKeepsBalanceAndAnswers checks that a panic inside an actor
// answers its caller at once with ErrInternal and loses nothing.
func TestPanicKeepsBalanceAndAnswers(t *testing.T) {
	b := newBank(t, Config{Accounts: 1, InitialBalance: 10, Timeout: time.Minute})
	if _, err := b.Do(1, Request{Op: OpLock, Holder: "A"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Do(1, Request{Op: OpWrite, Holder: "A", Value: 77}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.Do(1, Request{Op: opPanic})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInternal) {
			t.Fatalf("panicking call: error %v, want ErrInternal", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("panicking call left its caller waiting")
	}
	r, err := b.Do(1, Request{Op: OpRead})
	if err != nil || r.Balance != 77 || r.Holder != "A" {
		t.Fatalf("after panic: %+v, %v; want balance 77 held by A", r, err)
	}
}

// TestTimeoutAbandonsCall holds an actor busy past the caller's timeout:
// the caller gets ErrTimeout and the abandoned write is never applied.
func TestTimeoutAbandonsCall(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	cfg := Config{Accounts: 1, InitialBalance: 10, Timeout: 50 * time.Millisecond}
	cfg.hook = func(r Request) {
		if r.Op == OpLock && r.Holder == "blocker" {
			entered <- struct{}{}
			<-release
		}
	}
	b := newBank(t, cfg)
	blocked := make(chan error, 1)
	go func() {
		_, err := b.Do(1, Request{Op: OpLock, Holder: "blocker"})
		blocked <- err
	}()
	<-entered
	// The actor is busy: this write queues behind the blocker and times out.
	if _, err := b.Do(1, Request{Op: OpWrite, Holder: "blocker", Value: 99}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("write behind a busy actor: %v, want ErrTimeout", err)
	}
	close(release)
	// The actor took the lock call up before its caller's timeout, so the
	// caller waits for the true answer instead of reporting a timeout.
	if err := <-blocked; err != nil {
		t.Fatalf("blocker: %v, want the lock granted", err)
	}
	r, err := b.Do(1, Request{Op: OpRead})
	if err != nil {
		t.Fatal(err)
	}
	if r.Balance != 10 || r.Holder != "blocker" {
		t.Fatalf("balance %d: the abandoned write was applied", r.Balance)
	}
}

func TestClosed(t *testing.T) {
	b, err := New(Config{Accounts: 1})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b.Close() // idempotent
	if _, err := b.Do(1, Request{Op: OpRead}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close: %v, want ErrClosed", err)
	}
}
