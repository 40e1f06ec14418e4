package account

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		balance int64
		err     error
	}{
		{0, nil}, {1000, nil}, {math.MaxInt64, nil},
		{-1, ErrNegativeBalance}, {math.MinInt64, ErrNegativeBalance},
	} {
		a, err := New(tc.balance)
		if !errors.Is(err, tc.err) {
			t.Errorf("New(%d) error = %v, want %v", tc.balance, err, tc.err)
			continue
		}
		if err == nil && (a.Balance() != tc.balance || a.Holder() != "" || a.Fence() != 0) {
			t.Errorf("New(%d) = %+v, want free account with that balance", tc.balance, a)
		}
	}
	a, err := Restore(5, 41)
	if err != nil || a.Balance() != 5 || a.Fence() != 41 || a.Holder() != "" {
		t.Fatalf("Restore = %+v, %v", a, err)
	}
	if g, err := a.Lock("A", 0, 0, t0); err != nil || g.Fence != 42 {
		t.Fatalf("first grant after Restore(…, 41): %+v, %v; want fence 42", g, err)
	}
}

// state is an account as the tables describe it (queue aside).
type state struct {
	balance int64
	holder  string
	fence   uint64
}

func (a *Account) state() state { return state{a.balance, a.holder, a.fence} }

// op is one request a table applies.
type op struct {
	name  string // lock, unlock, write, overdraft (PinOverdraft and Commit)
	who   string
	fence uint64
	value int64
}

func apply(a *Account, o op) error {
	var err error
	switch o.name {
	case "lock":
		_, err = a.Lock(o.who, o.fence, 0, t0)
	case "unlock":
		_, _, err = a.Unlock(o.who, o.fence, t0)
	case "write":
		err = a.Write(o.who, o.fence, o.value)
	case "overdraft":
		if err = a.PinOverdraft(o.who, o.fence, o.value); err == nil {
			a.Commit()
		}
	default:
		panic("unknown op " + o.name)
	}
	return err
}

// TestRules lists every combination of lock state (free after no grant,
// free after grant 3, held by A with fence 3), caller (A, B, anonymous),
// fence (none, current, older, newer) and operation.
func TestRules(t *testing.T) {
	fresh := state{100, "", 0}
	free := state{100, "", 3}
	heldA := state{100, "A", 3}
	tests := []struct {
		from state
		op   op
		err  error
		to   state
	}{
		// Lock, unfenced: free or re-entrant succeeds, another fails fast.
		{fresh, op{"lock", "A", 0, 0}, nil, state{100, "A", 1}},
		{free, op{"lock", "A", 0, 0}, nil, state{100, "A", 4}},
		{free, op{"lock", "", 0, 0}, ErrNoHolder, free},
		{heldA, op{"lock", "A", 0, 0}, nil, heldA}, // re-entrant: same fence
		{heldA, op{"lock", "B", 0, 0}, ErrLocked, heldA},
		{heldA, op{"lock", "", 0, 0}, ErrNoHolder, heldA},
		// Lock, fenced: renews only the grant it names.
		{heldA, op{"lock", "A", 3, 0}, nil, heldA},
		{heldA, op{"lock", "A", 2, 0}, ErrStaleFence, heldA},
		{heldA, op{"lock", "A", 4, 0}, ErrStaleFence, heldA},
		{heldA, op{"lock", "B", 3, 0}, ErrStaleFence, heldA},
		{free, op{"lock", "A", 3, 0}, ErrStaleFence, free},
		// Unlock: a single unlock releases; free stays free; others refused.
		{free, op{"unlock", "A", 0, 0}, nil, free},
		{free, op{"unlock", "", 0, 0}, ErrNoHolder, free},
		{heldA, op{"unlock", "A", 0, 0}, nil, free},
		{heldA, op{"unlock", "A", 3, 0}, nil, free},
		{heldA, op{"unlock", "A", 2, 0}, ErrStaleFence, heldA},
		{heldA, op{"unlock", "B", 0, 0}, ErrLocked, heldA},
		{heldA, op{"unlock", "B", 3, 0}, ErrStaleFence, heldA},
		{heldA, op{"unlock", "", 0, 0}, ErrNoHolder, heldA},
		{free, op{"unlock", "A", 3, 0}, ErrStaleFence, free}, // its lease ran out
		// Write, unfenced: allowed while free or by the holder; never negative.
		{free, op{"write", "A", 0, 7}, nil, state{7, "", 3}},
		{free, op{"write", "", 0, 7}, nil, state{7, "", 3}},
		{free, op{"write", "A", 0, 0}, nil, state{0, "", 3}},
		{free, op{"write", "A", 0, math.MaxInt64}, nil, state{math.MaxInt64, "", 3}},
		{free, op{"write", "A", 0, -1}, ErrNegativeBalance, free},
		{heldA, op{"write", "A", 0, 7}, nil, state{7, "A", 3}},
		{heldA, op{"write", "A", 0, -1}, ErrNegativeBalance, heldA},
		{heldA, op{"write", "B", 0, 7}, ErrLocked, heldA},
		{heldA, op{"write", "B", 0, -1}, ErrLocked, heldA},
		{heldA, op{"write", "", 0, 7}, ErrLocked, heldA},
		// Write, fenced: only the grant in force.
		{heldA, op{"write", "A", 3, 7}, nil, state{7, "A", 3}},
		{heldA, op{"write", "A", 2, 7}, ErrStaleFence, heldA},
		{heldA, op{"write", "A", 9, 7}, ErrStaleFence, heldA},
		{heldA, op{"write", "B", 3, 7}, ErrStaleFence, heldA},
		{free, op{"write", "A", 3, 7}, ErrStaleFence, free},
		{heldA, op{"write", "A", 3, -1}, ErrNegativeBalance, heldA},
		// Overdraft: the original's setSaldo, any balance, the same lock rules.
		{free, op{"overdraft", "B", 0, -7}, nil, state{-7, "", 3}},
		{heldA, op{"overdraft", "A", 3, -7}, nil, state{-7, "A", 3}},
		{heldA, op{"overdraft", "A", 0, -7}, nil, state{-7, "A", 3}},
		{heldA, op{"overdraft", "B", 0, -7}, ErrLocked, heldA},
		{heldA, op{"overdraft", "A", 2, -7}, ErrStaleFence, heldA},
	}
	for _, tc := range tests {
		a := Account{balance: tc.from.balance, holder: tc.from.holder, fence: tc.from.fence}
		err := apply(&a, tc.op)
		if !errors.Is(err, tc.err) {
			t.Errorf("%+v on %+v: error %v, want %v", tc.op, tc.from, err, tc.err)
		}
		if got := a.state(); got != tc.to {
			t.Errorf("%+v on %+v: state %+v, want %+v", tc.op, tc.from, got, tc.to)
		}
	}
}

