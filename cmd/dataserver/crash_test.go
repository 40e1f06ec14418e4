package main

// Crash tests with real processes, for "nothing acknowledged is ever lost":
// the data server is killed with SIGKILL again and again under load, and a
// business server kills itself at each step of a transfer.

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestDataServerKilledUnderLoad kills the data server with SIGKILL five
// times while eight workers send deposits, withdrawals and transfers
// through two business servers, and restarts it each time on the same
// port and --data-dir. Afterwards every account's balance lies within the
// bounds its acknowledged operations and those with unknown outcomes
// allow, no balance is negative, and no lock is left held; then every
// unknown outcome is resolved by repeating the request with its
// Idempotency-Key, and every balance must equal exactly the initial one
// plus the effects of the applied operations. The operation log, written
// by six processes of which five were killed, holds whole lines only.
func TestDataServerKilledUnderLoad(t *testing.T) {
	const (
		kills   = 5
		workers = 8
		between = 300 // operations acknowledged between kills
	)
	c := newCluster(t, "")
	c.startData()
	b1 := c.startBusiness("biz1", nil)
	b2 := c.startBusiness("biz2", nil)
	load := startLoad(t, c.client, []string{b1.URL, b2.URL}, workers, 1)
	load.waitAcked(t, between, 20*time.Second, "before the first kill")

	var recoveries []string
	for k := 1; k <= kills; k++ {
		unknownBefore := load.unknown.Load()
		killed := time.Now()
		c.data.Kill()
		c.startData()
		serving := time.Since(killed)
		firstAck := serving + load.waitAcked(t, 1, 20*time.Second, fmt.Sprintf("after restart %d", k))
		load.waitAcked(t, between, 20*time.Second, fmt.Sprintf("after restart %d", k))
		recoveries = append(recoveries, fmt.Sprintf("kill %d: serving after %v, first acknowledged operation after %v, %d unknown outcomes",
			k, serving.Round(time.Millisecond), firstAck.Round(time.Millisecond), load.unknown.Load()-unknownBefore))
	}
	ops := load.stop()
	for _, r := range recoveries {
		t.Log(r)
	}
	before := count(ops)
	t.Logf("%d operations: %d acknowledged, %d refused, %d with unknown outcome", len(ops), before.ok, before.refused, before.unknown)
	if before.ok < (kills+1)*between {
		t.Errorf("only %d operations acknowledged", before.ok)
	}

	bal := c.balances()
	checkBounds(t, bal, ops)
	t.Logf("no lock held %v after the load stopped", c.waitUnlocked(5*time.Second).Round(time.Millisecond))

	resolve(t, c.client, b1.URL, ops)
	after := count(ops)
	t.Logf("unknown outcomes resolved by repeating with the same key: %d were applied before (replayed), %d applied now, %d refused",
		after.replayed, after.ok-before.ok-after.replayed, after.refused-before.refused)
	checkExact(t, c.balances(), ops)

	// The resolutions are as durable as the rest.
	c.data.Kill()
	c.startData()
	checkExact(t, c.balances(), ops)
	lines := opLogLinesComplete(t, c.dataWD+"/data_server.log")
	t.Logf("the data server's operation log holds %d whole lines after %d kills", lines, kills+1)
}

// TestBusinessServerCrashMidTransfer kills a business server (it kills
// itself, GOBANK_TEST_CRASH_AT) at each step of a transfer of 300 from
// account 1 to 2: holding both locks, about to commit, and after the
// commit but before answering. Once the leases have ended, no lock is
// held, the total is still 10 × 1000, and the two accounts have either
// both changed (after-commit: they must have) or neither. Repeating the
// request with the same Idempotency-Key through another business server
// then applies it exactly once, and a further repetition is replayed.
func TestBusinessServerCrashMidTransfer(t *testing.T) {
	for _, stage := range []string{"locked", "before-commit", "after-commit"} {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			const valor = 300
			c := newCluster(t, "")
			c.startData()
			crasher := c.startBusiness("crasher", []string{"GOBANK_TEST_CRASH_AT=" + stage})
			o := &op{kind: opTransfer, a: 1, b: 2, v: valor, key: "crash-" + stage + "-" + randomHex(4)}
			sent := time.Now()
			send(c.client, crasher.URL, o)
			if o.out != outUnknown || o.status != 0 {
				t.Fatalf("the transfer was answered %d; want no answer, the business server killed at %q", o.status, stage)
			}
			if _, ok := crasher.Wait(5 * time.Second); !ok {
				t.Fatal("the business server is still running after the transfer lost its answer")
			}
			if ws, ok := crasher.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Errorf("the business server ended with %v, want killed by SIGKILL", crasher.Cmd.ProcessState)
			}

			c.waitUnlocked(5 * time.Second)
			t.Logf("every lock free %v after the transfer was sent (business --lock-ttl 1s)", time.Since(sent).Round(time.Millisecond))
			bal := c.balances()
			var total int64
			for _, b := range bal {
				total += b
			}
			if total != numAccounts*initial {
				t.Errorf("total %d after the crash, want %d", total, numAccounts*initial)
			}
			changed := [2]bool{bal[0] != initial, bal[1] != initial}
			switch {
			case changed[0] != changed[1]:
				t.Errorf("half a transfer: account 1 holds %d, account 2 holds %d", bal[0], bal[1])
			case stage == "after-commit" && (bal[0] != initial-valor || bal[1] != initial+valor):
				t.Errorf("after the commit: accounts 1 and 2 hold %d and %d, want %d and %d", bal[0], bal[1], initial-valor, initial+valor)
			case stage != "after-commit" && changed[0]:
				t.Errorf("crashed at %q, before any commit: accounts 1 and 2 hold %d and %d, want both %d", stage, bal[0], bal[1], initial)
			}
			for a := 3; a <= numAccounts; a++ {
				if bal[a-1] != initial {
					t.Errorf("account %d: %d, want %d untouched", a, bal[a-1], initial)
				}
			}

			// The client repeats its request with the same key elsewhere.
			rescuer := c.startBusiness("rescuer", nil)
			replayed := send(c.client, rescuer.URL, o)
			if o.out != outOK {
				t.Fatalf("the repeated transfer: %v", o)
			}
			if want := stage == "after-commit"; replayed != want {
				t.Errorf("the repeated transfer replayed=%v, want %v (the first attempt committed: %v)", replayed, want, want)
			}
			if !send(c.client, rescuer.URL, o) || o.out != outOK {
				t.Errorf("a third attempt with the same key was not replayed: %v", o)
			}
			want := []int64{initial - valor, initial + valor}
			if bal := c.balances(); bal[0] != want[0] || bal[1] != want[1] {
				t.Errorf("after the repetitions: accounts 1 and 2 hold %d and %d, want %d and %d (applied once)", bal[0], bal[1], want[0], want[1])
			}

			// Durable: a data server killed and restarted still has it.
			c.data.Kill()
			c.startData()
			if bal := c.balances(); bal[0] != want[0] || bal[1] != want[1] {
				t.Errorf("after a data server restart: accounts 1 and 2 hold %d and %d, want %d and %d", bal[0], bal[1], want[0], want[1])
			}
			c.waitUnlocked(5 * time.Second)
		})
	}
}
