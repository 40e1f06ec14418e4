package main

// A recorded run under faults, for "prove it under stress": the load
// generator records every operation and consistent snapshots while the
// test kills and restarts a business server and the data server, pauses a
// business server past its lease, and the data server answers slowly;
// then the bank checker and the linearizability checker judge the
// history.

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/cmd/internal/proctest"
)

func TestRecordedRunUnderFaults(t *testing.T) {
	c := newCluster(t, "")
	// Every tenth data-server request waits 20ms first (test-only hook).
	c.env = append(c.env, "GOBANK_TEST_SLOW=20ms")
	c.startData()
	b1 := c.startBusiness("biz1", nil)
	b2 := c.startBusiness("biz2", nil)

	histPath := filepath.Join(t.TempDir(), "history.jsonl")
	hist, err := os.Create(histPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadgen.Config{
		Servers:       []string{b1.URL, b2.URL},
		Workers:       16,
		Duration:      8 * time.Second,
		Mix:           map[string]int{"transferencia": 60, "deposito": 15, "saque": 15, "saldo": 10},
		AmountMin:     1,
		AmountMax:     50,
		Accounts:      numAccounts,
		Seed:          7,
		Timeout:       2 * time.Second,
		Settle:        10 * time.Second,
		History:       hist,
		SnapshotEvery: 200 * time.Millisecond,
		DataServer:    c.dataURL(),
		ServerToken:   c.token,
		Groups:        5,
	}
	type result struct {
		rep *loadgen.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := loadgen.Run(context.Background(), cfg, nil)
		done <- result{rep, err}
	}()

	var faults []string
	begin := time.Now()
	// at waits until d into the run: the faults' schedule, not a
	// synchronization (nothing is assumed to have happened by then).
	at := func(d time.Duration) { time.Sleep(time.Until(begin.Add(d))) }

	at(1 * time.Second)
	b1.Kill()
	b1 = restartBusiness(t, c, "biz1", b1)
	faults = append(faults, "kill -9 and restart business server biz1")

	at(2500 * time.Millisecond)
	c.data.Kill()
	c.startData()
	faults = append(faults, "kill -9 and restart the data server")

	at(4 * time.Second)
	// Paused past its 1s lease: whatever it was doing must be refused by
	// fencing when it resumes.
	if err := b2.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	at(5500 * time.Millisecond)
	if err := b2.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	faults = append(faults, "SIGSTOP business server biz2 for 1.5s (lease 1s), then SIGCONT")

	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := hist.Close(); err != nil {
		t.Fatal(err)
	}
	rep := r.rep
	t.Logf("faults: %q", faults)
	t.Logf("%d operations: %d ok, %d unknown", rep.Requests, rep.OK, rep.Unknown)
	if rep.Conservation != nil && !rep.Conservation.OK {
		t.Errorf("load generator's conservation check: %s", rep.Conservation.Reason)
	}

	h, err := check.ReadFile(histPath)
	if err != nil {
		t.Fatal(err)
	}
	bank := check.Bank(h)
	lin := check.Linearizable(h, check.LinearOptions{Timeout: 2 * time.Minute, Visualization: histPath + ".html"})
	for _, res := range []check.Result{bank, lin} {
		t.Logf("%s: ok=%v inconclusive=%v, %d entries checked in %v %s", res.Name, res.OK, res.Inconclusive, res.Checked, res.Duration, res.Note)
		if !res.OK {
			t.Errorf("%s checker failed: %+v (visualization: %s)", res.Name, res.Violations, res.Visualization)
		}
	}
	if rep.OK < 500 || bank.Checked < 500 {
		t.Errorf("too little was checked: %d ok operations, %d entries", rep.OK, bank.Checked)
	}
}

// restartBusiness starts a business server on the port old listened on,
// as a supervisor restarting it would.
func restartBusiness(t *testing.T, c *cluster, name string, old *proctest.Proc) *proctest.Proc {
	t.Helper()
	wd := mkdir(t, c.root, name+"-wd-"+strconv.Itoa(len(c.biz)))
	args := []string{c.data.URL, old.Port(t), "--host", "127.0.0.1", "--id", name,
		"--log", filepath.Join(wd, "business_server.log"),
		"--lock-ttl", "1s", "--lock-wait", "500ms", "--data-timeout", "1s"}
	p := proctest.Start(t, name, wd, c.bizBin, c.env, args...)
	c.biz = append(c.biz, p)
	return p
}
