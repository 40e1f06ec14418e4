package account

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// claims is an owner's side of Claim for the tables: the tickets whose
// callers have gone, and the tickets the rules asked about, in order.
type claims struct {
	gone  []uint64
	asked []uint64
}

func (c *claims) claim(ticket uint64) bool {
	c.asked = append(c.asked, ticket)
	return !slices.Contains(c.gone, ticket)
}

// queued returns an account held by A (fence 1, lease until t0+ttl when
// ttl > 0) with waiters B, C, D queued under tickets 1, 2, 3, each asking
// for a lease of one minute.
func queued(t *testing.T, ttl time.Duration) Account {
	t.Helper()
	var a Account
	if _, err := a.Lock("A", 0, ttl, t0); err != nil {
		t.Fatal(err)
	}
	for i, who := range []string{"B", "C", "D"} {
		if _, q, err := a.Enqueue(who, uint64(i+1), time.Minute, t0); err != nil || !q {
			t.Fatalf("Enqueue(%s): queued %v, %v", who, q, err)
		}
	}
	return a
}

// TestReleasePassesOnToTheFirstLiveWaiter pins the pass-on loop: the lock
// goes to the first waiter whose caller is still there, each abandoned
// one in front of it getting (and at once losing) a grant of its own, so
// that fences keep counting grants; with every caller gone the lock is
// free and the lease timer stopped.
func TestReleasePassesOnToTheFirstLiveWaiter(t *testing.T) {
	for _, tc := range []struct {
		gone    []uint64
		holder  string
		fence   uint64
		ticket  uint64
		waiting int
		asked   []uint64
	}{
		{nil, "B", 2, 1, 2, []uint64{1}},
		{[]uint64{1}, "C", 3, 2, 1, []uint64{1, 2}},
		{[]uint64{2}, "B", 2, 1, 2, []uint64{1}},
		{[]uint64{1, 2}, "D", 4, 3, 0, []uint64{1, 2, 3}},
		{[]uint64{1, 3}, "C", 3, 2, 1, []uint64{1, 2}},
		{[]uint64{1, 2, 3}, "", 4, 0, 0, []uint64{1, 2, 3}},
	} {
		a := queued(t, time.Second)
		c := &claims{gone: tc.gone}
		r, err := a.Release("A", 1, t0.Add(time.Millisecond), c.claim)
		if err != nil {
			t.Fatalf("gone %v: Release: %v", tc.gone, err)
		}
		if a.Holder() != tc.holder || a.Fence() != tc.fence || a.Waiting() != tc.waiting || !slices.Equal(c.asked, tc.asked) {
			t.Errorf("gone %v: holder %q fence %d waiting %d asked %v; want %q %d %d %v",
				tc.gone, a.Holder(), a.Fence(), a.Waiting(), c.asked, tc.holder, tc.fence, tc.waiting, tc.asked)
		}
		want := Ready{SetLease: true}
		if tc.holder != "" {
			g := Grant{Holder: tc.holder, Fence: tc.fence, Expires: t0.Add(time.Millisecond + time.Minute), Ticket: tc.ticket}
			want = Ready{Granted: true, Grant: g, SetLease: true, Lease: g}
		}
		if r != want {
			t.Errorf("gone %v: Ready %+v, want %+v", tc.gone, r, want)
		}
	}
}

func TestReleaseWithoutWaiters(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*Account)
		who   string
		fence uint64
		want  Ready
		err   error
	}{
		{"held: the lease timer stops", func(a *Account) { _, _ = a.Lock("A", 0, time.Second, t0) }, "A", 1, Ready{SetLease: true}, nil},
		{"free: nothing to do", func(*Account) {}, "A", 0, Ready{}, nil},
		{"another holder's", func(a *Account) { _, _ = a.Lock("A", 0, time.Second, t0) }, "B", 0, Ready{}, ErrLocked},
		{"stale fence", func(a *Account) { _, _ = a.Lock("A", 0, time.Second, t0) }, "A", 7, Ready{}, ErrStaleFence},
		{"pinned", func(a *Account) { _, _ = a.Lock("A", 0, 0, t0); _ = a.Pin("A", 1, 5) }, "A", 1, Ready{}, ErrBusy},
	} {
		var a Account
		tc.setup(&a)
		c := &claims{}
		r, err := a.Release(tc.who, tc.fence, t0, c.claim)
		if r != tc.want || !errors.Is(err, tc.err) || len(c.asked) != 0 {
			t.Errorf("%s: Ready %+v, %v (asked %v); want %+v, %v", tc.name, r, err, c.asked, tc.want, tc.err)
		}
	}
}

