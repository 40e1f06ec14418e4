package inprocess_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/actors/teller/inprocess"
)

// caseAccounts is how many accounts each case gets, numbered f.ids[0..],
// each holding caseBalance and free.
const (
	caseAccounts = 4
	caseBalance  = 1000
	missing      = int64(1) << 40 // no such account
)

// fixture is what a case runs against.
type fixture struct {
	bank  bank
	accts *inprocess.Accounts
	ids   []int64
}

func (f fixture) holder(name string) inprocess.Holder { return f.accts.For(name, testLease) }

// state returns account id's balance and lock holder.
func (f fixture) state(t *testing.T, id int64) (int64, string) {
	t.Helper()
	r, err := f.bank.Do(id, actors.Request{Op: actors.OpRead})
	if err != nil {
		t.Fatal(err)
	}
	return r.Balance, r.Holder
}

// want checks the balances and holders of f.ids[:len(balances)].
func (f fixture) want(t *testing.T, balances []int64, holders []string) {
	t.Helper()
	for i := range balances {
		b, h := f.state(t, f.ids[i])
		if b != balances[i] || h != holders[i] {
			t.Errorf("account %d: balance %d held by %q, want %d held by %q", f.ids[i], b, h, balances[i], holders[i])
		}
	}
}

// lock takes ids' locks for h, failing t on a refusal.
func lock(t *testing.T, h inprocess.Holder, ids ...int64) []teller.Grant {
	t.Helper()
	g := make([]teller.Grant, len(ids))
	if err := h.Lock(context.Background(), ids, teller.LockOptions{}, g); err != nil {
		t.Fatalf("lock %v: %v", ids, err)
	}
	return g
}

// refused checks that err wraps want, a refusal of account conta (0: any).
func refused(t *testing.T, what string, err, want error, conta int64) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
	var e *inprocess.Error
	if conta != 0 && (!errors.As(err, &e) || e.Conta != conta) {
		t.Errorf("%s: %v does not name account %d", what, err, conta)
	}
}

// backends start the fixtures of each kind of bank. A cluster member is
// slow to start, so the cases share one, each on accounts of its own.
var backends = []struct {
	name string
	env  func(t *testing.T) func(t *testing.T) fixture
}{
	{"memory", fresh(startMemory)},
	{"durable", fresh(startDurable)},
	{"cluster", func(t *testing.T) func(t *testing.T) fixture {
		b := startCluster(t, 32*caseAccounts, caseBalance)
		a := newAccounts(t, b, nil)
		var next atomic.Int64
		return func(t *testing.T) fixture {
			base := next.Add(caseAccounts) - caseAccounts
			f := fixture{bank: b, accts: a}
			for i := range int64(caseAccounts) {
				f.ids = append(f.ids, base+i+1)
			}
			return f
		}
	}},
}

// fresh gives each case a bank of its own.
func fresh(start func(testing.TB, int, int64) bank) func(t *testing.T) func(t *testing.T) fixture {
	return func(*testing.T) func(t *testing.T) fixture {
		return func(t *testing.T) fixture {
			b := start(t, caseAccounts, caseBalance)
			return fixture{bank: b, accts: newAccounts(t, b, nil), ids: []int64{1, 2, 3, 4}}
		}
	}
}

var ctx = context.Background()

