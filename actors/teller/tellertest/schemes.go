package tellertest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/teller"
)

// transactional lists the modes that name transactions and retry aborts.
var transactional = []teller.LockMode{teller.ModeWaitDie, teller.ModeWoundWait, teller.ModeDetect, teller.ModeOCC}

// Timestamps for a blocker transaction that is older, or younger, than
// any Teller's (which are the clock's nanoseconds).
const (
	oldest   = 1
	youngest = math.MaxUint64
)

// blocker is a transaction outside any Teller, holding locks the test
// chooses, under a timestamp the test chooses.
type blocker struct {
	t      *testing.T
	acc    teller.Accounts
	ts     uint64
	scheme account.Scheme
	grants map[int64]teller.Grant
}

func newBlocker(t *testing.T, acc teller.Accounts, ts uint64, scheme account.Scheme) *blocker {
	return &blocker{t: t, acc: acc, ts: ts, scheme: scheme, grants: map[int64]teller.Grant{}}
}

// lock takes id's lock for the blocker, waiting up to wait, detecting
// deadlocks when asked.
func (b *blocker) lock(id int64, wait time.Duration, detect bool) error {
	g := make([]teller.Grant, 1)
	err := b.acc.Lock(context.Background(), []int64{id}, teller.LockOptions{Wait: wait, Scheme: b.scheme, TS: b.ts, Detect: detect}, g)
	if err == nil {
		b.grants[id] = g[0]
	}
	return err
}

// unlock releases everything the blocker holds.
func (b *blocker) unlock() {
	for id, g := range b.grants {
		if err := b.acc.Unlock(context.Background(), id, g.Fence); err != nil {
			b.t.Errorf("blocker's unlock of %d: %v", id, err)
		}
		delete(b.grants, id)
	}
}

// waitFor polls cond until it holds, failing t after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 10s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronization
	}
}

// transferLater runs a transfer in the background; its error arrives on
// the channel.
func transferLater(tl *teller.Teller, a, b, amount int64) <-chan error {
	c := make(chan error, 1)
	go func() {
		_, err := tl.Run(context.Background(), teller.Op{Kind: teller.Transfer, A: a, B: b, Amount: amount})
		c <- err
	}()
	return c
}

