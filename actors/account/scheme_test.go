package account

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestTxnOlder(t *testing.T) {
	for _, tc := range []struct {
		t, u Txn
		want bool
	}{
		{Txn{"A", 1}, Txn{"A", 2}, true},
		{Txn{"A", 2}, Txn{"A", 1}, false},
		{Txn{"B", 1}, Txn{"A", 2}, true},
		{Txn{"A", 5}, Txn{"B", 5}, true}, // a tie goes by holder
		{Txn{"B", 5}, Txn{"A", 5}, false},
		{Txn{"A", 5}, Txn{"A", 5}, false},
		{Txn{"A", 1 << 63}, Txn{"A", 0}, true}, // 0 is the youngest of all
		{Txn{"A", 0}, Txn{"A", ^uint64(0)}, false},
		{Txn{"A", ^uint64(0)}, Txn{"B", 0}, true},
	} {
		if got := tc.t.Older(tc.u); got != tc.want {
			t.Errorf("%v.Older(%v) = %v, want %v", tc.t, tc.u, got, tc.want)
		}
	}
}

func TestParseScheme(t *testing.T) {
	for _, s := range []Scheme{NoWait, Wait, WaitDie, WoundWait} {
		got, err := ParseScheme(s.String())
		if err != nil || got != s {
			t.Errorf("ParseScheme(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseScheme("detect"); err == nil {
		t.Error("ParseScheme(detect): no error (detection is the owner's, over Wait)")
	}
}

// always is a Claim whose callers are all still there.
func always(uint64) bool { return true }

// TestRequestOneConflict is the table of one request against a held lock:
// what each scheme decides for an older, a younger and the same
// transaction, with and without a pinned write.
func TestRequestOneConflict(t *testing.T) {
	holder := Txn{"H", 10}
	type want struct {
		queued  bool
		err     error
		holder  Txn    // after the request
		fence   uint64 // after the request
		wounded bool
	}
	held := want{queued: true, holder: holder, fence: 1}
	for _, tc := range []struct {
		scheme Scheme
		req    Txn
		pinned bool
		want   want
	}{
		{NoWait, Txn{"R", 5}, false, want{err: ErrLocked, holder: holder, fence: 1}},
		{NoWait, Txn{"R", 15}, false, want{err: ErrLocked, holder: holder, fence: 1}},
		{Wait, Txn{"R", 5}, false, held},
		{Wait, Txn{"R", 15}, false, held},
		{WaitDie, Txn{"R", 5}, false, held},
		{WaitDie, Txn{"R", 15}, false, want{err: ErrDied, holder: holder, fence: 1}},
		{WaitDie, Txn{"R", 5}, true, held},
		{WaitDie, Txn{"R", 15}, true, want{err: ErrDied, holder: holder, fence: 1}},
		{WaitDie, Txn{"R", 0}, false, want{err: ErrNoTimestamp, holder: holder, fence: 1}},
		{WoundWait, Txn{"R", 5}, false, want{holder: Txn{"R", 5}, fence: 2, wounded: true}},
		{WoundWait, Txn{"R", 15}, false, held},
		{WoundWait, Txn{"R", 5}, true, held}, // a pinned write is never wounded
		{WoundWait, Txn{"R", 0}, false, want{err: ErrNoTimestamp, holder: holder, fence: 1}},
		// One holder, another transaction: no re-entrance.
		{WaitDie, Txn{"H", 11}, false, want{err: ErrDied, holder: holder, fence: 1}},
		{WoundWait, Txn{"H", 9}, false, want{holder: Txn{"H", 9}, fence: 2, wounded: true}},
		{NoWait, Txn{"H", 11}, false, want{err: ErrLocked, holder: holder, fence: 1}},
		// The same transaction, or its holder without a timestamp: re-entrant.
		{WaitDie, holder, false, want{holder: holder, fence: 1}},
		{WoundWait, holder, false, want{holder: holder, fence: 1}},
		{NoWait, Txn{"H", 0}, false, want{holder: holder, fence: 1}},
		{Wait, Txn{"H", 0}, false, want{holder: holder, fence: 1}},
	} {
		name := fmt.Sprintf("%v %v→%v pinned=%v", tc.scheme, tc.req, holder, tc.pinned)
		a, _ := New(100)
		if _, _, err := a.Request(LockRequest{Txn: holder, Scheme: NoWait}, t0, always); err != nil {
			t.Fatal(err)
		}
		if tc.pinned {
			if err := a.Pin("H", 1, 50); err != nil {
				t.Fatal(err)
			}
		}
		queued, r, err := a.Request(LockRequest{Txn: tc.req, Scheme: tc.scheme, Ticket: 7, TTL: time.Second}, t0, always)
		if queued != tc.want.queued || !errors.Is(err, tc.want.err) {
			t.Errorf("%s: queued %v, err %v; want %v, %v", name, queued, err, tc.want.queued, tc.want.err)
		}
		if a.HolderTxn() != tc.want.holder || a.Fence() != tc.want.fence {
			t.Errorf("%s: held by %v fence %d; want %v %d", name, a.HolderTxn(), a.Fence(), tc.want.holder, tc.want.fence)
		}
		if wantW := tc.want.queued && err == nil; (a.Waiting() == 1) != wantW {
			t.Errorf("%s: %d waiting", name, a.Waiting())
		}
		if tc.want.wounded {
			if r.Wounded != holder || !r.Granted || r.Grant.Fence != 2 || !r.SetLease {
				t.Errorf("%s: Ready %+v; want the wound of H's grant 1 and a grant 2", name, r)
			}
			// The wounded transaction's commit is refused by its fence.
			if err := a.Pin("H", 1, 50); !errors.Is(err, ErrStaleFence) {
				t.Errorf("%s: wounded holder's Pin: %v, want ErrStaleFence", name, err)
			}
		} else if r.Wounded != (Txn{}) {
			t.Errorf("%s: Wounded %+v, want none", name, r.Wounded)
		}
	}
}

// TestRequestQueueOrders: wait-die queues youngest first, wound-wait
// oldest first, wait in arrival order; each is granted in that order.
func TestRequestQueueOrders(t *testing.T) {
	for _, tc := range []struct {
		scheme Scheme
		holder uint64
		arrive []uint64 // timestamps, in arrival order
		died   []uint64
		grants []uint64 // the order the lock passes in
	}{
		{Wait, 10, []uint64{5, 12, 3, 8}, nil, []uint64{5, 12, 3, 8}},
		{WaitDie, 10, []uint64{5, 12, 3, 8, 11}, []uint64{12, 11}, []uint64{8, 5, 3}},
		{WoundWait, 1, []uint64{5, 12, 3, 8}, nil, []uint64{3, 5, 8, 12}},
	} {
		a, _ := New(0)
		if _, _, err := a.Request(LockRequest{Txn: Txn{"T", tc.holder}, Scheme: NoWait}, t0, always); err != nil {
			t.Fatal(err)
		}
		var died []uint64
		for _, ts := range tc.arrive {
			_, _, err := a.Request(LockRequest{Txn: Txn{"T", ts}, Scheme: tc.scheme, Ticket: ts}, t0, always)
			if errors.Is(err, ErrDied) {
				died = append(died, ts)
			} else if err != nil {
				t.Fatalf("%v: %v", tc.scheme, err)
			}
		}
		var grants []uint64
		for a.Holder() != "" {
			r, err := a.Release("T", a.Fence(), t0, always)
			if err != nil {
				t.Fatal(err)
			}
			if r.Granted {
				if r.Grant.Ticket != a.HolderTxn().TS {
					t.Fatalf("%v: grant to ticket %d, held by %v", tc.scheme, r.Grant.Ticket, a.HolderTxn())
				}
				grants = append(grants, r.Grant.Ticket)
			}
		}
		if !slices.Equal(died, tc.died) || !slices.Equal(grants, tc.grants) {
			t.Errorf("%v: died %v granted %v; want %v %v", tc.scheme, died, grants, tc.died, tc.grants)
		}
	}
}

func TestVersion(t *testing.T) {
	a, _ := New(10)
	v := a.Version()
	if v == 0 {
		t.Fatal("a new account's version is 0, which names no version")
	}
	if _, _, err := a.Request(LockRequest{Txn: Txn{"A", 1}, Version: v + 1}, t0, always); !errors.Is(err, ErrChanged) || a.Holder() != "" {
		t.Fatalf("a stale version: %v, held by %q; want ErrChanged, free", err, a.Holder())
	}
	if _, _, err := a.Request(LockRequest{Txn: Txn{"A", 1}, Version: v}, t0, always); err != nil || a.Holder() != "A" {
		t.Fatalf("the current version: %v, held by %q", err, a.Holder())
	}
	if err := a.Write("A", a.Fence(), 20); err != nil {
		t.Fatal(err)
	}
	if a.Version() == v {
		t.Fatal("a write left the version as it was")
	}
	// A refused write, or a lock, changes no version.
	w := a.Version()
	_ = a.Write("A", a.Fence(), -1)
	_, _ = a.Lock("A", 0, 0, t0)
	if a.Version() != w {
		t.Fatalf("version %d after a refused write and a renewal, want %d", a.Version(), w)
	}
	// Restore's versions grow with the fence epoch: a version read before
	// a restart never names a balance after it.
	r, _ := Restore(20, 2<<32)
	if r.Version() <= w || r.Version() <= 2<<32 {
		t.Fatalf("Restore(…, 2<<32) version %d", r.Version())
	}
}

// TestSchemesNeverDeadlock runs random transactions of 2–4 accounts,
// locked in request order (cycles are likely), over a few accounts under
// each scheme, scheduling one step of a random runnable transaction at a
// time, and checks after every step that the waits-for graph (each waiter
// waits for its account's holder) has no cycle, and that every
// transaction commits in the end. A dying or wounded transaction aborts,
// releasing all it holds, and retries under its first timestamp. Plain
// Wait must fail the same check: that shows the check can fail.
func TestSchemesNeverDeadlock(t *testing.T) {
	for _, scheme := range []Scheme{WaitDie, WoundWait, Wait} {
		deadlocked, retries := 0, 0
		for seed := range uint64(200) {
			n, err := simulate(scheme, seed)
			retries += n
			if err != nil {
				if scheme != Wait {
					t.Fatalf("%v, seed %d: %v", scheme, seed, err)
				}
				deadlocked++
			}
		}
		if scheme == Wait && deadlocked == 0 {
			t.Error("plain wait never deadlocked in request order: the check cannot fail")
		}
		if scheme != Wait && retries == 0 {
			t.Errorf("%v: no transaction ever aborted: the conflicts were never exercised", scheme)
		}
		t.Logf("%v: %d of 200 runs deadlocked, %d aborts", scheme, deadlocked, retries)
	}
}

type simTxn struct {
	txn     Txn
	accts   []int // in request order
	held    []int // accounts it holds, with their fences
	fences  []uint64
	waiting int // account it waits for, -1: none
	done    bool
	retries int
}

func simulate(scheme Scheme, seed uint64) (retries int, err error) {
	rng := rand.New(rand.NewPCG(seed, 13))
	accts := make([]Account, 4)
	for i := range accts {
		accts[i], _ = New(1000)
	}
	txns := make([]*simTxn, 8)
	byTicket := map[uint64]*simTxn{}
	for i := range txns {
		n := 2 + rng.IntN(3)
		tx := &simTxn{txn: Txn{Holder: "B", TS: uint64(i + 1)}, waiting: -1}
		for _, p := range rng.Perm(len(accts))[:n] {
			tx.accts = append(tx.accts, p)
		}
		txns[i] = tx
		byTicket[tx.txn.TS] = tx
	}
	// granted takes a Ready's grant to the waiter it names.
	granted := func(acct int, r Ready) {
		if r.Granted {
			w := byTicket[r.Grant.Ticket]
			w.held, w.fences, w.waiting = append(w.held, acct), append(w.fences, r.Grant.Fence), -1
		}
	}
	release := func(tx *simTxn) error {
		for j, acct := range tx.held {
			r, err := accts[acct].Release(tx.txn.Holder, tx.fences[j], t0, always)
			if err != nil && !errors.Is(err, ErrStaleFence) { // wounded: not held any more
				return fmt.Errorf("release: %w", err)
			}
			granted(acct, r)
		}
		tx.held, tx.fences = tx.held[:0], tx.fences[:0]
		return nil
	}
	for step := 0; ; step++ {
		if step > 100_000 {
			return retries, errors.New("no progress in 100,000 steps (livelock)")
		}
		if err := acyclic(accts); err != nil {
			return retries, err
		}
		var runnable []*simTxn
		for _, tx := range txns {
			if !tx.done && tx.waiting < 0 {
				runnable = append(runnable, tx)
			}
		}
		if len(runnable) == 0 {
			for _, tx := range txns {
				if !tx.done {
					return retries, errors.New("every live transaction waits: deadlock")
				}
			}
			return retries, nil
		}
		tx := runnable[rng.IntN(len(runnable))]
		if len(tx.held) < len(tx.accts) {
			acct := tx.accts[len(tx.held)]
			queued, r, err := accts[acct].Request(LockRequest{Txn: tx.txn, Scheme: scheme, Ticket: tx.txn.TS}, t0, always)
			switch {
			case errors.Is(err, ErrDied):
				tx.retries++
				retries++
				if err := release(tx); err != nil {
					return retries, err
				}
			case err != nil:
				return retries, err
			case queued:
				tx.waiting = acct
			default:
				granted(acct, r)
			}
			continue
		}
		// Every lock held: commit, pinning each write first, as an
		// actor's Apply does; a wounded grant refuses its pin.
		wounded := false
		for j, acct := range tx.held {
			if err := accts[acct].Pin(tx.txn.Holder, tx.fences[j], accts[acct].Balance()); err != nil {
				if !errors.Is(err, ErrStaleFence) {
					return retries, err
				}
				wounded = true
				for _, p := range tx.held[:j] {
					accts[p].Unpin()
				}
				break
			}
		}
		if wounded {
			tx.retries++
			retries++
			if err := release(tx); err != nil {
				return retries, err
			}
			continue
		}
		for j, acct := range tx.held {
			granted(acct, accts[acct].Settle(true, tx.txn.Holder, tx.fences[j], t0, always))
		}
		tx.held, tx.fences, tx.done = nil, nil, true
	}
}

// acyclic checks that the waits-for graph of accts has no cycle: each
// transaction waits for at most one holder, so following the edges from
// any waiter must end.
func acyclic(accts []Account) error {
	next := map[uint64]uint64{}
	for i := range accts {
		h := accts[i].HolderTxn().TS
		for _, w := range accts[i].queue {
			next[w.ts] = h
		}
	}
	for start := range next {
		seen := map[uint64]bool{}
		for ts, ok := start, true; ok; ts, ok = next[ts] {
			if seen[ts] {
				return fmt.Errorf("cycle of waits through transaction %d", ts)
			}
			seen[ts] = true
		}
	}
	return nil
}