var cases = []struct {
	name string
	run  func(t *testing.T, f fixture)
}{
	{"locks all or none", func(t *testing.T, f fixture) {
		a, b := f.holder("A"), f.holder("B")
		lock(t, b, f.ids[3])
		g := make([]teller.Grant, 2)
		refused(t, "one held by another", a.Lock(ctx, []int64{f.ids[2], f.ids[3]}, teller.LockOptions{}, g), teller.ErrLocked, f.ids[3])
		refused(t, "no such account", a.Lock(ctx, []int64{f.ids[0], missing}, teller.LockOptions{}, g), teller.ErrNotFound, missing)
		f.want(t, []int64{1000, 1000, 1000, 1000}, []string{"", "", "", "B"})
		g = lock(t, a, f.ids[1], f.ids[0])
		for i, gr := range g {
			if gr.Fence == 0 || !gr.HasSaldo || gr.Saldo != caseBalance {
				t.Errorf("grant %d: %+v, want a fence and the balance", i, gr)
			}
		}
		f.want(t, []int64{1000, 1000}, []string{"A", "A"})
	}},
	{"waits", func(t *testing.T, f fixture) {
		a, b := f.holder("A"), f.holder("B")
		gb := lock(t, b, f.ids[1])
		g := make([]teller.Grant, 2)
		start := time.Now()
		refused(t, "wait ran out", a.Lock(ctx, f.ids[:2], teller.LockOptions{Wait: 100 * time.Millisecond}, g), teller.ErrLocked, f.ids[1])
		if d := time.Since(start); d < 90*time.Millisecond {
			t.Errorf("refused after %v, before the wait of 100ms ran out", d)
		}
		f.want(t, []int64{1000, 1000}, []string{"", "B"})
		go func() {
			time.Sleep(50 * time.Millisecond) // A is queued by then, or locks once B is gone: both grant
			if err := b.Unlock(ctx, f.ids[1], gb[0].Fence); err != nil {
				t.Error(err)
			}
		}()
		if err := a.Lock(ctx, f.ids[:2], teller.LockOptions{Wait: 10 * time.Second}, g); err != nil {
			t.Fatalf("waiting for B's unlock: %v", err)
		}
		f.want(t, []int64{1000, 1000}, []string{"A", "A"})
	}},
	{"the wait bounds the whole call", func(t *testing.T, f fixture) {
		a, b := f.holder("A"), f.holder("B")
		gb := lock(t, b, f.ids[0], f.ids[1])
		go func() {
			time.Sleep(500 * time.Millisecond) // half A's wait
			if err := b.Unlock(ctx, f.ids[0], gb[0].Fence); err != nil {
				t.Error(err)
			}
		}()
		start := time.Now()
		g := make([]teller.Grant, 2)
		refused(t, "second lock", a.Lock(ctx, f.ids[:2], teller.LockOptions{Wait: time.Second}, g), teller.ErrLocked, f.ids[1])
		// Per lock, the second would have waited a second of its own.
		if d := time.Since(start); d < 900*time.Millisecond || d > 1400*time.Millisecond {
			t.Errorf("refused after %v, want about the 1s wait", d)
		}
		f.want(t, []int64{1000, 1000}, []string{"", "B"})
	}},
	{"re-entrant", func(t *testing.T, f fixture) {
		a, b := f.holder("A"), f.holder("B")
		g1 := lock(t, a, f.ids[0])
		g := lock(t, a, f.ids[0], f.ids[1])
		if g[0].Fence != g1[0].Fence {
			t.Errorf("locked again: fence %d, want the grant's %d", g[0].Fence, g1[0].Fence)
		}
		lock(t, b, f.ids[2])
		// A refusal releases the re-entrant lock with the others.
		refused(t, "one held by another", a.Lock(ctx, []int64{f.ids[0], f.ids[2]}, teller.LockOptions{}, make([]teller.Grant, 2)), teller.ErrLocked, f.ids[2])
		f.want(t, []int64{1000, 1000, 1000}, []string{"", "A", "B"})
	}},
	{"fences", func(t *testing.T, f fixture) {
		a, b := f.holder("A"), f.holder("B")
		fa := lock(t, a, f.ids[0])[0].Fence
		if err := a.Unlock(ctx, f.ids[0], fa); err != nil {
			t.Fatal(err)
		}
		if err := a.Unlock(ctx, f.ids[0], 0); err != nil {
			t.Errorf("unlocking a free account: %v", err)
		}
		refused(t, "unlock under a released grant", a.Unlock(ctx, f.ids[0], fa), teller.ErrStaleFence, f.ids[0])
		if fb := lock(t, b, f.ids[0])[0].Fence; fb <= fa {
			t.Errorf("B's fence %d, want above A's %d", fb, fa)
		}
		_, err := a.Commit(ctx, []teller.Change{{Conta: f.ids[0], Saldo: 1, Fence: fa}}, true, nil)
		refused(t, "commit under a stale fence", err, teller.ErrStaleFence, 0)
		refused(t, "unlock of B's lock", a.Unlock(ctx, f.ids[0], 0), teller.ErrLocked, f.ids[0])
		refused(t, "unlock under a stale fence", a.Unlock(ctx, f.ids[0], fa), teller.ErrStaleFence, f.ids[0])
		f.want(t, []int64{1000}, []string{"B"})
	}},
	{"a lease runs out", func(t *testing.T, f fixture) {
		short := f.accts.For("A", 50*time.Millisecond)
		fa := lock(t, short, f.ids[0])[0].Fence
		deadline := time.Now().Add(10 * time.Second)
		for _, h := f.state(t, f.ids[0]); h != ""; _, h = f.state(t, f.ids[0]) {
			if time.Now().After(deadline) {
				t.Fatal("the lease did not run out in 10s")
			}
			time.Sleep(5 * time.Millisecond) // polling the lease's end
		}
		_, err := short.Commit(ctx, []teller.Change{{Conta: f.ids[0], Saldo: 1, Fence: fa}}, false, nil)
		refused(t, "commit after the lease", err, teller.ErrStaleFence, 0)
		f.want(t, []int64{1000}, []string{""})
	}},
	{"commits all or nothing", func(t *testing.T, f fixture) {
		a := f.holder("A")
		g := lock(t, a, f.ids[0], f.ids[1])
		_, err := a.Commit(ctx, []teller.Change{ch(f.ids[0], 900, g[0].Fence), ch(f.ids[1], 1100, g[1].Fence+1)}, true, nil)
		refused(t, "one stale fence", err, teller.ErrStaleFence, 0)
		_, err = a.Commit(ctx, []teller.Change{ch(f.ids[0], 2001, g[0].Fence), ch(f.ids[1], -1, g[1].Fence)}, true, nil)
		refused(t, "a negative balance", err, teller.ErrInvalidValue, 0)
		f.want(t, []int64{1000, 1000}, []string{"A", "A"})
		if _, err := a.Commit(ctx, []teller.Change{ch(f.ids[1], 1100, g[1].Fence), ch(f.ids[0], 900, g[0].Fence)}, false, nil); err != nil {
			t.Fatal(err)
		}
		f.want(t, []int64{900, 1100}, []string{"A", "A"})
		if _, err := a.Commit(ctx, []teller.Change{ch(f.ids[0], 800, g[0].Fence), ch(f.ids[1], 1200, g[1].Fence)}, true, nil); err != nil {
			t.Fatal(err)
		}
		f.want(t, []int64{800, 1200}, []string{"", ""})
	}},
	{"records: kept with the commit, replayed", func(t *testing.T, f fixture) {
		a := f.holder("A")
		g := lock(t, a, f.ids[0], f.ids[1])
		rec := teller.Record{Key: "k-1", Fingerprint: "transferencia/1/2/100", Status: 200, Body: []byte(`{"valor":100}`)}
		if old, err := a.Commit(ctx, []teller.Change{ch(f.ids[0], 900, g[0].Fence), ch(f.ids[1], 1100, g[1].Fence)}, true, &rec); err != nil || old != nil {
			t.Fatalf("first commit: %v %v", old, err)
		}
		if got, found, err := a.Outcome(ctx, "k-1"); err != nil || !found || !sameRecord(got, rec) {
			t.Fatalf("outcome: %+v %v %v", got, found, err)
		}
		// The retry holds new grants, but the key is known: nothing
		// applied, the locks kept for the caller to release.
		g = lock(t, a, f.ids[0], f.ids[1])
		retry := rec
		retry.Body = []byte(`{"other":true}`)
		old, err := a.Commit(ctx, []teller.Change{ch(f.ids[0], 800, g[0].Fence), ch(f.ids[1], 1200, g[1].Fence)}, true, &retry)
		if err != nil || old == nil || !sameRecord(*old, rec) {
			t.Fatalf("retry: %+v %v, want the first record", old, err)
		}
		f.want(t, []int64{900, 1100}, []string{"A", "A"})
	}},
	{"records: keep unless present", func(t *testing.T, f fixture) {
		a := f.holder("A")
		refusal := teller.Record{Key: "k-2", Fingerprint: "saque/1/5000", Status: 409, Body: []byte(`{"error_code":-6}`)}
		if old, err := a.Keep(ctx, refusal); err != nil || old != nil {
			t.Fatalf("keep: %v %v", old, err)
		}
		other := teller.Record{Key: "k-2", Fingerprint: "saque/1/1", Status: 200, Body: []byte(`{}`)}
		if old, err := a.Keep(ctx, other); err != nil || old == nil || !sameRecord(*old, refusal) {
			t.Fatalf("second keep: %+v %v, want the first record", old, err)
		}
		if got, found, err := a.Outcome(ctx, "k-2"); err != nil || !found || !sameRecord(got, refusal) {
			t.Fatalf("outcome: %+v %v %v", got, found, err)
		}
		if _, found, err := a.Outcome(ctx, "nope"); err != nil || found {
			t.Fatalf("outcome of an unknown key: %v %v", found, err)
		}
		// A commit under a kept key is not applied.
		g := lock(t, a, f.ids[0])
		if old, err := a.Commit(ctx, []teller.Change{ch(f.ids[0], 1, g[0].Fence)}, true, &other); err != nil || old == nil || !sameRecord(*old, refusal) {
			t.Fatalf("commit under a kept key: %+v %v", old, err)
		}
		f.want(t, []int64{1000}, []string{"A"})
	}},
	{"reads", func(t *testing.T, f fixture) {
		a, b := f.holder("A"), f.holder("B")
		lock(t, b, f.ids[0])
		if s, err := a.Read(ctx, f.ids[0]); err != nil || s != caseBalance {
			t.Errorf("read of a locked account: %d %v", s, err)
		}
		_, err := a.Read(ctx, missing)
		refused(t, "read of no account", err, teller.ErrNotFound, missing)
	}},
	{"bad requests", func(t *testing.T, f fixture) {
		a := f.holder("A")
		id := f.ids[0]
		many := make([]int64, teller.MaxAccounts+1)
		for i := range many {
			many[i] = int64(i + 1)
		}
		long := string(make([]byte, inprocess.MaxKeyLength+1))
		change := []teller.Change{{Conta: id, Saldo: 1, Fence: 1}}
		for _, c := range []struct {
			name string
			err  error
		}{
			{"lock of nothing", a.Lock(ctx, nil, teller.LockOptions{}, nil)},
			{"lock twice", a.Lock(ctx, []int64{id, id}, teller.LockOptions{}, make([]teller.Grant, 2))},
			{"lock of too many", a.Lock(ctx, many, teller.LockOptions{}, make([]teller.Grant, len(many)))},
			{"grants too few", a.Lock(ctx, []int64{id}, teller.LockOptions{}, nil)},
			{"commit of nothing", second(a.Commit(ctx, nil, true, nil))},
			{"commit twice", second(a.Commit(ctx, append(change, change...), true, nil))},
			{"commit without a fence", second(a.Commit(ctx, []teller.Change{{Conta: id, Saldo: 1}}, true, nil))},
			{"commit, no key", second(a.Commit(ctx, change, true, &teller.Record{}))},
			{"keep, key too long", second(a.Keep(ctx, teller.Record{Key: long}))},
			{"keep, body too long", second(a.Keep(ctx, teller.Record{Key: "k", Body: make([]byte, inprocess.MaxRecordBody+1)}))},
			{"outcome, no key", third(a.Outcome(ctx, ""))},
		} {
			refused(t, c.name, c.err, teller.ErrBadRequest, 0)
		}
		f.want(t, []int64{1000}, []string{""})
	}},
	{"no records", func(t *testing.T, f fixture) {
		a := newAccounts(t, bank{Bank: f.bank.Bank}, nil).For("A", testLease)
		g := lock(t, a, f.ids[0])
		rec := &teller.Record{Key: "k", Fingerprint: "f", Status: 200}
		refused(t, "commit with a record", second(a.Commit(ctx, []teller.Change{ch(f.ids[0], 1, g[0].Fence)}, true, rec)), teller.ErrUnsupported, 0)
		refused(t, "keep", second(a.Keep(ctx, *rec)), teller.ErrUnsupported, 0)
		refused(t, "outcome", third(a.Outcome(ctx, "k")), teller.ErrUnsupported, 0)
		f.want(t, []int64{1000}, []string{"A"})
		if _, err := a.Commit(ctx, []teller.Change{ch(f.ids[0], 1, g[0].Fence)}, true, nil); err != nil {
			t.Fatalf("commit without a record: %v", err)
		}
		f.want(t, []int64{1}, []string{""})
	}},
	{"a context that ended", func(t *testing.T, f fixture) {
		a, b := f.holder("A"), f.holder("B")
		done, cancel := context.WithCancel(ctx)
		cancel()
		for _, err := range []error{a.Lock(done, f.ids[:2], teller.LockOptions{Wait: time.Second}, make([]teller.Grant, 2)), second(a.Read(done, f.ids[0]))} {
			if !errors.Is(err, teller.ErrNotApplied) || !errors.Is(err, context.Canceled) {
				t.Errorf("%v, want ErrNotApplied and context.Canceled", err)
			}
		}
		if _, ok := f.bank.Bank.(interface {
			DoContext(context.Context, int64, actors.Request) (actors.Reply, error)
		}); ok {
			// A waiting lock is abandoned when its context ends, and the
			// locks taken before it are released.
			lock(t, b, f.ids[1])
			waiting, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			err := a.Lock(waiting, f.ids[:2], teller.LockOptions{Wait: time.Minute}, make([]teller.Grant, 2))
			if !errors.Is(err, teller.ErrNotApplied) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("lock abandoned: %v, want ErrNotApplied and context.DeadlineExceeded", err)
			}
		}
		_, h := f.state(t, f.ids[0])
		if h != "" {
			t.Errorf("account %d held by %q after the lock was abandoned", f.ids[0], h)
		}
	}},
	{"one key, several commits at once", func(t *testing.T, f fixture) {
		// Each commit holds its own account's lock: only the key orders
		// them, and one only is applied.
		var wg sync.WaitGroup
		var applied atomic.Int32
		for i, id := range f.ids {
			wg.Go(func() {
				a := f.holder("H" + strconv.Itoa(i))
				g := lock(t, a, id)
				rec := teller.Record{Key: "race", Fingerprint: "deposito/" + strconv.Itoa(i), Status: 200}
				old, err := a.Commit(ctx, []teller.Change{ch(id, 2000, g[0].Fence)}, true, &rec)
				switch {
				case err != nil:
					t.Error(err)
				case old == nil:
					applied.Add(1)
				default:
					if err := a.Unlock(ctx, id, g[0].Fence); err != nil { // a replay keeps the lock
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if n := applied.Load(); n != 1 {
			t.Fatalf("%d commits with one key applied, want 1", n)
		}
		var total int64
		for _, id := range f.ids {
			b, h := f.state(t, id)
			total += b
			if h != "" {
				t.Errorf("account %d still held by %q", id, h)
			}
		}
		if total != caseAccounts*caseBalance+1000 {
			t.Errorf("total %d, want one deposit of 1000 on %d", total, caseAccounts*caseBalance)
		}
	}},
	{"concurrent transfers conserve money", func(t *testing.T, f fixture) {
		const workers, transfers = 6, 30
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				a := f.holder("W" + strconv.Itoa(w))
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				g := make([]teller.Grant, 2)
				for range transfers {
					i, j := rng.IntN(caseAccounts), rng.IntN(caseAccounts-1)
					if j >= i {
						j++
					}
					from, to := f.ids[i], f.ids[j]
					ids := []int64{min(from, to), max(from, to)} // ascending: no deadlock
					if err := a.Lock(ctx, ids, teller.LockOptions{Wait: 10 * time.Second}, g); err != nil {
						t.Error(err)
						return
					}
					bal := map[int64]teller.Grant{ids[0]: g[0], ids[1]: g[1]}
					v := rng.Int64N(bal[from].Saldo + 1)
					_, err := a.Commit(ctx, []teller.Change{
						ch(from, bal[from].Saldo-v, bal[from].Fence), ch(to, bal[to].Saldo+v, bal[to].Fence)}, true, nil)
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		var total int64
		for _, id := range f.ids {
			b, h := f.state(t, id)
			total += b
			if b < 0 || h != "" {
				t.Errorf("account %d: balance %d held by %q", id, b, h)
			}
		}
		if total != caseAccounts*caseBalance {
			t.Errorf("total %d, want %d", total, caseAccounts*caseBalance)
		}
	}},
}

func ch(conta, saldo int64, fence uint64) teller.Change {
	return teller.Change{Conta: conta, Saldo: saldo, Fence: fence}
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }

func sameRecord(a, b teller.Record) bool {
	return a.Key == b.Key && a.Fingerprint == b.Fingerprint && a.Status == b.Status && string(a.Body) == string(b.Body)
}

// TestAccounts runs every case on every backend.
func TestAccounts(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			env := be.env(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, env(t)) })
			}
		})
	}
}

