package actors

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/store"
)

// faultyStore wraps a real store and fails commits while failing is set.
type faultyStore struct {
	Store
	failing atomic.Bool
}

var errDiskFull = errors.New("no space left on device")

func (f *faultyStore) Commit(w []store.Write, r *store.Record) error {
	if f.failing.Load() {
		return errDiskFull
	}
	return f.Store.Commit(w, r)
}

func openPebble(t *testing.T, dir string) *store.Pebble {
	t.Helper()
	p, err := store.OpenPebble(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func balances(t *testing.T, b *Bank) []int64 {
	t.Helper()
	var out []int64
	for id := int64(1); id <= int64(b.Len()); id++ {
		r, err := b.Do(id, Request{Op: OpRead})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Balance)
	}
	return out
}

// TestRestartReloads writes through one bank, closes it and its store, and
// opens another on the same directory: every acknowledged write is there
// and fences keep growing.
func TestRestartReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	st := openPebble(t, dir)
	b, err := New(Config{Accounts: 3, InitialBalance: 100, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Do(1, Request{Op: OpWrite, Holder: "x", Value: 7}); err != nil {
		t.Fatal(err)
	}
	g2, _ := b.Do(2, Request{Op: OpLock, Holder: "H"})
	g3, _ := b.Do(3, Request{Op: OpLock, Holder: "H"})
	if err := b.Apply(context.Background(), "H", []Change{{3, g3.Fence, 150}, {2, g2.Fence, 50}}, true, nil); err != nil {
		t.Fatal(err)
	}
	b.Close()
	st.Close()

	st = openPebble(t, dir)
	b, err = New(Config{Accounts: 4, InitialBalance: 999, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := balances(t, b); got[0] != 7 || got[1] != 50 || got[2] != 150 || got[3] != 999 {
		t.Fatalf("after restart: %v, want [7 50 150 999]", got)
	}
	g, err := b.Do(2, Request{Op: OpLock, Holder: "H"})
	if err != nil || g.Fence <= g2.Fence {
		t.Fatalf("fence after restart %d, before %d: must grow (%v)", g.Fence, g2.Fence, err)
	}
	if _, err := New(Config{Accounts: 2, Store: st}); err == nil {
		t.Fatal("a bank with fewer accounts than the store holds was started")
	}
}

func TestApply(t *testing.T) {
	mem := store.NewMemory()
	fs := &faultyStore{Store: mem}
	b := newBank(t, Config{Accounts: 3, InitialBalance: 100, Store: fs})
	lock := func(id int64, who string) uint64 {
		r, err := b.Do(id, Request{Op: OpLock, Holder: who})
		if err != nil {
			t.Fatal(err)
		}
		return r.Fence
	}
	f1, f2 := lock(1, "H"), lock(2, "H")
	ctx := context.Background()

	// A stale fence on one account refuses the whole apply.
	err := b.Apply(ctx, "H", []Change{{1, f1, 60}, {2, f2 + 1, 140}}, false, nil)
	if !errors.Is(err, account.ErrStaleFence) {
		t.Fatalf("stale fence: %v", err)
	}
	if err := b.Apply(ctx, "H", []Change{{1, 0, 60}}, false, nil); !errors.Is(err, ErrNoFence) {
		t.Fatalf("no fence: %v", err)
	}
	if err := b.Apply(ctx, "other", []Change{{1, f1, 60}}, false, nil); !errors.Is(err, account.ErrStaleFence) {
		t.Fatalf("not the holder: %v", err)
	}
	if err := b.Apply(ctx, "H", []Change{{1, f1, -1}}, false, nil); !errors.Is(err, account.ErrNegativeBalance) {
		t.Fatalf("negative: %v", err)
	}
	// A store failure refuses it too.
	fs.failing.Store(true)
	if err := b.Apply(ctx, "H", []Change{{1, f1, 60}, {2, f2, 140}}, true, nil); !errors.Is(err, ErrStore) || !errors.Is(err, errDiskFull) {
		t.Fatalf("store failure: %v", err)
	}
	if _, err := b.Do(3, Request{Op: OpWrite, Holder: "x", Value: 1}); !errors.Is(err, ErrStore) {
		t.Fatalf("single write on a failing store: %v", err)
	}
	if got := balances(t, b); got[0] != 100 || got[1] != 100 || got[2] != 100 {
		t.Fatalf("refusals changed balances: %v", got)
	}
	saved, _ := fs.Accounts()
	if saved[1] != 100 || saved[2] != 100 || saved[3] != 100 {
		t.Fatalf("refusals reached the store: %v", saved)
	}
	// Nothing stayed pinned: the holder can still write and apply.
	fs.failing.Store(false)
	rec := &store.Record{Key: "k", Fingerprint: "f", Status: 200}
	if err := b.Apply(ctx, "H", []Change{{2, f2, 140}, {1, f1, 60}}, true, rec); err != nil {
		t.Fatal(err)
	}
	if got := balances(t, b); got[0] != 60 || got[1] != 140 {
		t.Fatalf("after apply: %v", got)
	}
	for id := int64(1); id <= 2; id++ {
		if r, _ := b.Do(id, Request{Op: OpRead}); r.Holder != "" {
			t.Fatalf("account %d still locked by %q after apply with unlock", id, r.Holder)
		}
	}
	saved, _ = fs.Accounts()
	if saved[1] != 60 || saved[2] != 140 {
		t.Fatalf("store after apply: %v", saved)
	}
	if _, ok, _ := mem.Record("k"); !ok {
		t.Fatal("the record was not committed with the writes")
	}
	if _, err := b.DoContext(ctx, 1, Request{Op: OpCommit}); err == nil {
		t.Fatal("an internal operation was accepted from outside")
	}
}

// TestOverdraft pins the original bank's rules, kept for its business
// servers: a write that asks for an overdraft may leave a balance negative
// only in a bank that allows it, the store keeps it, and a restart reloads
// it only into such a bank.
func TestOverdraft(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	st := openPebble(t, dir)
	strict, err := New(Config{Accounts: 2, InitialBalance: 100, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []Request{
		{Op: OpWrite, Holder: "x", Value: -5},
		{Op: OpWrite, Holder: "x", Value: -5, Overdraft: true},
	} {
		if _, err := strict.Do(1, req); !errors.Is(err, account.ErrNegativeBalance) {
			t.Fatalf("%+v on a bank without overdrafts: %v, want ErrNegativeBalance", req, err)
		}
	}
	strict.Close()

	b, err := New(Config{Accounts: 2, InitialBalance: 100, Store: st, Overdraft: true})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Overdraft() || strict.Overdraft() {
		t.Fatalf("Overdraft() = %v, %v; want true, false", b.Overdraft(), strict.Overdraft())
	}
	if _, err := b.Do(1, Request{Op: OpWrite, Holder: "x", Value: -5}); !errors.Is(err, account.ErrNegativeBalance) {
		t.Fatalf("a write that does not ask for an overdraft: %v, want ErrNegativeBalance", err)
	}
	if _, err := b.Do(1, Request{Op: OpWrite, Holder: "x", Value: -5, Overdraft: true}); err != nil {
		t.Fatalf("overdraft: %v", err)
	}
	if err := b.Apply(context.Background(), "H", []Change{{2, 1, -1}}, false, nil); err == nil {
		t.Fatal("Apply wrote a negative balance")
	}
	b.Close()
	st.Close()

	st = openPebble(t, dir)
	if _, err := New(Config{Accounts: 2, Store: st}); err == nil {
		t.Fatal("a bank without overdrafts started on a store holding a negative balance")
	}
	b, err = New(Config{Accounts: 2, Store: st, Overdraft: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := balances(t, b); got[0] != -5 || got[1] != 100 {
		t.Fatalf("after restart: %v, want [-5 100]", got)
	}
}
