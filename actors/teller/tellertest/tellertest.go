// Package tellertest is the table of orchestration tests every
// implementation of teller.Accounts passes: the rules of deposit,
// withdraw, balance and transfer, the lock choreography (orders, modes,
// fences, release on every path) and idempotency, run by a real Teller
// over the implementation under test. The in-process accounts run it with
// no socket (actors/teller/inprocess); the data server's HTTP client runs
// it against a data server on loopback (http/dataclient).
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

// NewAccounts makes accounts 1..accounts, each holding initial, on a fresh
// bank that is stopped when t ends, and returns how to bind them to a lock
// holder with a lease (0: the implementation's default).
type NewAccounts func(t *testing.T, accounts int, initial int64) Bind

// Bind returns the accounts as holder sees them, its locks taken with a
// lease of lease.
type Bind func(holder string, lease time.Duration) teller.Accounts

// Run runs every test of the suite, each on accounts of its own.
func Run(t *testing.T, newAccounts NewAccounts) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, newAccounts NewAccounts)
	}{
		{"Rules", testRules},
		{"Conservation", testConservation},
		{"OppositeTransfers", testOppositeTransfers},
		{"FailFastRefusesAHeldLock", testFailFast},
		{"LocksFreedOnEveryPath", testLocksFreed},
		{"Stages", testStages},
		{"StaleGrantWritesNothing", testStaleGrant},
		{"MoveRules", testMoveRules},
		{"MoveConservation", testMoveConservation},
		{"Idempotent", testIdempotent},
		{"IdempotentRacingDuplicates", testIdempotentRace},
		{"Schemes", testSchemes},
		{"SchemeConservation", testSchemeConservation},
		{"BatchRules", testBatchRules},
		{"BatchWide", testBatchWide},
		{"BatchConservation", testBatchConservation},
		{"Coalesce", testCoalesce},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newAccounts) })
	}
}

const lease = 10 * time.Second

