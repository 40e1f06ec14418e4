package main

// Graceful shutdown with real processes: SIGTERM ends a server cleanly,
// answering what it took up and losing nothing it acknowledged.

import (
	"github.com/bank/gobank/cmd/internal/proctest"

	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDataServerSIGTERMUnderLoad sends SIGTERM to the data server while
// eight workers send operations through two business servers: it must
// exit 0 within its --shutdown-timeout (plus a margin), leave an operation
// log whose last line is whole, and, restarted on the same --data-dir,
// show every acknowledged write (checked within the bounds of the unknown
// outcomes, then exactly once they are resolved with their keys).
func TestDataServerSIGTERMUnderLoad(t *testing.T) {
	const grace = 3 * time.Second
	c := newCluster(t, "", "--shutdown-timeout", grace.String())
	c.startData()
	b1 := c.startBusiness("biz1", nil)
	b2 := c.startBusiness("biz2", nil)
	load := startLoad(t, c.client, []string{b1.URL, b2.URL}, 8, 2)
	load.waitAcked(t, 100, 20*time.Second, "before SIGTERM")

	acked := load.acked.Load()
	t0 := time.Now()
	if err := c.data.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	status, ok := c.data.Wait(grace + 2*time.Second)
	took := time.Since(t0)
	if !ok {
		t.Fatalf("the data server still runs %v after SIGTERM (--shutdown-timeout %v)", took, grace)
	}
	if status != 0 {
		t.Errorf("the data server exited with status %d after SIGTERM, want 0", status)
	}
	t.Logf("the data server exited %d %v after SIGTERM, %d operations acknowledged in between",
		status, took.Round(time.Millisecond), load.acked.Load()-acked)
	lines := opLogLinesComplete(t, filepath.Join(c.dataWD, "data_server.log"))

	c.startData()
	load.waitAcked(t, 20, 20*time.Second, "after the restart")
	ops := load.stop()
	n := count(ops)
	t.Logf("%d operations: %d acknowledged, %d refused, %d with unknown outcome; the log held %d whole lines",
		len(ops), n.ok, n.refused, n.unknown, lines)
	checkBounds(t, c.balances(), ops)
	c.waitUnlocked(5 * time.Second)
	resolve(t, c.client, b1.URL, ops)
	r := count(ops)
	t.Logf("unknown outcomes resolved by repeating with the same key: %d were applied before (replayed), %d applied now, %d refused",
		r.replayed, r.ok-n.ok-r.replayed, r.refused-n.refused)
	// A graceful stop answers every request it took up: no operation was
	// applied without its answer reaching the business server.
	if r.replayed > 0 {
		t.Errorf("%d operations were applied but not acknowledged across the graceful stop", r.replayed)
	}
	checkExact(t, c.balances(), ops)
}

// TestBusinessServerSIGTERMAnswersInFlight holds four operations inside a
// business server (GOBANK_TEST_PAUSE_AT=locked: each waits, holding its
// locks, until the server is told to stop), sends it SIGTERM, and checks
// that the server finishes and answers every one of them (200), exits 0,
// that their effects are on the data server, and that no lock is left
// held.
func TestBusinessServerSIGTERMAnswersInFlight(t *testing.T) {
	c := newCluster(t, "")
	c.startData()
	// The pause lasts until SIGTERM: a lease long enough to outlive it.
	biz := c.startBusiness("paused", []string{"GOBANK_TEST_PAUSE_AT=locked"}, "--lock-ttl", "10s")
	ops := []*op{
		{kind: opTransfer, a: 1, b: 2, v: 100},
		{kind: opTransfer, a: 4, b: 3, v: 100},
		{kind: opDeposit, a: 5, v: 50},
		{kind: opWithdraw, a: 6, v: 50},
	}
	var wg sync.WaitGroup
	for i, o := range ops {
		o.key = fmt.Sprintf("inflight-%d-%s", i, randomHex(4))
		wg.Go(func() { send(c.client, biz.URL, o) })
	}
	// Every operation holds its locks: a fail-fast getLock by someone else
	// is refused on each of accounts 1..6 (one granted is given back).
	lockedByOther := func(a int) bool {
		r, err := c.dataGet("/getLock", "conta="+strconv.Itoa(a))
		if err != nil {
			t.Fatal(err)
		}
		if r.Fence != nil {
			if _, err := c.dataGet("/unLock", fmt.Sprintf("conta=%d&fence=%d", a, *r.Fence)); err != nil {
				t.Fatal(err)
			}
			return false
		}
		return r.ErrorCode != nil && *r.ErrorCode == -1
	}
	proctest.WaitFor(t, 10*time.Second, "the four operations to hold accounts 1..6", func() bool {
		for a := 1; a <= 6; a++ {
			if !lockedByOther(a) {
				return false
			}
		}
		return true
	})

	t0 := time.Now()
	if err := biz.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	status, ok := biz.Wait(10 * time.Second)
	if !ok {
		t.Fatal("the business server still runs 10s after SIGTERM")
	}
	wg.Wait()
	t.Logf("the business server exited %d %v after SIGTERM", status, time.Since(t0).Round(time.Millisecond))
	if status != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", status)
	}
	for _, o := range ops {
		if o.out != outOK {
			t.Errorf("in flight at SIGTERM, not answered 200: %v", o)
		}
	}
	want := []int64{900, 1100, 1100, 900, 1050, 950, 1000, 1000, 1000, 1000}
	bal := c.balances()
	for i := range want {
		if bal[i] != want[i] {
			t.Errorf("account %d: %d, want %d", i+1, bal[i], want[i])
		}
	}
	c.waitUnlocked(time.Second) // released by the operations, not by their leases
	if _, err := c.client.Get(biz.URL + "/status"); err == nil {
		t.Error("the stopped business server still answers")
	}
}