func TestAcquireSetsTheLeaseOfItsGrant(t *testing.T) {
	var a Account
	g, r, err := a.Acquire("A", 0, time.Second, t0)
	if err != nil || r != (Ready{SetLease: true, Lease: g}) || g.Expires != t0.Add(time.Second) {
		t.Fatalf("Acquire: %+v, %+v, %v", g, r, err)
	}
	// Renewing without a lease stops the timer: Lease.Expires is zero.
	if g2, r, err := a.Acquire("A", g.Fence, 0, t0); err != nil || r != (Ready{SetLease: true, Lease: g2}) || !g2.Expires.IsZero() {
		t.Fatalf("renewal without a lease: %+v, %+v, %v", g2, r, err)
	}
	if _, r, err := a.Acquire("B", 0, time.Second, t0); !errors.Is(err, ErrLocked) || r != (Ready{}) {
		t.Fatalf("Acquire of a held lock: %+v, %v", r, err)
	}
}

// TestQueue: a request granted at once goes through Claim like any
// waiter's, since its caller may have gone already; one that is queued
// asks nothing yet.
func TestQueue(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(*Account)
		gone    []uint64
		queued  bool
		granted bool
		holder  string
	}{
		{"free, caller there", func(*Account) {}, nil, false, true, "B"},
		{"free, caller gone", func(*Account) {}, []uint64{9}, false, false, ""},
		{"held by another", func(a *Account) { _, _ = a.Lock("A", 0, 0, t0) }, nil, true, false, "A"},
		{"held by B itself, caller gone", func(a *Account) { _, _ = a.Lock("B", 0, 0, t0) }, []uint64{9}, false, false, ""},
	} {
		var a Account
		tc.setup(&a)
		c := &claims{gone: tc.gone}
		q, r, err := a.Queue("B", 9, time.Second, t0, c.claim)
		if err != nil || q != tc.queued || r.Granted != tc.granted || a.Holder() != tc.holder {
			t.Errorf("%s: queued %v, %+v, %v, holder %q; want queued %v granted %v holder %q",
				tc.name, q, r, err, a.Holder(), tc.queued, tc.granted, tc.holder)
		}
		if tc.granted && (r.Grant.Ticket != 9 || r.Lease != r.Grant || !r.SetLease) {
			t.Errorf("%s: grant %+v, lease %+v", tc.name, r.Grant, r.Lease)
		}
		if wantAsked := !tc.queued; wantAsked != (len(c.asked) == 1) {
			t.Errorf("%s: Claim asked %v", tc.name, c.asked)
		}
	}
	var a Account
	if _, _, err := a.Queue("", 1, 0, t0, (&claims{}).claim); !errors.Is(err, ErrNoHolder) {
		t.Errorf("Queue without a holder: %v", err)
	}
}

func TestEndLease(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fence   uint64
		at      time.Duration
		gone    []uint64
		want    Ready
		holder  string
		asked   int
		expired bool
	}{
		{"before the lease ends", 1, 999 * time.Millisecond, nil, Ready{}, "A", 0, false},
		{"a timer of an older grant", 0, 2 * time.Second, nil, Ready{}, "A", 0, false},
		{"passes on", 1, time.Second, nil, Ready{}, "B", 1, true},
		{"passes on past gone callers", 1, time.Second, []uint64{1, 2}, Ready{}, "D", 3, true},
		{"every caller gone", 1, time.Second, []uint64{1, 2, 3}, Ready{SetLease: true, Expired: true}, "", 3, true},
	} {
		a := queued(t, time.Second)
		c := &claims{gone: tc.gone}
		r := a.EndLease(tc.fence, t0.Add(tc.at), c.claim)
		if a.Holder() != tc.holder || len(c.asked) != tc.asked || r.Expired != tc.expired {
			t.Errorf("%s: holder %q, asked %v, %+v", tc.name, a.Holder(), c.asked, r)
		}
		if tc.holder == "" || tc.holder == "A" {
			if r != tc.want {
				t.Errorf("%s: Ready %+v, want %+v", tc.name, r, tc.want)
			}
		} else if !r.Granted || r.Grant.Holder != tc.holder || !r.SetLease || r.Lease != r.Grant {
			t.Errorf("%s: Ready %+v, want a grant to %s", tc.name, r, tc.holder)
		}
	}
	// A lease renewed since its timer was armed does not end.
	var a Account
	g, _ := a.Lock("A", 0, time.Second, t0)
	_, _ = a.Lock("A", g.Fence, time.Second, t0.Add(time.Second/2))
	if r := a.EndLease(g.Fence, t0.Add(time.Second), (&claims{}).claim); r != (Ready{}) || a.Holder() != "A" {
		t.Errorf("EndLease of a renewed lease: %+v, holder %q", r, a.Holder())
	}
}