func TestLease(t *testing.T) {
	var a Account
	g, err := a.Lock("A", 0, time.Second, t0)
	if err != nil || g.Expires != t0.Add(time.Second) || g.Fence != 1 {
		t.Fatalf("grant %+v, %v", g, err)
	}
	// A timer that fires early, or names another grant, changes nothing.
	for _, tc := range []struct {
		fence uint64
		now   time.Time
	}{{1, t0.Add(999 * time.Millisecond)}, {0, t0.Add(time.Hour)}, {2, t0.Add(time.Hour)}} {
		if expired, _, _ := a.Expire(tc.fence, tc.now); expired || a.Holder() != "A" {
			t.Fatalf("Expire(%d, %v) ended the lease", tc.fence, tc.now)
		}
	}
	// Renewal moves the end; the old end no longer expires it.
	if g, err := a.Lock("A", 1, 2*time.Second, t0.Add(500*time.Millisecond)); err != nil || g.Expires != t0.Add(2500*time.Millisecond) || g.Fence != 1 {
		t.Fatalf("renewal %+v, %v", g, err)
	}
	if expired, _, _ := a.Expire(1, t0.Add(time.Second)); expired {
		t.Fatal("renewed lease expired at its old end")
	}
	if expired, _, granted := a.Expire(1, t0.Add(2500*time.Millisecond)); !expired || granted || a.Holder() != "" || !a.Expires().IsZero() {
		t.Fatalf("lease did not end at its end: %+v", a)
	}
	if err := a.Write("A", 1, 5); !errors.Is(err, ErrStaleFence) {
		t.Fatalf("write by the expired holder: %v, want ErrStaleFence", err)
	}
	// No lease: never expires.
	g, _ = a.Lock("B", 0, 0, t0)
	if expired, _, _ := a.Expire(g.Fence, t0.Add(1000*time.Hour)); expired || !g.Expires.IsZero() {
		t.Fatal("a grant without lease expired")
	}
}