func newTeller(t *testing.T, acc teller.Accounts, cfg teller.Config) *teller.Teller {
	t.Helper()
	cfg.Accounts = acc
	tl, err := teller.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func balances(t *testing.T, acc teller.Accounts, n int) []int64 {
	t.Helper()
	out := make([]int64, n)
	for i := range out {
		b, err := acc.Read(context.Background(), int64(i+1))
		if err != nil {
			t.Fatalf("read %d: %v", i+1, err)
		}
		out[i] = b
	}
	return out
}

// conserved fails t unless accounts 1..n hold total together, none of
// them a negative balance.
func conserved(t *testing.T, acc teller.Accounts, n int, total int64) {
	t.Helper()
	bs := balances(t, acc, n)
	var s int64
	for i, b := range bs {
		if b < 0 {
			t.Fatalf("account %d holds %d", i+1, b)
		}
		s += b
	}
	if s != total {
		t.Fatalf("balances %v sum to %d, want %d", bs, s, total)
	}
}

// testRules: each operation's result or refusal, and that a refusal
// changes nothing.
func testRules(t *testing.T, newAccounts NewAccounts) {
	const n = 3
	acc := newAccounts(t, n, 100)("rules", lease)
	tl := newTeller(t, acc, teller.Config{Holder: "rules"})
	ctx := context.Background()
	if _, err := tl.Run(ctx, teller.Op{Kind: teller.Deposit, A: 3, Amount: math.MaxInt64 - 100}); err != nil {
		t.Fatalf("deposit to the largest balance: %v", err)
	}
	tests := []struct {
		name string
		op   teller.Op
		want teller.Result
		err  error
		// after is the balances of 1..n afterwards
		after []int64
	}{
		{"deposit", teller.Op{Kind: teller.Deposit, A: 1, Amount: 5}, teller.Result{A: 105}, nil, []int64{105, 100, math.MaxInt64}},
		{"withdraw", teller.Op{Kind: teller.Withdraw, A: 1, Amount: 105}, teller.Result{A: 0}, nil, []int64{0, 100, math.MaxInt64}},
		{"withdraw beyond the balance", teller.Op{Kind: teller.Withdraw, A: 1, Amount: 1}, teller.Result{}, teller.ErrInsufficientFunds, []int64{0, 100, math.MaxInt64}},
		{"balance", teller.Op{Kind: teller.Balance, A: 2}, teller.Result{A: 100}, nil, []int64{0, 100, math.MaxInt64}},
		{"transfer", teller.Op{Kind: teller.Transfer, A: 2, B: 1, Amount: 40}, teller.Result{A: 60, B: 40}, nil, []int64{40, 60, math.MaxInt64}},
		{"transfer of the whole balance", teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 40}, teller.Result{A: 0, B: 100}, nil, []int64{0, 100, math.MaxInt64}},
		{"transfer beyond the balance", teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 1}, teller.Result{}, teller.ErrInsufficientFunds, []int64{0, 100, math.MaxInt64}},
		{"transfer that overflows", teller.Op{Kind: teller.Transfer, A: 2, B: 3, Amount: 1}, teller.Result{}, teller.ErrOverflow, []int64{0, 100, math.MaxInt64}},
		{"deposit that overflows", teller.Op{Kind: teller.Deposit, A: 3, Amount: 1}, teller.Result{}, teller.ErrOverflow, []int64{0, 100, math.MaxInt64}},
		{"deposit of the largest amount", teller.Op{Kind: teller.Deposit, A: 1, Amount: math.MaxInt64}, teller.Result{A: math.MaxInt64}, nil, []int64{math.MaxInt64, 100, math.MaxInt64}},
		{"withdraw of the largest amount", teller.Op{Kind: teller.Withdraw, A: 1, Amount: math.MaxInt64}, teller.Result{A: 0}, nil, []int64{0, 100, math.MaxInt64}},
		{"same account", teller.Op{Kind: teller.Transfer, A: 2, B: 2, Amount: 1}, teller.Result{}, teller.ErrSameAccount, nil},
		{"account zero", teller.Op{Kind: teller.Deposit, A: 0, Amount: 1}, teller.Result{}, teller.ErrInvalidAccount, nil},
		{"negative account", teller.Op{Kind: teller.Balance, A: -1}, teller.Result{}, teller.ErrInvalidAccount, nil},
		{"transfer to account zero", teller.Op{Kind: teller.Transfer, A: 1, B: 0, Amount: 1}, teller.Result{}, teller.ErrInvalidAccount, nil},
		{"zero amount", teller.Op{Kind: teller.Withdraw, A: 1, Amount: 0}, teller.Result{}, teller.ErrInvalidValue, nil},
		{"negative amount", teller.Op{Kind: teller.Deposit, A: 1, Amount: -5}, teller.Result{}, teller.ErrInvalidValue, nil},
		{"negative transfer", teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: -5}, teller.Result{}, teller.ErrInvalidValue, nil},
		{"no such account", teller.Op{Kind: teller.Deposit, A: n + 1, Amount: 1}, teller.Result{}, teller.ErrNotFound, nil},
		{"balance of no such account", teller.Op{Kind: teller.Balance, A: n + 1}, teller.Result{}, teller.ErrNotFound, nil},
		{"transfer to no such account", teller.Op{Kind: teller.Transfer, A: 2, B: n + 1, Amount: 1}, teller.Result{}, teller.ErrNotFound, nil},
		{"unknown operation", teller.Op{Kind: 99, A: 1, Amount: 1}, teller.Result{}, teller.ErrBadRequest, nil},
	}
	after := []int64{100, 100, math.MaxInt64}
	for _, tc := range tests {
		got, err := tl.Run(ctx, tc.op)
		if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
		}
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		if tc.after != nil {
			after = tc.after
		}
		if b := balances(t, acc, n); !slices.Equal(b, after) {
			t.Fatalf("%s: balances %v, want %v", tc.name, b, after)
		}
	}
}

