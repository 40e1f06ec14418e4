package tellertest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bank/gobank/actors/teller"
)

// transfers runs batch on tl and returns its results.
func transfers(t *testing.T, tl *teller.Teller, batch ...teller.BatchTransfer) []teller.BatchResult {
	t.Helper()
	results := make([]teller.BatchResult, len(batch))
	if err := tl.Transfers(context.Background(), batch, results); err != nil {
		t.Fatalf("a batch of %d transfers: %v", len(batch), err)
	}
	return results
}

// testBatchRules: each transfer of a batch applied in order on the
// balances the ones before it left, or refused alone; a linked chain
// applied whole or refused whole; an unknown account refuses only its
// transfers; the balances move as the results say, and every lock is
// free afterwards.
func testBatchRules(t *testing.T, newAccounts NewAccounts) {
	const n = 6
	bind := newAccounts(t, n, 100)
	acc := bind("batcher", lease)
	// Request order: a batch locks ascending all the same.
	tl := newTeller(t, acc, teller.Config{Order: teller.OrderRequest})
	type tr = teller.BatchTransfer
	ok := func(from, to int64) teller.BatchResult { return teller.BatchResult{FromSaldo: from, ToSaldo: to} }
	refused := func(err error) teller.BatchResult { return teller.BatchResult{Err: err} }
	for _, tc := range []struct {
		name  string
		batch []tr
		want  []teller.BatchResult
		saldo []int64 // accounts 1..n afterwards
	}{
		{"in order, each on the last one's balances",
			[]tr{{From: 1, To: 2, Amount: 30}, {From: 2, To: 3, Amount: 130}, {From: 3, To: 1, Amount: 231}, {From: 3, To: 1, Amount: 230}},
			[]teller.BatchResult{ok(70, 130), ok(0, 230), refused(teller.ErrInsufficientFunds), ok(0, 300)},
			[]int64{300, 0, 0, 100, 100, 100}},
		{"a chain refused whole, the next applied",
			[]tr{{From: 1, To: 4, Amount: 50, Linked: true}, {From: 4, To: 5, Amount: 100, Linked: true}, {From: 5, To: 6, Amount: 1000}, {From: 1, To: 2, Amount: 10}},
			[]teller.BatchResult{refused(teller.ErrLinkedFailed), refused(teller.ErrLinkedFailed), refused(teller.ErrInsufficientFunds), ok(290, 10)},
			[]int64{290, 10, 0, 100, 100, 100}},
		{"a chain applied whole",
			[]tr{{From: 1, To: 4, Amount: 50, Linked: true}, {From: 4, To: 5, Amount: 150, Linked: true}, {From: 5, To: 6, Amount: 250}},
			[]teller.BatchResult{ok(240, 150), ok(0, 250), ok(0, 350)},
			[]int64{240, 10, 0, 0, 0, 350}},
		{"rules that need no balance",
			[]tr{{From: 0, To: 1, Amount: 1}, {From: 6, To: 6, Amount: 1}, {From: 6, To: 1, Amount: 0}, {From: 6, To: 1, Amount: -5},
				{From: 6, To: 2, Amount: 5}},
			[]teller.BatchResult{refused(teller.ErrInvalidAccount), refused(teller.ErrSameAccount), refused(teller.ErrInvalidValue),
				refused(teller.ErrInvalidValue), ok(345, 15)},
			[]int64{240, 15, 0, 0, 0, 345}},
		{"an unknown account refuses its transfers and its chain only",
			[]tr{{From: 6, To: n + 1, Amount: 5}, {From: 6, To: 3, Amount: 5}, {From: n + 7, To: 1, Amount: 5, Linked: true}, {From: 1, To: 2, Amount: 5},
				{From: 2, To: 6, Amount: 5}},
			[]teller.BatchResult{refused(teller.ErrNotFound), ok(340, 5), refused(teller.ErrNotFound), refused(teller.ErrLinkedFailed), ok(10, 345)},
			[]int64{240, 10, 5, 0, 0, 345}},
		{"an open chain at the end",
			[]tr{{From: 1, To: 2, Amount: 5}, {From: 2, To: 3, Amount: 5, Linked: true}, {From: 3, To: 4, Amount: 5, Linked: true}},
			[]teller.BatchResult{ok(235, 15), refused(teller.ErrLinkedFailed), refused(teller.ErrLinkedOpen)},
			[]int64{235, 15, 5, 0, 0, 345}},
		{"more than any balance",
			[]tr{{From: 1, To: 2, Amount: math.MaxInt64}, {From: 1, To: 2, Amount: 1}},
			[]teller.BatchResult{refused(teller.ErrInsufficientFunds), ok(234, 16)},
			[]int64{234, 16, 5, 0, 0, 345}},
		{"nothing to lock", []tr{{From: 1, To: 1, Amount: 1}, {From: 0, To: 0, Amount: 0}},
			[]teller.BatchResult{refused(teller.ErrSameAccount), refused(teller.ErrInvalidAccount)},
			[]int64{234, 16, 5, 0, 0, 345}},
	} {
		got := transfers(t, tl, tc.batch...)
		for i := range got {
			if !errors.Is(got[i].Err, tc.want[i].Err) || (tc.want[i].Err == nil) != (got[i].Err == nil) ||
				got[i].FromSaldo != tc.want[i].FromSaldo || got[i].ToSaldo != tc.want[i].ToSaldo {
				t.Errorf("%s: transfer %d %+v: %+v, want %+v", tc.name, i, tc.batch[i], got[i], tc.want[i])
			}
		}
		if b := balances(t, acc, n); !slices.Equal(b, tc.saldo) {
			t.Fatalf("%s: balances %v, want %v", tc.name, b, tc.saldo)
		}
	}

	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		batch   []tr
		results int
	}{
		{"no transfers", nil, 0},
		{"more than MaxBatch", make([]tr, teller.MaxBatch+1), teller.MaxBatch + 1},
		{"results of another length", []tr{{From: 1, To: 2, Amount: 1}}, 2},
	} {
		if err := tl.Transfers(ctx, tc.batch, make([]teller.BatchResult, tc.results)); !errors.Is(err, teller.ErrBadRequest) {
			t.Errorf("%s: %v, want %v", tc.name, err, teller.ErrBadRequest)
		}
	}
	other := bind("other", lease)
	ids := []int64{1, 2, 3, 4, 5, 6}
	if err := other.Lock(ctx, ids, teller.LockOptions{}, make([]teller.Grant, len(ids))); err != nil {
		t.Fatalf("the accounts are not free after the batches: %v", err)
	}
}