func TestQueueFIFO(t *testing.T) {
	var a Account
	if g, queued, err := a.Enqueue("A", 1, 0, t0); err != nil || queued || g.Holder != "A" || g.Ticket != 0 {
		t.Fatalf("enqueue on a free lock: %+v %v %v", g, queued, err)
	}
	for i, who := range []string{"B", "C", "D", "E"} {
		if _, queued, err := a.Enqueue(who, uint64(i+2), time.Second, t0); !queued || err != nil {
			t.Fatalf("%s not queued: %v", who, err)
		}
	}
	// The holder re-entering is granted at once, ahead of the queue.
	if _, queued, err := a.Enqueue("A", 9, 0, t0); queued || err != nil {
		t.Fatalf("re-entrant enqueue queued=%v err=%v", queued, err)
	}
	if _, err := a.Lock("F", 0, 0, t0); !errors.Is(err, ErrLocked) {
		t.Fatalf("fail-fast lock while queued: %v", err)
	}
	if !a.Abandon(4) || a.Abandon(4) || a.Abandon(99) || a.Waiting() != 3 {
		t.Fatalf("abandon: waiting %d", a.Waiting())
	}
	var order []string
	fence := a.Fence()
	who := "A"
	for {
		next, granted, err := a.Unlock(who, fence, t0)
		if err != nil {
			t.Fatal(err)
		}
		if !granted {
			break
		}
		if next.Fence != fence+1 || next.Expires != t0.Add(time.Second) || next.Ticket == 0 {
			t.Fatalf("grant %+v after fence %d", next, fence)
		}
		order = append(order, next.Holder)
		who, fence = next.Holder, next.Fence
	}
	if !slices.Equal(order, []string{"B", "C", "E"}) {
		t.Fatalf("grant order %v, want [B C E] (D abandoned)", order)
	}
	if a.Holder() != "" || a.Waiting() != 0 {
		t.Fatalf("not free at the end: %+v", a)
	}
	// Expiry hands the lock to the next waiter too.
	g, _ := a.Lock("X", 0, time.Second, t0)
	a.Enqueue("Y", 20, 0, t0)
	expired, next, granted := a.Expire(g.Fence, t0.Add(time.Second))
	if !expired || !granted || next.Holder != "Y" || next.Ticket != 20 || next.Fence != g.Fence+1 {
		t.Fatalf("expiry with a waiter: %v %+v %v", expired, next, granted)
	}
	if _, _, err := a.Enqueue("Z", 0, 0, t0); err == nil {
		t.Fatal("ticket 0 accepted")
	}
}

// TestInvariants drives an account through every sequence of up to four
// operations from an alphabet of locks, queued locks, abandons, unlocks,
// expiries and writes, fenced and not, and checks after each step what must
// always hold: a refused operation changes nothing; the balance is never
// negative; at most one holder, one of the callers; the fence never
// decreases and grows with every new holder; waiters only while held.
func TestInvariants(t *testing.T) {
	type step struct {
		name  string
		who   string
		fence uint64
		value int64
	}
	var alphabet []step
	for _, who := range []string{"A", "B", ""} {
		for _, f := range []uint64{0, 1, 2} {
			alphabet = append(alphabet, step{"lock", who, f, 0}, step{"unlock", who, f, 0}, step{"write", who, f, 42}, step{"write", who, f, -5})
		}
		alphabet = append(alphabet, step{"enqueue", who, 0, 0})
	}
	alphabet = append(alphabet, step{"abandon", "", 0, 0}, step{"expire", "", 1, 0}, step{"expire", "", 2, 0})
	alphabet = append(alphabet, step{"pin", "A", 1, 7}, step{"pin", "A", 0, -1}, step{"pin", "B", 0, 9}, step{"commit", "", 0, 0}, step{"unpin", "", 0, 0})

	clone := func(a Account) Account { a.queue = slices.Clone(a.queue); return a }
	equal := func(a, b Account) bool {
		return a.balance == b.balance && a.holder == b.holder && a.fence == b.fence && a.expires == b.expires &&
			slices.Equal(a.queue, b.queue) && a.hasPinned == b.hasPinned && a.pinned == b.pinned
	}
	checked := 0
	var walk func(a Account, depth int, path []step)
	walk = func(a Account, depth int, path []step) {
		if depth == 0 {
			return
		}
		for _, s := range alphabet {
			b := clone(a)
			now := t0.Add(time.Duration(len(path)) * time.Second)
			var err error
			switch s.name {
			case "lock":
				_, err = b.Lock(s.who, s.fence, time.Second, now)
			case "unlock":
				_, _, err = b.Unlock(s.who, s.fence, now)
			case "write":
				err = b.Write(s.who, s.fence, s.value)
			case "enqueue":
				_, _, err = b.Enqueue(s.who, uint64(100+len(path)), time.Second, now)
			case "abandon":
				b.Abandon(uint64(100 + len(path) - 1))
			case "expire":
				b.Expire(s.fence, now)
			case "pin":
				err = b.Pin(s.who, s.fence, s.value)
			case "commit":
				if !b.Commit() {
					err = errors.New("nothing pinned")
				}
			case "unpin":
				b.Unpin()
			}
			checked++
			where := func() string { return fmt.Sprintf("after %v then %+v", path, s) }
			if err != nil && !equal(a, b) {
				t.Fatalf("%s: refused (%v) but changed %+v to %+v", where(), err, a, b)
			}
			if b.balance < 0 {
				t.Fatalf("%s: negative balance", where())
			}
			if h := b.holder; h != "" && h != "A" && h != "B" {
				t.Fatalf("%s: holder %q", where(), h)
			}
			if b.fence < a.fence || (b.holder != "" && b.holder != a.holder && b.fence <= a.fence) {
				t.Fatalf("%s: fence %d -> %d with holder %q -> %q", where(), a.fence, b.fence, a.holder, b.holder)
			}
			if len(b.queue) > 0 && b.holder == "" {
				t.Fatalf("%s: waiters while free", where())
			}
			if a.hasPinned && (b.holder != a.holder || b.fence != a.fence || (b.balance != a.balance && s.name != "commit")) {
				t.Fatalf("%s: pinned account changed hands or balance: %+v -> %+v", where(), a, b)
			}
			if b.hasPinned && b.pinned < 0 {
				t.Fatalf("%s: negative balance pinned", where())
			}
			walk(b, depth-1, append(path, s))
		}
	}
	walk(Account{balance: 10}, 4, nil)
	if checked < 1000 {
		t.Fatalf("only %d steps checked", checked)
	}
}

