package account

import (
	"errors"
	"math"
	"testing"
)

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
		if err == nil && (a.Balance() != tc.balance || a.Holder() != "") {
			t.Errorf("New(%d) = %+v, want free account with that balance", tc.balance, a)
		}
	}
}

// state is an account as the table describes it.
type state struct {
	balance int64
	holder  string
}

// op is one request the table applies to an account.
type op struct {
	name  string
	who   string
	value int64
}

func apply(a *Account, o op) error {
	switch o.name {
	case "lock":
		return a.Lock(o.who)
	case "unlock":
		return a.Unlock(o.who)
	case "write":
		return a.Write(o.who, o.value)
	}
	panic("unknown op " + o.name)
}

// TestRules lists every combination of lock state, caller and operation:
// the lock free, held by A; callers A, B and anonymous; lock, unlock and
// writes of a valid and a negative balance.
func TestRules(t *testing.T) {
	free := state{100, ""}
	heldA := state{100, "A"}
	tests := []struct {
		from state
		op   op
		err  error
		to   state
	}{
		// Lock: free or re-entrant succeeds, another holder fails fast.
		{free, op{"lock", "A", 0}, nil, heldA},
		{free, op{"lock", "", 0}, ErrNoHolder, free},
		{heldA, op{"lock", "A", 0}, nil, heldA},
		{heldA, op{"lock", "B", 0}, ErrLocked, heldA},
		{heldA, op{"lock", "", 0}, ErrNoHolder, heldA},
		// Unlock: a single unlock releases; free stays free; others refused.
		{free, op{"unlock", "A", 0}, nil, free},
		{free, op{"unlock", "", 0}, ErrNoHolder, free},
		{heldA, op{"unlock", "A", 0}, nil, free},
		{heldA, op{"unlock", "B", 0}, ErrLocked, heldA},
		{heldA, op{"unlock", "", 0}, ErrNoHolder, heldA},
		// Write: allowed while free or by the holder, never negative.
		{free, op{"write", "A", 7}, nil, state{7, ""}},
		{free, op{"write", "", 7}, nil, state{7, ""}},
		{free, op{"write", "A", 0}, nil, state{0, ""}},
		{free, op{"write", "A", math.MaxInt64}, nil, state{math.MaxInt64, ""}},
		{free, op{"write", "A", -1}, ErrNegativeBalance, free},
		{heldA, op{"write", "A", 7}, nil, state{7, "A"}},
		{heldA, op{"write", "A", -1}, ErrNegativeBalance, heldA},
		{heldA, op{"write", "B", 7}, ErrLocked, heldA},
		{heldA, op{"write", "B", -1}, ErrLocked, heldA},
		{heldA, op{"write", "", 7}, ErrLocked, heldA},
	}
	for _, tc := range tests {
		a := Account{balance: tc.from.balance, holder: tc.from.holder}
		err := apply(&a, tc.op)
		if !errors.Is(err, tc.err) {
			t.Errorf("%+v on %+v: error %v, want %v", tc.op, tc.from, err, tc.err)
		}
		if got := (state{a.Balance(), a.Holder()}); got != tc.to {
			t.Errorf("%+v on %+v: state %+v, want %+v", tc.op, tc.from, got, tc.to)
		}
	}
}

// TestInvariants drives an account through every sequence of up to four
// operations from a small alphabet and checks what must hold after each
// step: a refused operation changes nothing, the balance is never
// negative, and the holder is always one of the callers or free.
func TestInvariants(t *testing.T) {
	var alphabet []op
	for _, who := range []string{"A", "B", ""} {
		alphabet = append(alphabet, op{"lock", who, 0}, op{"unlock", who, 0})
		for _, v := range []int64{-5, 0, 42} {
			alphabet = append(alphabet, op{"write", who, v})
		}
	}
	var walk func(a Account, depth int, path []op)
	checked := 0
	walk = func(a Account, depth int, path []op) {
		if depth == 0 {
			return
		}
		for _, o := range alphabet {
			b := a
			err := apply(&b, o)
			checked++
			if err != nil && b != a {
				t.Fatalf("after %v: refused %+v (%v) changed %+v to %+v", path, o, err, a, b)
			}
			if b.Balance() < 0 {
				t.Fatalf("after %v then %+v: negative balance %d", path, o, b.Balance())
			}
			if h := b.Holder(); h != "" && h != "A" && h != "B" {
				t.Fatalf("after %v then %+v: holder %q", path, o, h)
			}
			if err == nil && o.name == "lock" && b.Holder() != o.who {
				t.Fatalf("after %v: granted %+v but holder is %q", path, o, b.Holder())
			}
			walk(b, depth-1, append(path, o))
		}
	}
	walk(Account{balance: 10}, 4, nil)
	if checked == 0 {
		t.Fatal("no sequence checked")
	}
}

func TestZeroAllocs(t *testing.T) {
	a := Account{balance: 1}
	allocs := testing.AllocsPerRun(1000, func() {
		_ = a.Lock("A")
		_ = a.Write("A", a.Balance()+1)
		_ = a.Lock("B")
		_ = a.Unlock("A")
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per lock/write/unlock, want 0", allocs)
	}
}