// testSchemes pins what each concurrency-control scheme does against a
// transaction holding a lock, one case at a time, with the Teller's
// counters telling which abort happened.
func testSchemes(t *testing.T, newAccounts NewAccounts) {
	t.Run("wait-die/younger dies until the holder releases", func(t *testing.T) {
		bind := newAccounts(t, 2, 100)
		b := newBlocker(t, bind("blocker", lease), oldest, account.WaitDie)
		if err := b.lock(1, 0, false); err != nil {
			t.Fatal(err)
		}
		tl := newTeller(t, bind("teller", lease), teller.Config{Holder: "teller", Mode: teller.ModeWaitDie, LockWait: time.Minute})
		done := transferLater(tl, 1, 2, 10)
		waitFor(t, "the transfer to die", func() bool { return tl.Stats().Died >= 2 })
		b.unlock()
		if err := <-done; err != nil {
			t.Fatalf("the transfer after the holder released: %v", err)
		}
		if s := tl.Stats(); s.Done != 1 || s.Attempts != s.Done+s.Aborts() || s.Wounded+s.Deadlocks+s.Validations+s.Timeouts != 0 {
			t.Errorf("stats %+v", s)
		}
		conserved(t, bind("reader", lease), 2, 200)
	})
	t.Run("wait-die/older waits", func(t *testing.T) {
		bind := newAccounts(t, 2, 100)
		b := newBlocker(t, bind("blocker", lease), youngest, account.WaitDie)
		if err := b.lock(2, 0, false); err != nil {
			t.Fatal(err)
		}
		tl := newTeller(t, bind("teller", lease), teller.Config{Holder: "teller", Mode: teller.ModeWaitDie, LockWait: time.Minute})
		done := transferLater(tl, 1, 2, 10)
		waitFor(t, "the transfer to wait", func() bool { return waiting(t, bind, 2) == 1 })
		b.unlock()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s := tl.Stats(); s.Attempts != 1 || s.Died != 0 {
			t.Errorf("stats %+v: want one attempt that waited", s)
		}
	})
	t.Run("wound-wait/older wounds the holder", func(t *testing.T) {
		bind := newAccounts(t, 2, 100)
		b := newBlocker(t, bind("blocker", lease), youngest, account.WoundWait)
		if err := b.lock(1, 0, false); err != nil {
			t.Fatal(err)
		}
		tl := newTeller(t, bind("teller", lease), teller.Config{Holder: "teller", Mode: teller.ModeWoundWait, LockWait: time.Minute})
		// The blocker never releases: only a wound lets the transfer by.
		if _, err := tl.Run(context.Background(), teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 10}); err != nil {
			t.Fatal(err)
		}
		_, err := b.acc.Commit(context.Background(), []teller.Change{{Conta: 1, Saldo: 0, Fence: b.grants[1].Fence}}, true, nil)
		if !errors.Is(err, teller.ErrStaleFence) {
			t.Fatalf("the wounded holder's commit: %v, want ErrStaleFence", err)
		}
		if got := balances(t, bind("reader", lease), 2); got[0] != 90 || got[1] != 110 {
			t.Fatalf("balances %v, want [90 110]", got)
		}
	})
	t.Run("wound-wait/wounded commit retries", func(t *testing.T) {
		bind := newAccounts(t, 2, 100)
		old := newBlocker(t, bind("old", lease), oldest, account.WoundWait)
		// The transfer holds both locks at "locked"; an older
		// transaction then wounds it on account 2, so its commit is
		// refused, and it retries once the older one is done.
		var once sync.Once
		tl2 := newTeller(t, bind("teller2", lease), teller.Config{Holder: "teller2", Mode: teller.ModeWoundWait, LockWait: time.Minute,
			At: func(stage string) {
				if stage == "locked" {
					once.Do(func() {
						if err := old.lock(2, time.Minute, false); err != nil {
							t.Errorf("the older transaction's lock: %v", err)
						}
						old.unlock()
					})
				}
			}})
		if _, err := tl2.Run(context.Background(), teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 10}); err != nil {
			t.Fatal(err)
		}
		if s := tl2.Stats(); s.Wounded != 1 || s.Attempts != 2 || s.Done != 1 {
			t.Errorf("stats %+v: want one wound, two attempts", s)
		}
		if got := balances(t, bind("reader", lease), 2); got[0] != 90 || got[1] != 110 {
			t.Fatalf("balances %v, want [90 110]: the wounded attempt must have written nothing", got)
		}
	})
	t.Run("detect/a cycle's youngest is aborted", func(t *testing.T) {
		bind := newAccounts(t, 2, 100)
		b := newBlocker(t, bind("blocker", lease), oldest, account.Wait)
		if err := b.lock(2, 0, false); err != nil {
			t.Fatal(err)
		}
		tl := newTeller(t, bind("teller", lease), teller.Config{Holder: "teller", Mode: teller.ModeDetect, Order: teller.OrderRequest, LockWait: time.Minute})
		done := transferLater(tl, 1, 2, 10) // holds 1, waits for 2
		waitFor(t, "the transfer to wait for account 2", func() bool { return waiting(t, bind, 2) == 1 })
		// The blocker now waits for account 1: a cycle. The transfer
		// is younger: it is refused at once, releases account 1, and
		// the blocker gets it, well before any wait runs out.
		if err := b.lock(1, time.Minute, true); err != nil {
			t.Fatalf("the blocker's wait in the cycle: %v", err)
		}
		// The victim releases its locks before it counts its abort.
		waitFor(t, "the victim's abort", func() bool { return tl.Stats().Deadlocks == 1 })
		b.unlock()
		if err := <-done; err != nil {
			t.Fatalf("the victim's retry: %v", err)
		}
		conserved(t, bind("reader", lease), 2, 200)
	})
	t.Run("occ/a write since the read fails validation", func(t *testing.T) {
		bind := newAccounts(t, 2, 100)
		other := newTeller(t, bind("other", lease), teller.Config{Holder: "other"})
		var once sync.Once
		racer := &racingReads{Accounts: bind("teller", lease), between: func() {
			once.Do(func() {
				if _, err := other.Run(context.Background(), teller.Op{Kind: teller.Deposit, A: 1, Amount: 5}); err != nil {
					t.Errorf("the racing deposit: %v", err)
				}
			})
		}}
		tl := newTeller(t, racer, teller.Config{Holder: "teller", Mode: teller.ModeOCC, LockWait: time.Minute})
		r, err := tl.Run(context.Background(), teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 10})
		if err != nil {
			t.Fatal(err)
		}
		if r.A != 95 || r.B != 110 {
			t.Fatalf("transfer %+v, want 95 and 110: the deposit between read and commit must not be lost", r)
		}
		if s := tl.Stats(); s.Validations != 1 || s.Attempts != 2 {
			t.Errorf("stats %+v: want one failed validation, two attempts", s)
		}
	})
}