// testConservation: transfers between few accounts by several Tellers
// (holders) at once, in every mode and order, move money without creating
// or destroying any and never leave a balance negative.
func testConservation(t *testing.T, newAccounts NewAccounts) {
	for _, mode := range []teller.LockMode{teller.ModeWait, teller.ModeRetry, teller.ModeFailFast} {
		for _, order := range []teller.LockOrder{teller.OrderAscending, teller.OrderRequest} {
			t.Run(fmt.Sprintf("%s/%s", mode, order), func(t *testing.T) {
				const n, initial, tellers, workers, ops = 4, 50, 3, 4, 40
				bind := newAccounts(t, n, initial)
				var wg sync.WaitGroup
				var mu sync.Mutex
				okCount := 0
				for i := range tellers {
					holder := fmt.Sprintf("teller-%d", i)
					tl := newTeller(t, bind(holder, lease), teller.Config{Holder: holder, Mode: mode, Order: order, LockWait: 50 * time.Millisecond})
					for w := range workers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							rng := rand.New(rand.NewPCG(uint64(i), uint64(w)))
							for range ops {
								a := rng.Int64N(n) + 1
								b := rng.Int64N(n-1) + 1
								if b >= a {
									b++
								}
								r, err := tl.Run(context.Background(), teller.Op{Kind: teller.Transfer, A: a, B: b, Amount: rng.Int64N(30) + 1})
								switch {
								case err == nil:
									if r.A < 0 || r.B < 0 {
										t.Errorf("transfer %d→%d left %+v", a, b, r)
									}
									mu.Lock()
									okCount++
									mu.Unlock()
								case errors.Is(err, teller.ErrInsufficientFunds), errors.Is(err, teller.ErrLocked):
								default:
									t.Errorf("transfer %d→%d: %v", a, b, err)
								}
							}
						}()
					}
				}
				wg.Wait()
				conserved(t, bind("reader", lease), n, n*initial)
				if okCount == 0 {
					t.Fatal("no transfer succeeded")
				}
			})
		}
	}
}