// TestLeaseRunOutWhilePinnedEndsAtUnpin pins the rule that a lease whose
// timer fired while a write was pinned (and so changed nothing) ends as
// soon as the pin does — by Drop, by Settle, or by Settle with a release
// that was refused — and that one which has not run out is left alone.
func TestLeaseRunOutWhilePinnedEndsAtUnpin(t *testing.T) {
	type end struct {
		name    string
		run     func(a *Account, now time.Time, c Claim) Ready
		balance int64 // after it: 5 when the write was applied
	}
	ends := []end{
		{"Drop", func(a *Account, now time.Time, c Claim) Ready { return a.Drop(now, c) }, 0},
		{"Settle", func(a *Account, now time.Time, c Claim) Ready { return a.Settle(false, "A", 1, now, c) }, 5},
		{"Settle refused release", func(a *Account, now time.Time, c Claim) Ready { return a.Settle(true, "A", 99, now, c) }, 5},
	}
	for _, e := range ends {
		for _, tc := range []struct {
			waiters bool
			at      time.Duration
			expired bool
			holder  string
		}{
			{false, 2 * time.Second, true, ""},
			{true, 2 * time.Second, true, "B"},
			{false, time.Second / 2, false, "A"},
			{true, time.Second / 2, false, "A"},
		} {
			var a Account
			if tc.waiters {
				a = queued(t, time.Second)
			} else if _, err := a.Lock("A", 0, time.Second, t0); err != nil {
				t.Fatal(err)
			}
			if err := a.Pin("A", 1, 5); err != nil {
				t.Fatal(err)
			}
			now := t0.Add(tc.at)
			c := &claims{}
			if r := a.EndLease(1, now, c.claim); r != (Ready{}) || a.Holder() != "A" {
				t.Fatalf("%s: the timer ended a pinned grant: %+v", e.name, r)
			}
			r := e.run(&a, now, c.claim)
			if r.Expired != tc.expired || a.Holder() != tc.holder || a.Balance() != e.balance || a.Pinned() {
				t.Errorf("%s, waiters %v, at %v: %+v, holder %q, balance %d, pinned %v; want expired %v holder %q balance %d",
					e.name, tc.waiters, tc.at, r, a.Holder(), a.Balance(), a.Pinned(), tc.expired, tc.holder, e.balance)
			}
			if tc.expired && !r.SetLease || !tc.expired && r != (Ready{}) {
				t.Errorf("%s, waiters %v, at %v: lease timer %+v", e.name, tc.waiters, tc.at, r)
			}
		}
	}
}

// TestSettleUnlock pins OpCommit's "also unlock": the write is applied,
// then the lock released and passed on; a release the rules refuse
// leaves the lock with its holder.
func TestSettleUnlock(t *testing.T) {
	for _, tc := range []struct {
		name    string
		waiters bool
		who     string
		fence   uint64
		holder  string
		want    func(Ready) bool
	}{
		{"no waiters", false, "A", 1, "", func(r Ready) bool { return r == Ready{SetLease: true} }},
		{"passes on", true, "A", 1, "B", func(r Ready) bool { return r.Granted && r.Grant.Holder == "B" && r.Grant.Ticket == 1 }},
		{"not the holder", true, "X", 0, "A", func(r Ready) bool { return r == Ready{} }},
		{"stale fence", false, "A", 2, "A", func(r Ready) bool { return r == Ready{} }},
	} {
		var a Account
		if tc.waiters {
			a = queued(t, time.Second)
		} else {
			_, _ = a.Lock("A", 0, time.Second, t0)
		}
		if err := a.Pin("A", 1, 5); err != nil {
			t.Fatal(err)
		}
		c := &claims{}
		r := a.Settle(true, tc.who, tc.fence, t0, c.claim)
		if a.Balance() != 5 || a.Pinned() || a.Holder() != tc.holder || !tc.want(r) {
			t.Errorf("%s: balance %d pinned %v holder %q, %+v", tc.name, a.Balance(), a.Pinned(), a.Holder(), r)
		}
	}
	// Without unlock the lock stays and nothing is asked of the owner.
	var a Account
	_, _ = a.Lock("A", 0, time.Second, t0)
	_ = a.Pin("A", 1, 5)
	if r := a.Settle(false, "A", 1, t0, (&claims{}).claim); r != (Ready{}) || a.Holder() != "A" || a.Balance() != 5 {
		t.Errorf("Settle without unlock: %+v, holder %q, balance %d", r, a.Holder(), a.Balance())
	}
}

func TestReadyStepsZeroAllocs(t *testing.T) {
	var a Account
	claim := func(uint64) bool { return true }
	allocs := testing.AllocsPerRun(1000, func() {
		_, r, _ := a.Queue("A", 1, time.Second, t0, claim)
		g, _, _ := a.Acquire("A", r.Grant.Fence, time.Second, t0)
		_ = a.Pin("A", g.Fence, 1)
		_ = a.Settle(true, "A", g.Fence, t0, claim)
		_ = a.Pin("B", 0, 2)
		_ = a.Drop(t0, claim)
		g, _, _ = a.Acquire("B", 0, time.Second, t0)
		_ = a.EndLease(g.Fence, t0.Add(time.Hour), claim)
		_, _ = a.Release("B", 0, t0, claim)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round of steps, want 0", allocs)
	}
}