func TestPinCommitUnpin(t *testing.T) {
	var a Account
	g, _ := a.Lock("A", 0, time.Second, t0)
	if err := a.Pin("A", g.Fence, 50); err != nil {
		t.Fatal(err)
	}
	if a.Balance() != 0 || !a.Pinned() {
		t.Fatal("pin applied the write early")
	}
	// While pinned: no second pin, write, unlock or expiry.
	if err := a.Pin("A", g.Fence, 60); !errors.Is(err, ErrBusy) {
		t.Fatalf("second pin: %v", err)
	}
	if err := a.Write("A", g.Fence, 60); !errors.Is(err, ErrBusy) {
		t.Fatalf("write while pinned: %v", err)
	}
	if _, _, err := a.Unlock("A", g.Fence, t0); !errors.Is(err, ErrBusy) {
		t.Fatalf("unlock while pinned: %v", err)
	}
	if expired, _, _ := a.Expire(g.Fence, t0.Add(time.Hour)); expired {
		t.Fatal("lease expired while pinned")
	}
	if !a.Commit() || a.Balance() != 50 || a.Pinned() || a.Commit() {
		t.Fatalf("commit: %+v", a)
	}
	// Unpin drops the write; the lease can then end.
	if err := a.Pin("A", g.Fence, 70); err != nil {
		t.Fatal(err)
	}
	a.Unpin()
	if a.Balance() != 50 || a.Pinned() {
		t.Fatalf("unpin: %+v", a)
	}
	if expired, _, _ := a.Expire(g.Fence, t0.Add(time.Hour)); !expired {
		t.Fatal("lease did not end after unpin")
	}
	for _, tc := range []struct {
		who     string
		fence   uint64
		balance int64
		err     error
	}{{"B", 0, 1, nil}, {"A", g.Fence, 1, ErrStaleFence}, {"B", 0, -1, ErrNegativeBalance}} {
		b := a
		if err := b.Pin(tc.who, tc.fence, tc.balance); !errors.Is(err, tc.err) {
			t.Errorf("Pin(%q, %d, %d) on a free account: %v, want %v", tc.who, tc.fence, tc.balance, err, tc.err)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	a := Account{balance: 1}
	allocs := testing.AllocsPerRun(1000, func() {
		g, _ := a.Lock("A", 0, time.Second, t0)
		_ = a.Write("A", g.Fence, a.Balance()+1)
		_, _ = a.Lock("B", 0, 0, t0)
		a.Expire(g.Fence, t0)
		_, _, _ = a.Unlock("A", g.Fence, t0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per lock/write/unlock, want 0", allocs)
	}
}

func TestRestoreOverdrawn(t *testing.T) {
	a := RestoreOverdrawn(-40, 9)
	if a.Balance() != -40 || a.Fence() != 9 || a.Holder() != "" {
		t.Fatalf("RestoreOverdrawn(-40, 9): balance %d, fence %d, holder %q", a.Balance(), a.Fence(), a.Holder())
	}
	if err := a.Write("A", 0, -1); !errors.Is(err, ErrNegativeBalance) {
		t.Fatalf("Write of a negative balance on an overdrawn account: %v, want ErrNegativeBalance", err)
	}
}