// testOppositeTransfers: in ascending order, transfers between the same
// two accounts in opposite directions by two holders that wait never
// deadlock: every one succeeds.
func testOppositeTransfers(t *testing.T, newAccounts NewAccounts) {
	bind := newAccounts(t, 2, 1000)
	const each = 30
	var wg sync.WaitGroup
	for i, dir := range [][2]int64{{1, 2}, {2, 1}} {
		holder := fmt.Sprintf("opposite-%d", i)
		tl := newTeller(t, bind(holder, lease), teller.Config{Holder: holder, LockWait: 10 * time.Second})
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					if _, err := tl.Run(context.Background(), teller.Op{Kind: teller.Transfer, A: dir[0], B: dir[1], Amount: 1}); err != nil {
						t.Errorf("transfer %d→%d: %v", dir[0], dir[1], err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if bs := balances(t, bind("reader", lease), 2); !slices.Equal(bs, []int64{1000, 1000}) {
		t.Fatalf("balances %v, want [1000 1000]: as many transfers each way", bs)
	}
}

// lockAs takes account id's lock for another holder, failing t.
func lockAs(t *testing.T, acc teller.Accounts, id int64) teller.Grant {
	t.Helper()
	g := make([]teller.Grant, 1)
	if err := acc.Lock(context.Background(), []int64{id}, teller.LockOptions{}, g); err != nil {
		t.Fatalf("lock %d: %v", id, err)
	}
	return g[0]
}

// testFailFast: an account another holder has locked is refused at once
// in fail-fast mode, and after a wait in the other modes; once it is
// unlocked, the operation succeeds.
func testFailFast(t *testing.T, newAccounts NewAccounts) {
	bind := newAccounts(t, 2, 100)
	other := bind("other", lease)
	g := lockAs(t, other, 2)
	ctx := context.Background()
	for _, mode := range []teller.LockMode{teller.ModeFailFast, teller.ModeWait, teller.ModeRetry} {
		tl := newTeller(t, bind("teller-"+string(mode), lease), teller.Config{Mode: mode, LockWait: 50 * time.Millisecond})
		if _, err := tl.Run(ctx, teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 1}); !errors.Is(err, teller.ErrLocked) {
			t.Errorf("%s: transfer to a locked account: %v, want ErrLocked", mode, err)
		}
		if _, err := tl.Run(ctx, teller.Op{Kind: teller.Deposit, A: 2, Amount: 1}); !errors.Is(err, teller.ErrLocked) {
			t.Errorf("%s: deposit to a locked account: %v, want ErrLocked", mode, err)
		}
		// A balance takes no lock.
		if r, err := tl.Run(ctx, teller.Op{Kind: teller.Balance, A: 2}); err != nil || r.A != 100 {
			t.Errorf("%s: balance of a locked account: %+v, %v", mode, r, err)
		}
	}
	// Account 1, locked and released by the refused transfers, is free.
	g1 := lockAs(t, other, 1)
	if err := other.Unlock(ctx, 1, g1.Fence); err != nil {
		t.Fatal(err)
	}
	if err := other.Unlock(ctx, 2, g.Fence); err != nil {
		t.Fatal(err)
	}
	tl := newTeller(t, bind("after", lease), teller.Config{Mode: teller.ModeFailFast})
	if r, err := tl.Run(ctx, teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 1}); err != nil || r != (teller.Result{A: 99, B: 101}) {
		t.Fatalf("transfer after the unlock: %+v, %v", r, err)
	}
}

// testLocksFreed: after every outcome (success, refusal of the rules,
// panic at each stage) the operation's locks are free for another holder.
func testLocksFreed(t *testing.T, newAccounts NewAccounts) {
	bind := newAccounts(t, 2, 100)
	probe := bind("probe", lease)
	free := func(what string) {
		t.Helper()
		g := make([]teller.Grant, 2)
		if err := probe.Lock(context.Background(), []int64{1, 2}, teller.LockOptions{}, g); err != nil {
			t.Fatalf("%s: the accounts are not free: %v", what, err)
		}
		for i, id := range []int64{1, 2} {
			if err := probe.Unlock(context.Background(), id, g[i].Fence); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	tl := newTeller(t, bind("t", lease), teller.Config{Mode: teller.ModeFailFast})
	for _, op := range []teller.Op{
		{Kind: teller.Transfer, A: 1, B: 2, Amount: 1},
		{Kind: teller.Transfer, A: 1, B: 2, Amount: 1000},
		{Kind: teller.Deposit, A: 2, Amount: math.MaxInt64},
		{Kind: teller.Withdraw, A: 1, Amount: 1000},
	} {
		_, err := tl.Run(ctx, op)
		free(fmt.Sprintf("after %+v (%v)", op, err))
	}
	for _, stage := range []string{"locked", "before-commit"} {
		tl := newTeller(t, bind("panics", lease), teller.Config{Mode: teller.ModeFailFast, At: func(s string) {
			if s == stage {
				panic("at " + s)
			}
		}})
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("no panic at %s", stage)
				}
			}()
			tl.Run(ctx, teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 1})
		}()
		free("after a panic at " + stage)
	}
	if bs := balances(t, probe, 2); !slices.Equal(bs, []int64{99, 101}) {
		t.Fatalf("balances %v, want [99 101]: only the first transfer applied", bs)
	}
}

// testStages: a transfer passes the stages in order; a refused one stops
// after "locked".
func testStages(t *testing.T, newAccounts NewAccounts) {
	bind := newAccounts(t, 2, 100)
	var seen []string
	tl := newTeller(t, bind("stages", lease), teller.Config{At: func(s string) { seen = append(seen, s) }})
	if _, err := tl.Run(context.Background(), teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 1}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"locked", "before-commit", "after-commit"}; !slices.Equal(seen, want) {
		t.Fatalf("stages %v, want %v", seen, want)
	}
	seen = nil
	if _, err := tl.Run(context.Background(), teller.Op{Kind: teller.Withdraw, A: 1, Amount: 1000}); !errors.Is(err, teller.ErrInsufficientFunds) {
		t.Fatal(err)
	}
	if want := []string{"locked"}; !slices.Equal(seen, want) {
		t.Fatalf("stages of a refusal %v, want %v", seen, want)
	}
}

