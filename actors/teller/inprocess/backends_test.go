package inprocess_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/cluster"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/store/pgserver/pgtest"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/actors/teller/inprocess"
	"github.com/bank/gobank/actors/teller/tellertest"
	"github.com/bank/gobank/http/freeport"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testLease is the lease of the holders of the tests of Accounts.
const testLease = 10 * time.Second

// The orchestration's table of tests, run by a Teller over each backend
// with no socket.
func TestTeller(t *testing.T) {
	for _, be := range []struct {
		name string
		new  tellertest.NewAccounts
	}{
		{"memory", newMemoryAccounts},
		{"durable", newDurableAccounts},
		{"durable-elr", newDurableELRAccounts},
		{"cluster", newClusterAccounts},
	} {
		t.Run(be.name, func(t *testing.T) { tellertest.Run(t, be.new) })
	}
}

// The constructors of the conformance suite: accounts 1..accounts holding
// initial, on a fresh bank stopped when t ends.

// newMemoryAccounts: an actors.Bank over an in-memory store.
func newMemoryAccounts(t *testing.T, accounts int, initial int64) tellertest.Bind {
	return holders(t, startMemory(t, accounts, initial))
}

// newDurableAccounts: an actors.Bank over pebble in t.TempDir().
func newDurableAccounts(t *testing.T, accounts int, initial int64) tellertest.Bind {
	return holders(t, startDurable(t, accounts, initial))
}

// newDurableELRAccounts: an actors.Bank over pebble in t.TempDir() that
// releases locks early (a coalescing Teller pipelines its batches across
// their syncs).
func newDurableELRAccounts(t *testing.T, accounts int, initial int64) tellertest.Bind {
	return holders(t, startPebble(t, accounts, initial, true))
}

// newClusterAccounts: a one-member cluster.Bank over PostgreSQL.
func newClusterAccounts(t *testing.T, accounts int, initial int64) tellertest.Bind {
	return holders(t, startCluster(t, accounts, initial))
}

// bank is a started backend: the bank and the store it commits to.
type bank struct {
	inprocess.Bank
	records inprocess.Records
}

func holders(t *testing.T, b bank) tellertest.Bind {
	a := newAccounts(t, b, nil)
	return func(holder string, lease time.Duration) teller.Accounts {
		return inspected{a.For(holder, lease), b.Bank}
	}
}

// inspected is a holder's accounts that can also tell how many lock
// requests wait on an account, for tellertest.
type inspected struct {
	inprocess.Holder
	bank inprocess.Bank
}

func (i inspected) Waiting(_ context.Context, id int64) (int, error) {
	r, err := i.bank.Do(id, actors.Request{Op: actors.OpRead})
	return r.Waiting, err
}

func newAccounts(t testing.TB, b bank, records inprocess.Records) *inprocess.Accounts {
	t.Helper()
	if records == nil {
		records = b.records
	}
	a, err := inprocess.New(inprocess.Config{Bank: b.Bank, Records: records})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func startMemory(t testing.TB, accounts int, initial int64) bank {
	t.Helper()
	st := store.NewMemory()
	b, err := actors.New(actors.Config{Accounts: accounts, InitialBalance: initial, Store: st, DeadlockDetection: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return bank{b, st}
}

func startDurable(t testing.TB, accounts int, initial int64) bank {
	t.Helper()
	return startPebble(t, accounts, initial, false)
}

// startPebble starts a bank over pebble in t.TempDir(), releasing locks
// early with elr.
func startPebble(t testing.TB, accounts int, initial int64, elr bool) bank {
	t.Helper()
	st, err := store.OpenPebble(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	b, err := actors.New(actors.Config{Accounts: accounts, InitialBalance: initial, Store: st, DeadlockDetection: true, EarlyLockRelease: elr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close) // before the store's close
	return bank{b, st}
}

func startCluster(t testing.TB, accounts int, initial int64) bank {
	t.Helper()
	st, err := store.OpenPostgres(pgtest.ForTest(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	base, err := freeport.Block(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	manage := "127.0.0.1:" + strconv.Itoa(base+1)
	b, err := cluster.Join(cluster.Config{Accounts: accounts, InitialBalance: initial, Store: st, DeadlockDetection: true,
		Host: "127.0.0.1", Port: base, Provider: cluster.Automanaged(base+1, []string{manage}, 100*time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close) // before the store's close
	deadline := time.Now().Add(20 * time.Second)
	for len(b.Members()) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the member did not see itself within 20s")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded by the deadline
	}
	return bank{b, st}
}
