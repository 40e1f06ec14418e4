package account_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/bank/gobank/actors/account"
)

// FuzzAccount decodes its input as a sequence of messages to one account
// (lock, enqueue, abandon, unlock, expire, pin, commit, unpin, write, and
// time moving forward), from a small set of holders, and checks after every
// step both a reference model of the rules (written independently from the
// documentation of package account) and the invariants the bank relies on:
//
//   - at most one holder, and waiters only while the lock is held;
//   - fences never decrease, and every new holder gets a larger fence;
//   - the balance is never negative;
//   - a refused operation changes nothing;
//   - queued waiters are granted in arrival order (FIFO), abandoned ones
//     skipped;
//   - while a write is pinned the grant (holder and fence) cannot change.
func FuzzAccount(f *testing.F) {
	// Each message is an opcode byte followed by its operands (see step).
	f.Add(int64(1000), uint64(0), []byte{})
	f.Add(int64(1000), uint64(0), []byte{0, 1, 0, 2, 1, 2, 0, 3, 1, 0, 3, 1, 1})
	// lock A, enqueue B and C, abandon B, unlock A: C must get it.
	f.Add(int64(5), uint64(7), []byte{0, 1, 0, 0, 1, 2, 0, 1, 3, 0, 2, 0, 3, 1, 0})
	// lock A with a lease, enqueue B, time passes, expire: B gets it.
	f.Add(int64(0), uint64(1<<32), []byte{0, 1, 0, 3, 1, 2, 0, 2, 9, 200, 4, 1})
	// pin under A's grant, try to unlock/expire/lock as B, commit.
	f.Add(int64(10), uint64(0), []byte{0, 1, 0, 1, 1, 2, 0, 1, 5, 1, 1, 7, 9, 255, 4, 1, 3, 1, 1, 0, 2, 0, 0, 6, 3, 1, 1})
	// unfenced write to the free account, negative write, write under a stale fence.
	f.Add(int64(3), uint64(0), []byte{8, 1, 0, 42, 8, 1, 0, 200, 0, 2, 0, 0, 3, 2, 0, 0, 2, 8, 2, 2, 9})
	f.Add(int64(-1), uint64(0), []byte{0, 1, 0})
	f.Add(int64(math.MaxInt64), uint64(math.MaxUint64-2), []byte{0, 1, 0, 0, 3, 1, 0, 1, 0, 0, 3, 1, 1, 0, 2, 0, 0})

	f.Fuzz(func(t *testing.T, initial int64, fence0 uint64, prog []byte) {
		a, err := account.Restore(initial, fence0)
		if initial < 0 {
			if !errors.Is(err, account.ErrNegativeBalance) {
				t.Fatalf("Restore(%d) = %v, want ErrNegativeBalance", initial, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Restore(%d, %d): %v", initial, fence0, err)
		}
		if fence0 > math.MaxUint64-uint64(len(prog)) {
			// A fence this close to the top would wrap after len(prog)
			// grants; the bank's fences are epoch<<32 + grants.
			return
		}
		r := runner{t: t, a: &a, m: model{balance: initial, fence: fence0}, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), prog: prog}
		for i := 0; r.pc < len(prog) && i < 512; i++ {
			r.step()
		}
	})
}

var holders = []string{"", "A", "B", "C"}

type mwaiter struct {
	who    string
	ticket uint64
	ttl    time.Duration
}

// model is a reference implementation of the documented rules.
type model struct {
	balance int64
	holder  string
	fence   uint64
	expires time.Time
	queue   []mwaiter
	pinned  bool
	pinVal  int64
}

func (m *model) check(who string, fence uint64) error {
	if fence != 0 {
		if m.holder != who || m.fence != fence {
			return account.ErrStaleFence
		}
		return nil
	}
	if m.holder != "" && m.holder != who {
		return account.ErrLocked
	}
	return nil
}

func lease(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

func (m *model) lock(who string, fence uint64, ttl time.Duration, now time.Time) (account.Grant, error) {
	if who == "" {
		return account.Grant{}, account.ErrNoHolder
	}
	if err := m.check(who, fence); err != nil {
		return account.Grant{}, err
	}
	if m.pinned && m.holder != who {
		return account.Grant{}, account.ErrBusy
	}
	if m.holder == "" {
		m.holder = who
		m.fence++
	}
	m.expires = lease(now, ttl)
	return account.Grant{Holder: m.holder, Fence: m.fence, Expires: m.expires}, nil
}

func (m *model) release(now time.Time) (account.Grant, bool) {
	m.holder, m.expires = "", time.Time{}
	if len(m.queue) == 0 {
		return account.Grant{}, false
	}
	w := m.queue[0]
	m.queue = m.queue[1:]
	m.holder = w.who
	m.fence++
	m.expires = lease(now, w.ttl)
	return account.Grant{Holder: m.holder, Fence: m.fence, Expires: m.expires, Ticket: w.ticket}, true
}

// snapshot is everything observable of an account.
type snapshot struct {
	balance       int64
	holder        string
	fence         uint64
	expires       time.Time
	waiting       int
	pinned        bool
	pinnedBalance int64
}

func snap(a *account.Account) snapshot {
	s := snapshot{a.Balance(), a.Holder(), a.Fence(), a.Expires(), a.Waiting(), a.Pinned(), 0}
	if s.pinned {
		s.pinnedBalance = a.PinnedBalance()
	}
	return s
}

func (m *model) snap() snapshot {
	s := snapshot{m.balance, m.holder, m.fence, m.expires, len(m.queue), m.pinned, 0}
	if m.pinned {
		s.pinnedBalance = m.pinVal
	}
	return s
}

type runner struct {
	t       *testing.T
	a       *account.Account
	m       model
	now     time.Time
	prog    []byte
	pc      int
	tickets []uint64 // every ticket issued, for Abandon
	next    uint64
	log     []string
}

func (r *runner) byte() byte {
	if r.pc >= len(r.prog) {
		r.pc++
		return 0
	}
	b := r.prog[r.pc]
	r.pc++
	return b
}

func (r *runner) holder() string { return holders[int(r.byte())%len(holders)] }

// fence picks no fence, the current one, an older one or a future one.
func (r *runner) fence() uint64 {
	switch r.byte() % 4 {
	case 0:
		return 0
	case 1:
		return r.a.Fence()
	case 2:
		if f := r.a.Fence(); f > 1 {
			return f - 1
		}
		return 1
	default:
		return r.a.Fence() + 1
	}
}

func (r *runner) ttl() time.Duration {
	b := r.byte()
	switch b % 4 {
	case 0:
		return 0
	case 1:
		return -time.Duration(b) * time.Millisecond
	default:
		return time.Duration(b) * time.Millisecond
	}
}

func (r *runner) balance() int64 {
	b := r.byte()
	switch {
	case b == 255:
		return math.MaxInt64
	case b == 254:
		return math.MinInt64
	case b >= 200:
		return -int64(b - 199)
	}
	return int64(b)
}

func sameErr(got, want error) bool {
	if want == nil || got == nil {
		return got == want
	}
	return errors.Is(got, want)
}

func (r *runner) step() {
	t := r.t
	before := snap(r.a)
	op := r.byte() % 10
	var refused bool
	var grant *account.Grant // a grant to a queued waiter, by Unlock or Expire
	switch op {
	case 0: // Lock
		who, fence, ttl := r.holder(), r.fence(), r.ttl()
		g, err := r.a.Lock(who, fence, ttl, r.now)
		mg, merr := r.m.lock(who, fence, ttl, r.now)
		r.logf("Lock(%q, %d, %v) = %+v, %v", who, fence, ttl, g, err)
		if !sameErr(err, merr) || (err == nil && g != mg) {
			t.Fatalf("%s\nLock: want %+v, %v", r.trace(), mg, merr)
		}
		refused = err != nil
	case 1: // Enqueue
		who, ttl := r.holder(), r.ttl()
		r.next++
		ticket := r.next
		r.tickets = append(r.tickets, ticket)
		g, queued, err := r.a.Enqueue(who, ticket, ttl, r.now)
		r.logf("Enqueue(%q, %d, %v) = %+v, %v, %v", who, ticket, ttl, g, queued, err)
		mg, merr := r.m.lock(who, 0, ttl, r.now)
		mqueued := false
		if errors.Is(merr, account.ErrLocked) {
			r.m.queue = append(r.m.queue, mwaiter{who, ticket, ttl})
			mg, merr, mqueued = account.Grant{}, nil, true
		}
		if !sameErr(err, merr) || queued != mqueued || g != mg {
			t.Fatalf("%s\nEnqueue: want %+v, %v, %v", r.trace(), mg, mqueued, merr)
		}
		if queued && r.a.Holder() == "" {
			t.Fatalf("%s\nqueued on a free account", r.trace())
		}
		refused = err != nil
	case 2: // Abandon
		var ticket uint64
		if n := len(r.tickets); n > 0 {
			ticket = r.tickets[int(r.byte())%n]
		}
		ok := r.a.Abandon(ticket)
		i := slices.IndexFunc(r.m.queue, func(w mwaiter) bool { return w.ticket == ticket })
		r.logf("Abandon(%d) = %v", ticket, ok)
		if ok != (i >= 0) {
			t.Fatalf("%s\nAbandon: want %v", r.trace(), i >= 0)
		}
		if ok {
			r.m.queue = slices.Delete(r.m.queue, i, i+1)
		}
		refused = !ok
	case 3: // Unlock
		who, fence := r.holder(), r.fence()
		next, granted, err := r.a.Unlock(who, fence, r.now)
		r.logf("Unlock(%q, %d) = %+v, %v, %v", who, fence, next, granted, err)
		var mnext account.Grant
		var mgranted bool
		merr := error(nil)
		switch {
		case who == "":
			merr = account.ErrNoHolder
		case r.m.check(who, fence) != nil:
			merr = r.m.check(who, fence)
		case r.m.pinned:
			merr = account.ErrBusy
		case r.m.holder != "":
			mnext, mgranted = r.m.release(r.now)
		}
		if !sameErr(err, merr) || granted != mgranted || next != mnext {
			t.Fatalf("%s\nUnlock: want %+v, %v, %v", r.trace(), mnext, mgranted, merr)
		}
		refused = err != nil
		if granted {
			grant = &next
		}
	case 4: // Expire
		fence := r.fence()
		expired, next, granted := r.a.Expire(fence, r.now)
		r.logf("Expire(%d) at +%v = %v, %+v, %v", fence, r.now.Sub(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), expired, next, granted)
		m := &r.m
		var mnext account.Grant
		var mgranted bool
		mexpired := m.holder != "" && m.fence == fence && !m.expires.IsZero() && !r.now.Before(m.expires) && !m.pinned
		if mexpired {
			mnext, mgranted = m.release(r.now)
		}
		if expired != mexpired || granted != mgranted || next != mnext {
			t.Fatalf("%s\nExpire: want %v, %+v, %v", r.trace(), mexpired, mnext, mgranted)
		}
		refused = !expired
		if granted {
			grant = &next
		}
	case 5, 8: // Pin, Write
		who, fence, bal := r.holder(), r.fence(), r.balance()
		var err error
		if op == 5 {
			err = r.a.Pin(who, fence, bal)
		} else {
			err = r.a.Write(who, fence, bal)
		}
		r.logf("%s(%q, %d, %d) = %v", map[byte]string{5: "Pin", 8: "Write"}[op], who, fence, bal, err)
		var merr error
		switch {
		case fence != 0 && r.m.check(who, fence) != nil:
			// A grant no longer in force is told so, pinned or not.
			merr = r.m.check(who, fence)
		case r.m.pinned:
			merr = account.ErrBusy
		case r.m.check(who, fence) != nil:
			merr = r.m.check(who, fence)
		case bal < 0:
			merr = account.ErrNegativeBalance
		}
		if !sameErr(err, merr) {
			t.Fatalf("%s\nPin/Write: want %v", r.trace(), merr)
		}
		if err == nil {
			if op == 5 {
				r.m.pinned, r.m.pinVal = true, bal
			} else {
				r.m.balance = bal
			}
		}
		refused = err != nil
	case 6: // Commit
		ok := r.a.Commit()
		r.logf("Commit() = %v", ok)
		if ok != r.m.pinned {
			t.Fatalf("%s\nCommit: want %v", r.trace(), r.m.pinned)
		}
		if ok {
			r.m.balance, r.m.pinned = r.m.pinVal, false
		}
		refused = !ok
	case 7: // Unpin
		r.a.Unpin()
		r.logf("Unpin()")
		r.m.pinned = false
	case 9: // time passes
		d := time.Duration(r.byte()) * time.Millisecond
		r.now = r.now.Add(d)
		r.logf("time +%v", d)
	}
	after := snap(r.a)
	if want := r.m.snap(); after != want {
		t.Fatalf("%s\nstate %+v, model %+v", r.trace(), after, want)
	}

	// The invariants, checked on the account alone.
	if after.balance < 0 {
		t.Fatalf("%s\nnegative balance", r.trace())
	}
	if after.holder == "" && (after.waiting != 0 || !after.expires.IsZero()) {
		t.Fatalf("%s\nfree account with waiters or a lease: %+v", r.trace(), after)
	}
	if after.fence < before.fence {
		t.Fatalf("%s\nfence decreased: %d -> %d", r.trace(), before.fence, after.fence)
	}
	if after.holder != "" && after.holder != before.holder && after.fence <= before.fence {
		t.Fatalf("%s\nnew holder %q without a larger fence (%d -> %d)", r.trace(), after.holder, before.fence, after.fence)
	}
	if refused && after != before {
		t.Fatalf("%s\na refused operation changed the account: %+v -> %+v", r.trace(), before, after)
	}
	if before.pinned && (after.holder != before.holder || after.fence != before.fence) {
		t.Fatalf("%s\nthe grant changed while a write was pinned: %+v -> %+v", r.trace(), before, after)
	}
	if grant != nil {
		// FIFO: the grant goes to the oldest waiter still queued, which
		// the model has just popped; check the ticket names it.
		if grant.Ticket == 0 || grant.Holder != after.holder || grant.Fence != after.fence || grant.Fence <= before.fence {
			t.Fatalf("%s\nbad grant to a waiter %+v", r.trace(), *grant)
		}
		for _, w := range r.m.queue {
			if w.ticket < grant.Ticket {
				t.Fatalf("%s\nticket %d granted before the older ticket %d", r.trace(), grant.Ticket, w.ticket)
			}
		}
	}
}

func (r *runner) logf(format string, args ...any) {
	r.log = append(r.log, fmt.Sprintf(format, args...))
}

func (r *runner) trace() string {
	out := "messages:"
	for _, l := range r.log {
		out += "\n  " + l
	}
	return out
}