// testStaleGrant: a Teller whose lease runs out while it is paused holding
// the locks writes nothing: another holder takes the lock and writes, and
// the paused commit is refused (its outcome known: not applied).
func testStaleGrant(t *testing.T, newAccounts NewAccounts) {
	bind := newAccounts(t, 2, 100)
	other := newTeller(t, bind("other", lease), teller.Config{Holder: "other", LockWait: 10 * time.Second})
	paused := make(chan struct{})
	resume := make(chan struct{})
	tl := newTeller(t, bind("paused", 200*time.Millisecond), teller.Config{Holder: "paused", At: func(s string) {
		if s == "before-commit" {
			close(paused)
			<-resume
		}
	}})
	done := make(chan error, 1)
	go func() {
		_, err := tl.Run(context.Background(), teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 60})
		done <- err
	}()
	<-paused
	// The other holder waits for the lease to run out, then transfers.
	if r, err := other.Run(context.Background(), teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 50}); err != nil || r != (teller.Result{A: 50, B: 150}) {
		t.Fatalf("transfer after the lease ran out: %+v, %v", r, err)
	}
	close(resume)
	if err := <-done; !errors.Is(err, teller.ErrStaleFence) {
		t.Fatalf("the paused transfer's commit: %v, want ErrStaleFence", err)
	}
	if bs := balances(t, bind("reader", lease), 2); !slices.Equal(bs, []int64{50, 150}) {
		t.Fatalf("balances %v, want [50 150]: the stale commit wrote nothing", bs)
	}
}

// testMoveRules: a Move of several legs applies all of them or none, and
// refuses what a transfer refuses.
func testMoveRules(t *testing.T, newAccounts NewAccounts) {
	const n = teller.MaxLegs + 1
	bind := newAccounts(t, n, 100)
	acc := bind("mover", lease)
	tl := newTeller(t, acc, teller.Config{Mode: teller.ModeFailFast})
	ctx := context.Background()
	want := balances(t, acc, n)
	move := func(legs ...teller.Leg) ([]int64, error) {
		saldos := make([]int64, len(legs))
		err := tl.Move(ctx, legs, saldos)
		return saldos, err
	}
	got, err := move(teller.Leg{Conta: 3, Delta: -30}, teller.Leg{Conta: 1, Delta: 10}, teller.Leg{Conta: 2, Delta: 20})
	if err != nil || !slices.Equal(got, []int64{70, 110, 120}) {
		t.Fatalf("three legs: %v, %v", got, err)
	}
	want[0], want[1], want[2] = 110, 120, 70
	// The widest move: account 1 pays one to each of the others.
	wide := []teller.Leg{{Conta: 1, Delta: -(teller.MaxLegs - 1)}}
	for id := int64(2); id <= teller.MaxLegs; id++ {
		wide = append(wide, teller.Leg{Conta: id, Delta: 1})
		want[id-1]++
	}
	want[0] -= teller.MaxLegs - 1
	if _, err := move(wide...); err != nil {
		t.Fatalf("%d legs: %v", len(wide), err)
	}
	if b := balances(t, acc, n); !slices.Equal(b, want) {
		t.Fatalf("balances %v, want %v", b, want)
	}
	tooWide := append(slices.Clone(wide), teller.Leg{Conta: n, Delta: 1})
	for _, tc := range []struct {
		name string
		legs []teller.Leg
		err  error
	}{
		{"no legs", nil, teller.ErrBadRequest},
		{"too many legs", tooWide, teller.ErrBadRequest},
		{"an account twice", []teller.Leg{{Conta: 1, Delta: -1}, {Conta: 2, Delta: 2}, {Conta: 1, Delta: -1}}, teller.ErrSameAccount},
		{"a zero delta", []teller.Leg{{Conta: 1, Delta: 0}, {Conta: 2, Delta: 1}}, teller.ErrInvalidValue},
		{"the smallest delta", []teller.Leg{{Conta: 1, Delta: math.MinInt64}}, teller.ErrInvalidValue},
		{"account zero", []teller.Leg{{Conta: 1, Delta: -1}, {Conta: 0, Delta: 1}}, teller.ErrInvalidAccount},
		{"one leg short of funds", []teller.Leg{{Conta: 1, Delta: 5}, {Conta: 2, Delta: 5}, {Conta: 3, Delta: -1000}}, teller.ErrInsufficientFunds},
		{"one leg overflows", []teller.Leg{{Conta: 3, Delta: -1}, {Conta: 4, Delta: math.MaxInt64}}, teller.ErrOverflow},
		{"no such account", []teller.Leg{{Conta: 1, Delta: -1}, {Conta: n + 1, Delta: 1}}, teller.ErrNotFound},
	} {
		if err := tl.Move(ctx, tc.legs, make([]int64, len(tc.legs))); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
		if b := balances(t, acc, n); !slices.Equal(b, want) {
			t.Fatalf("%s: balances %v, want %v: a refusal changes nothing", tc.name, b, want)
		}
	}
	// Every lock is free again: another holder takes them all.
	other := bind("other", lease)
	ids := make([]int64, teller.MaxLegs)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	if err := other.Lock(ctx, ids, teller.LockOptions{}, make([]teller.Grant, len(ids))); err != nil {
		t.Fatalf("the accounts are not free after the refusals: %v", err)
	}
}