// testBatchWide: a batch of MaxBatch transfers over more accounts than a
// Move may take, then one whose account another holder has locked, which
// is refused whole at the end of its wait and changes nothing.
func testBatchWide(t *testing.T, newAccounts NewAccounts) {
	const n, initial = 1000, 10
	bind := newAccounts(t, n, initial)
	acc := bind("wide", lease)
	tl := newTeller(t, acc, teller.Config{LockWait: 200 * time.Millisecond})
	// A ring: account i pays 1 to i+1, eight times around, and every
	// result is the running balance.
	batch := make([]teller.BatchTransfer, teller.MaxBatch)
	for i := range batch {
		from := int64(i%n) + 1
		batch[i] = teller.BatchTransfer{From: from, To: from%n + 1, Amount: 1}
	}
	results := transfers(t, tl, batch...)
	for i, r := range results {
		if r.Err != nil {
			t.Fatalf("transfer %d %+v: %v", i, batch[i], r.Err)
		}
	}
	// Account 1 paid first, before account n paid it back.
	if r := results[0]; r.FromSaldo != initial-1 || r.ToSaldo != initial+1 {
		t.Fatalf("first transfer: %+v, want %d and %d", r, initial-1, initial+1)
	}
	rounds, rest := teller.MaxBatch/n, teller.MaxBatch%n // every account paid and was paid rounds times; the first rest once more
	want := make([]int64, n)
	for i := range want {
		want[i] = initial
	}
	for i := range rest {
		want[i]--
		want[(i+1)%n]++
	}
	if b := balances(t, acc, n); !slices.Equal(b, want) {
		t.Fatalf("after %d rounds and %d: balances %v, want %v", rounds, rest, b[:20], want[:20])
	}

	other := bind("other", lease)
	g := lockAs(t, other, n/2)
	err := tl.Transfers(context.Background(), batch, make([]teller.BatchResult, len(batch)))
	if !errors.Is(err, teller.ErrLocked) {
		t.Fatalf("a batch one of whose accounts stays locked: %v, want %v", err, teller.ErrLocked)
	}
	if err := other.Unlock(context.Background(), n/2, g.Fence); err != nil {
		t.Fatal(err)
	}
	if b := balances(t, acc, n); !slices.Equal(b, want) {
		t.Fatalf("a batch refused whole changed balances")
	}
}

