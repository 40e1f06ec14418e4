package dataserver_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

func TestSnapshot(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{Accounts: 3, InitialBalance: 100})
	run(t, s, []step{
		{path: "/snapshot", token: "", status: 401, code: -8},
		{path: "/snapshot", token: "client", status: 403, code: -8},
		{path: "/snapshot?wait=x", token: "server", status: 400, code: -12},
		{path: "/snapshot", token: "server", status: 200, body: `{"accounts":3,"saldos":[100,100,100],"total":300}`},
	})
	// A lock held by another holder past the wait: refused, nothing left locked.
	f := lockFence(t, s, "H", 2)
	run(t, s, []step{
		{path: "/snapshot?wait=20ms", token: "server", status: 200, code: -1},
		{path: "/commit?id_negoc=H&unlock=1&conta=2&valor=50&fence=" + f, token: "server", status: 200, body: `{}`},
		{path: "/snapshot", token: "server", status: 200, body: `{"accounts":3,"saldos":[100,50,100],"total":250}`},
	})
	if _, holders := s.Balances(t); holders[0]+holders[1]+holders[2] != "" {
		t.Fatalf("snapshot left locks behind: %q", holders)
	}
}

// TestSnapshotAtomic moves money between accounts 1 and 2 with atomic
// commits while snapshots run: no snapshot may see half a transfer.
func TestSnapshotAtomic(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{Accounts: 2, InitialBalance: 1000})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 100 {
			a := call(t, "GET", s.URL+"/getLock?id_negoc=W&conta=1&wait=2s", s.ServerToken)
			b := call(t, "GET", s.URL+"/getLock?id_negoc=W&conta=2&wait=2s", s.ServerToken)
			g1, ok1 := a.body["fence"].(float64)
			g2, ok2 := b.body["fence"].(float64)
			if !ok1 || !ok2 {
				t.Errorf("locks: %s %s", a.raw, b.raw)
				return
			}
			f1, f2 := strconv.FormatInt(int64(g1), 10), strconv.FormatInt(int64(g2), 10)
			d := strconv.Itoa(1000 - i%10)
			e := strconv.Itoa(1000 + i%10)
			c := call(t, "GET", s.URL+"/commit?id_negoc=W&unlock=1&conta=1&valor="+d+"&fence="+f1+"&conta=2&valor="+e+"&fence="+f2, s.ServerToken)
			if c.status != 200 || c.code() != 0 {
				t.Errorf("commit: %s", c.raw)
				return
			}
		}
	})
	for range 50 {
		a := call(t, "GET", s.URL+"/snapshot", s.ServerToken)
		if a.status != 200 || a.body["total"].(float64) != 2000 {
			t.Fatalf("snapshot: %s", a.raw)
		}
	}
	wg.Wait()
}

// TestSnapshotNoCycleWithSchemes: a snapshot waits for a transaction that
// holds account 2, holding account 1; the transaction then asks for
// account 1. Under wait-die it dies at once, younger than the snapshot
// (the oldest), instead of waiting for it while it waits for the
// transaction until both waits run out; under detect the cycle is broken
// with the transaction as its victim. Either way the snapshot completes.
func TestSnapshotNoCycleWithSchemes(t *testing.T) {
	for _, tc := range []struct {
		scheme account.Scheme
		detect bool
		want   error
	}{
		{account.WaitDie, false, account.ErrDied},
		{account.Wait, true, account.ErrDeadlock},
		{account.WoundWait, false, account.ErrDeadlock},
	} {
		s := dataservertest.Start(t, dataservertest.Options{Accounts: 2, InitialBalance: 100})
		txn := actors.Request{Op: actors.OpLock, Holder: "B", TS: 100, Scheme: tc.scheme, Detect: tc.detect, Wait: 10 * time.Second}
		g, err := s.Bank.Do(2, txn)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan map[string]any, 1)
		go func() { done <- call(t, "GET", s.URL+"/snapshot?wait=10s", s.ServerToken).body }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, err := s.Bank.Do(2, actors.Request{Op: actors.OpRead})
			if err != nil {
				t.Fatal(err)
			}
			if r.Waiting == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the snapshot never waited for account 2")
			}
			time.Sleep(time.Millisecond) // polling interval, not synchronization
		}
		if _, err := s.Bank.Do(1, txn); !errors.Is(err, tc.want) {
			t.Fatalf("%v: the transaction's lock of the snapshot's account: %v, want %v", tc.scheme, err, tc.want)
		}
		if _, err := s.Bank.Do(2, actors.Request{Op: actors.OpUnlock, Holder: "B", Fence: g.Fence}); err != nil {
			t.Fatal(err)
		}
		if body := <-done; body["total"] != 200.0 {
			t.Fatalf("%v: snapshot %v", tc.scheme, body)
		}
	}
}