// testMoveConservation: moves of 2 to 8 legs whose deltas sum to zero, by
// several Tellers at once over few accounts, in ascending order and
// waiting, never deadlock, never lose money and never overdraw.
func testMoveConservation(t *testing.T, newAccounts NewAccounts) {
	const n, initial, tellers, workers, ops = 10, 100, 3, 3, 30
	bind := newAccounts(t, n, initial)
	var wg sync.WaitGroup
	for i := range tellers {
		holder := fmt.Sprintf("mover-%d", i)
		tl := newTeller(t, bind(holder, lease), teller.Config{Holder: holder, LockWait: 10 * time.Second})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), uint64(w)))
				for range ops {
					ids := rng.Perm(n)[:2+rng.IntN(7)]
					legs := make([]teller.Leg, len(ids))
					var sum int64
					for j, id := range ids[1:] {
						d := rng.Int64N(20) + 1
						legs[j+1] = teller.Leg{Conta: int64(id + 1), Delta: d}
						sum += d
					}
					legs[0] = teller.Leg{Conta: int64(ids[0] + 1), Delta: -sum}
					err := tl.Move(context.Background(), legs, make([]int64, len(legs)))
					if err != nil && !errors.Is(err, teller.ErrInsufficientFunds) {
						t.Errorf("move %v: %v", legs, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	conserved(t, bind("reader", lease), n, n*initial)
}

// keyed makes the idempotency of one operation, with bodies that name the
// results or the refusal.
func keyed(key, fingerprint string) *teller.Keyed {
	return &teller.Keyed{
		Key: key, Fingerprint: fingerprint, SuccessStatus: 200,
		Success: func(r teller.Result) []byte { return fmt.Appendf(nil, `{"a":%d,"b":%d}`, r.A, r.B) },
		Refusal: func(err error) (int, []byte, bool) {
			code, _ := teller.CodeOf(err)
			return 409, fmt.Appendf(nil, `{"error_code":%d}`, code), !errors.Is(err, teller.ErrLocked)
		},
	}
}

// testIdempotent: a keyed operation is applied once however often it is
// repeated; its refusal is kept unless transient; the key reused for
// another operation is refused.
func testIdempotent(t *testing.T, newAccounts NewAccounts) {
	bind := newAccounts(t, 2, 100)
	ctx := context.Background()
	tl := newTeller(t, bind("a", lease), teller.Config{Mode: teller.ModeFailFast})
	tl2 := newTeller(t, bind("b", lease), teller.Config{Mode: teller.ModeFailFast})
	op := teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 30}
	k := keyed("k1", "transfer/1/2/30")

	first, err := tl.RunKeyed(ctx, op, k)
	if err != nil || first.Replayed || string(first.Body) != `{"a":70,"b":130}` || first.Status != 200 {
		t.Fatalf("first: %+v, %v", first, err)
	}
	for i, x := range []*teller.Teller{tl, tl2} {
		again, err := x.RunKeyed(ctx, op, k)
		if err != nil || !again.Replayed || string(again.Body) != string(first.Body) {
			t.Fatalf("repetition %d: %+v, %v", i, again, err)
		}
	}
	if bs := balances(t, bind("reader", lease), 2); !slices.Equal(bs, []int64{70, 130}) {
		t.Fatalf("balances %v, want [70 130]: applied once", bs)
	}
	// The key with another operation.
	var reused *teller.KeyReusedError
	if _, err := tl.RunKeyed(ctx, teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 31}, keyed("k1", "transfer/1/2/31")); !errors.As(err, &reused) ||
		!errors.Is(err, teller.ErrKeyReused) || reused.Fingerprint != "transfer/1/2/30" {
		t.Fatalf("the key reused: %v", err)
	}
	// A refusal is kept: the same key is refused the same way after the
	// funds arrived.
	big := teller.Op{Kind: teller.Withdraw, A: 1, Amount: 100}
	r, err := tl.RunKeyed(ctx, big, keyed("k2", "withdraw/1/100"))
	if err != nil || !errors.Is(r.Err, teller.ErrInsufficientFunds) || r.Status != 409 || r.Replayed {
		t.Fatalf("refusal: %+v, %v", r, err)
	}
	if _, err := tl.Run(ctx, teller.Op{Kind: teller.Deposit, A: 1, Amount: 30}); err != nil {
		t.Fatal(err)
	}
	if r2, err := tl2.RunKeyed(ctx, big, keyed("k2", "withdraw/1/100")); err != nil || !r2.Replayed || string(r2.Body) != string(r.Body) {
		t.Fatalf("refusal repeated: %+v, %v", r2, err)
	}
	// A transient refusal is not kept: repeated once the lock is free, the
	// operation is applied.
	other := bind("other", lease)
	g := lockAs(t, other, 2)
	if _, err := tl.RunKeyed(ctx, teller.Op{Kind: teller.Deposit, A: 2, Amount: 5}, keyed("k3", "deposit/2/5")); !errors.Is(err, teller.ErrLocked) {
		t.Fatalf("deposit to a locked account: %v, want ErrLocked", err)
	}
	if err := other.Unlock(ctx, 2, g.Fence); err != nil {
		t.Fatal(err)
	}
	if r, err := tl.RunKeyed(ctx, teller.Op{Kind: teller.Deposit, A: 2, Amount: 5}, keyed("k3", "deposit/2/5")); err != nil || r.Replayed || string(r.Body) != `{"a":135,"b":0}` {
		t.Fatalf("deposit repeated after the unlock: %+v, %v", r, err)
	}
}