// testBatchConservation: batches with linked chains and single transfers
// by several Tellers at once over few accounts never lose money, never
// overdraw and never deadlock.
func testBatchConservation(t *testing.T, newAccounts NewAccounts) {
	const n, initial, tellers, workers, ops = 12, 100, 3, 2, 15
	bind := newAccounts(t, n, initial)
	var wg sync.WaitGroup
	for i := range tellers {
		holder := fmt.Sprintf("batcher-%d", i)
		tl := newTeller(t, bind(holder, lease), teller.Config{Holder: holder, LockWait: 10 * time.Second})
		for w := range workers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(i), uint64(w)))
				for range ops {
					if rng.IntN(3) == 0 {
						a, b := rng.Int64N(n)+1, rng.Int64N(n-1)+1
						if b >= a {
							b++
						}
						_, err := tl.Run(context.Background(), teller.Op{Kind: teller.Transfer, A: a, B: b, Amount: rng.Int64N(50) + 1})
						if err != nil && !errors.Is(err, teller.ErrInsufficientFunds) {
							t.Errorf("transfer: %v", err)
							return
						}
						continue
					}
					batch := make([]teller.BatchTransfer, 1+rng.IntN(20))
					for j := range batch {
						a, b := rng.Int64N(n)+1, rng.Int64N(n-1)+1
						if b >= a {
							b++
						}
						batch[j] = teller.BatchTransfer{From: a, To: b, Amount: rng.Int64N(80) + 1, Linked: j < len(batch)-1 && rng.IntN(3) == 0}
					}
					results := make([]teller.BatchResult, len(batch))
					if err := tl.Transfers(context.Background(), batch, results); err != nil {
						t.Errorf("batch: %v", err)
						return
					}
					for j, r := range results {
						if r.Err != nil && !errors.Is(r.Err, teller.ErrInsufficientFunds) && !errors.Is(r.Err, teller.ErrLinkedFailed) {
							t.Errorf("batch transfer %d %+v: %v", j, batch[j], r.Err)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	conserved(t, bind("reader", lease), n, n*initial)
}

// testCoalesce: a coalescing Teller's concurrent deposits to one hot
// account each see a balance of their own, exactly the balances from one
// deposit to all of them; withdrawals, transfers and refusals among them
// keep their own answers; a panic in a batch fails its operations and
// leaves the Teller and the locks working.
func testCoalesce(t *testing.T, newAccounts NewAccounts) {
	const n, initial, workers, each = 8, 1000, 16, 20
	bind := newAccounts(t, n, initial)
	acc := bind("coalescer", lease)
	tl := newTeller(t, acc, teller.Config{Holder: "coalescer", Coalesce: 64, LockWait: 10 * time.Second})
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[int64]bool{} // balances of account 1 answered to its deposits
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range each {
				r, err := tl.Run(ctx, teller.Op{Kind: teller.Deposit, A: 1, Amount: 1})
				if err != nil {
					t.Errorf("deposit: %v", err)
					return
				}
				mu.Lock()
				if seen[r.A] {
					t.Errorf("two deposits of 1 were both answered balance %d", r.A)
				}
				seen[r.A] = true
				mu.Unlock()
				// Money moves among accounts 2..n; account 2 overdraws.
				a, b := 2+rng.Int64N(n-1), 2+rng.Int64N(n-1)
				switch _, err := tl.Run(ctx, teller.Op{Kind: teller.Transfer, A: a, B: b, Amount: 1 + rng.Int64N(300)}); {
				case a == b && !errors.Is(err, teller.ErrSameAccount):
					t.Errorf("transfer %d to itself: %v", a, err)
				case a != b && err != nil && !errors.Is(err, teller.ErrInsufficientFunds):
					t.Errorf("transfer %d to %d: %v", a, b, err)
				}
				if _, err := tl.Run(ctx, teller.Op{Kind: teller.Withdraw, A: 2, Amount: initial * n}); !errors.Is(err, teller.ErrInsufficientFunds) {
					t.Errorf("withdrawal beyond every balance: %v", err)
				}
				if _, err := tl.Run(ctx, teller.Op{Kind: teller.Deposit, A: n + 1, Amount: 1}); !errors.Is(err, teller.ErrNotFound) {
					t.Errorf("deposit to no account: %v", err)
				}
			}
		})
	}
	wg.Wait()
	for b := int64(initial + 1); b <= initial+workers*each; b++ {
		if !seen[b] {
			t.Fatalf("no deposit was answered balance %d: the answers are not one deposit after another", b)
		}
	}
	conserved(t, acc, n, n*initial+workers*each)

	// A panic at "locked" fails the batch it hits; the Teller goes on.
	var once sync.Once
	panicky := newTeller(t, acc, teller.Config{Holder: "panicky", Coalesce: 64, At: func(stage string) {
		if stage == "locked" {
			once.Do(func() { panic("a test's panic") })
		}
	}})
	errs := make(chan error, workers)
	for range workers {
		go func() {
			_, err := panicky.Run(ctx, teller.Op{Kind: teller.Transfer, A: 3, B: 4, Amount: 1})
			errs <- err
		}()
	}
	failed := 0
	for range workers {
		if err := <-errs; err != nil {
			if !errors.Is(err, teller.ErrInternal) {
				t.Errorf("a transfer of a batch that panicked: %v, want %v", err, teller.ErrInternal)
			}
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no transfer failed: the hook's panic went unnoticed")
	}
	if _, err := panicky.Run(ctx, teller.Op{Kind: teller.Transfer, A: 3, B: 4, Amount: 1}); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
	conserved(t, acc, n, n*initial+workers*each)

	// A batch stuck on a lock another holder keeps does not hold up the
	// operations that arrive behind it: one of them leads a batch beside
	// it, long before the stuck one's wait ends.
	blocker := bind("blocker", lease)
	g := lockAs(t, blocker, 5)
	stuck := make(chan error, 1)
	go func() {
		_, err := tl.Run(ctx, teller.Op{Kind: teller.Deposit, A: 5, Amount: 1})
		stuck <- err
	}()
	waitFor(t, "the deposit to wait for account 5", func() bool { return waiting(t, bind, 5) == 1 })
	start := time.Now()
	if _, err := tl.Run(ctx, teller.Op{Kind: teller.Deposit, A: 6, Amount: 1}); err != nil {
		t.Fatalf("a deposit behind a stuck batch: %v", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("a deposit behind a stuck batch waited %v, as long as the stuck one's lock wait", waited)
	}
	select {
	case err := <-stuck:
		t.Fatalf("the deposit to the locked account ended before the lock was released: %v", err)
	default:
	}
	if err := blocker.Unlock(ctx, 5, g.Fence); err != nil {
		t.Fatal(err)
	}
	if err := <-stuck; err != nil {
		t.Fatalf("the deposit to account 5 once released: %v", err)
	}
	conserved(t, acc, n, n*initial+workers*each+2)

	ids := []int64{1, 2, 3, 4, 5, 6, 7, 8}
	if err := bind("other", lease).Lock(ctx, ids, teller.LockOptions{}, make([]teller.Grant, n)); err != nil {
		t.Fatalf("the accounts are not free after the coalesced batches: %v", err)
	}
}
