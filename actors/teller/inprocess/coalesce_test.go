package inprocess_test

import (
	"context"
	"testing"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store/storetest"
	"github.com/bank/gobank/actors/teller"
)

// TestCoalescePipeline: over accounts that release locks early, a
// coalescing Teller's batch passes on once its commit is ordered: the
// next batch locks, computes and orders its own while the ones before it
// wait for their syncs, however many of them wait (more than the batches
// a Teller lets run beside a stuck one). Each operation is answered only
// once its commit is durable, with the balance one deposit after another.
func TestCoalescePipeline(t *testing.T) {
	st := storetest.NewGated(t)
	b, err := actors.New(actors.Config{Accounts: 1, InitialBalance: 100, Store: st, EarlyLockRelease: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close) // before the store's close
	a := newAccounts(t, bank{b, st}, nil)
	tl, err := teller.New(teller.Config{Accounts: a.For("pipeline", testLease), Holder: "pipeline", Coalesce: 64, LockWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const depth = 20 // above the 16 batches a Teller runs beside stuck ones
	type answer struct {
		r   teller.Result
		err error
	}
	answers := make([]chan answer, depth)
	gates := make([]storetest.Gate, depth)
	for i := range depth {
		answers[i] = make(chan answer, 1)
		go func() {
			r, err := tl.Run(context.Background(), teller.Op{Kind: teller.Deposit, A: 1, Amount: 1})
			answers[i] <- answer{r, err}
		}()
		select {
		case gates[i] = <-st.Syncing:
		case a := <-answers[i]:
			t.Fatalf("deposit %d answered before its sync: %+v", i+1, a)
		case <-time.After(5 * time.Second):
			t.Fatalf("deposit %d did not reach its sync in 5s while %d batches before it waited for theirs", i+1, i)
		}
	}
	for i := range depth {
		select {
		case a := <-answers[i]:
			t.Fatalf("deposit %d answered before its sync: %+v", i+1, a)
		default:
		}
		gates[i].Open <- nil
		select {
		case a := <-answers[i]:
			if a.err != nil || a.r.A != int64(100+i+1) {
				t.Fatalf("deposit %d = %+v, %v; want balance %d", i+1, a.r, a.err, 100+i+1)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("deposit %d not answered in 5s after its sync", i+1)
		}
	}
}