// waiting returns how many lock requests are queued on account id. The
// accounts' own interface cannot tell; the accounts under test must (a
// Waiting method, which the backends' Bind adds).
func waiting(t *testing.T, bind Bind, id int64) int {
	t.Helper()
	in, ok := bind("inspector", lease).(interface {
		Waiting(ctx context.Context, id int64) (int, error)
	})
	if !ok {
		t.Fatal("the accounts under test cannot tell how many wait (Waiting)")
	}
	n, err := in.Waiting(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// racingReads runs between after each versioned read.
type racingReads struct {
	teller.Accounts
	between func()
}

func (r *racingReads) ReadVersion(ctx context.Context, id int64) (int64, uint64, error) {
	b, v, err := r.Accounts.(teller.VersionReader).ReadVersion(ctx, id)
	r.between()
	return b, v, err
}

// testSchemeConservation: transfers in request order between few accounts
// by several Tellers at once, in every transactional mode, all end —
// none is refused for a lock, since no cycle can outlast the scheme — and
// conserve money; every abort is accounted for.
func testSchemeConservation(t *testing.T, newAccounts NewAccounts) {
	for _, mode := range transactional {
		t.Run(string(mode), func(t *testing.T) {
			const n, initial, tellers, workers, ops = 3, 1000, 2, 4, 30
			bind := newAccounts(t, n, initial)
			var wg sync.WaitGroup
			var failed atomic.Int64
			var tls []*teller.Teller
			for i := range tellers {
				holder := fmt.Sprintf("teller-%d", i)
				tl := newTeller(t, bind(holder, lease), teller.Config{Holder: holder, Mode: mode, Order: teller.OrderRequest, LockWait: time.Minute})
				tls = append(tls, tl)
				for w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for k := range ops {
							a := int64((i+w+k)%n) + 1
							b := a%n + 1
							if (w+k)%2 == 1 {
								a, b = b, a // opposite directions: cycles in request order
							}
							if _, err := tl.Run(context.Background(), teller.Op{Kind: teller.Transfer, A: a, B: b, Amount: 1}); err != nil {
								failed.Add(1)
								t.Errorf("transfer %d→%d: %v", a, b, err)
							}
						}
					}()
				}
			}
			wg.Wait()
			conserved(t, bind("reader", lease), n, n*initial)
			var aborts uint64
			for _, tl := range tls {
				s := tl.Stats()
				if s.Done != workers*ops || s.Attempts != s.Done+s.Aborts() || s.Timeouts != 0 {
					t.Errorf("%s: stats %+v: want %d done, attempts = done + aborts, no timeout", mode, s, workers*ops)
				}
				aborts += s.Aborts()
			}
			t.Logf("%s: %d aborts for %d transfers", mode, aborts, tellers*workers*ops)
		})
	}
}