// TestDurableRecord: a commit's balances and record are on disk together;
// a bank started again on the store has both.
func TestDurableRecord(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenPebble(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := actors.New(actors.Config{Accounts: 2, InitialBalance: 1000, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	a := newAccounts(t, bank{b, st}, nil).For("A", testLease)
	g := lock(t, a, 1, 2)
	rec := teller.Record{Key: "k", Fingerprint: "transferencia/1/2/250", Status: 200, Body: []byte(`{"valor":250}`)}
	if _, err := a.Commit(ctx, []teller.Change{ch(1, 750, g[0].Fence), ch(2, 1250, g[1].Fence)}, true, &rec); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.OpenPebble(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err = actors.New(actors.Config{Accounts: 2, InitialBalance: 1000, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a = newAccounts(t, bank{b, st}, nil).For("A", testLease)
	for id, want := range map[int64]int64{1: 750, 2: 1250} {
		if s, err := a.Read(ctx, id); err != nil || s != want {
			t.Errorf("account %d after restart: %d %v, want %d", id, s, err, want)
		}
	}
	if got, found, err := a.Outcome(ctx, "k"); err != nil || !found || !sameRecord(got, rec) {
		t.Errorf("record after restart: %+v %v %v", got, found, err)
	}
}

// racingRecords hides the records from the first reads, as if another
// member of the cluster kept one between this member's read and its write.
type racingRecords struct {
	inprocess.Records
	hide atomic.Int32
}

func (r *racingRecords) Record(key string) (store.Record, bool, error) {
	if r.hide.Add(-1) >= 0 {
		return store.Record{}, false, nil
	}
	return r.Records.Record(key)
}

// TestClusterKeyRace: members share the store, not their key locks; the
// store refuses a second record under one key (store.ErrKeyTaken), and
// the member that lost answers the winner's record, nothing applied.
func TestClusterKeyRace(t *testing.T) {
	b := startCluster(t, 2, 1000)
	winner := teller.Record{Key: "k", Fingerprint: "deposito/1/5", Status: 200, Body: []byte(`{"saldo":1005}`)}
	if _, err := newAccounts(t, b, nil).For("other", testLease).Keep(ctx, winner); err != nil {
		t.Fatal(err)
	}
	rr := &racingRecords{Records: b.records}
	a := newAccounts(t, b, rr).For("A", testLease)
	f := fixture{bank: b, ids: []int64{1, 2}}
	g := lock(t, a, 1, 2)
	rr.hide.Store(1)
	lost := teller.Record{Key: "k", Fingerprint: "transferencia/1/2/5", Status: 200}
	old, err := a.Commit(ctx, []teller.Change{ch(1, 995, g[0].Fence), ch(2, 1005, g[1].Fence)}, true, &lost)
	if err != nil || old == nil || !sameRecord(*old, winner) {
		t.Fatalf("commit that lost the key: %+v %v, want the winner's record", old, err)
	}
	f.want(t, []int64{1000, 1000}, []string{"A", "A"})
	rr.hide.Store(1)
	if old, err := a.Keep(ctx, lost); err != nil || old == nil || !sameRecord(*old, winner) {
		t.Fatalf("keep that lost the key: %+v %v, want the winner's record", old, err)
	}
}