// testIdempotentRace: duplicates of one keyed transfer run at once by
// several Tellers are applied once, and all answered the same.
func testIdempotentRace(t *testing.T, newAccounts NewAccounts) {
	bind := newAccounts(t, 2, 100)
	const tellers, each = 4, 4
	op := teller.Op{Kind: teller.Transfer, A: 1, B: 2, Amount: 10}
	var wg sync.WaitGroup
	bodies := make(chan string, tellers*each)
	for i := range tellers {
		holder := fmt.Sprintf("dup-%d", i)
		tl := newTeller(t, bind(holder, lease), teller.Config{Holder: holder, LockWait: 10 * time.Second})
		for range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := tl.RunKeyed(context.Background(), op, keyed("dup", "transfer/1/2/10"))
				if err != nil {
					t.Errorf("duplicate: %v", err)
					return
				}
				bodies <- string(a.Body)
			}()
		}
	}
	wg.Wait()
	close(bodies)
	for b := range bodies {
		if b != `{"a":90,"b":110}` {
			t.Errorf("a duplicate was answered %s", b)
		}
	}
	if bs := balances(t, bind("reader", lease), 2); !slices.Equal(bs, []int64{90, 110}) {
		t.Fatalf("balances %v, want [90 110]: applied once", bs)
	}
}
