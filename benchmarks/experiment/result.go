package experiment

import (
	"encoding/json"
	"math"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/benchmarks/txnload"
)

// Metrics are one cell's figures. The aborts a scheme retries (died,
// wounded, deadlock, validation) are counted by the Tellers that retried
// them; refused and timeout are the answers' (HTTP) or the Tellers'
// errors (in-process). Latency is every operation's over HTTP, the
// committed transactions' in-process.
type Metrics struct {
	Seconds  float64 // the load's wall time, draining included
	Requests int64   // every answered request, whatever its outcome
	// Commits counts the write transactions answered ok (transfers,
	// deposits, withdrawals).
	Commits           int64
	CommitsPerSec     float64
	OKTransfersPerSec float64
	TotalPerSec       float64
	P50, P99, P999    int64 // µs, every operation

	// Aborts counts the attempts the concurrency control aborted, by
	// cause; AbortsTotal is their sum.
	Aborts      map[Cause]int64
	AbortsTotal int64
	// AbortRate is AbortsTotal / (Commits + AbortsTotal): the share of
	// attempts aborted. AbortsPerCommit and AttemptsPerCommit (wasted
	// work: (Commits + AbortsTotal) / Commits) are NaN without a commit.
	AbortRate         float64
	AbortsPerCommit   float64
	AttemptsPerCommit float64

	// LockWaits counts the locks granted, LockWait their mean wait (from
	// the request's arrival to its grant); LockWaitTotal sums them.
	LockWaits     int64
	LockWait      time.Duration
	LockWaitTotal time.Duration

	// Deadlocks counts the cycles of waits the accounts' detector broke;
	// DeadlockResolved is the median time from a cycle's closing to its
	// victim's refusal, DeadlockMax the slowest (0 without a deadlock).
	Deadlocks        int64
	DeadlockResolved time.Duration
	DeadlockMax      time.Duration

	Insufficient int64            // 409 INSUFFICIENT_FUNDS: a business refusal, not an abort
	Other        int64            // every other non-ok outcome
	OtherDetail  map[string]int64 // by outcome label
}

// Verdict is a cell's correctness: its recorded history checked by the
// bank checker and porcupine, and the load generator's conservation
// check. Proven only when all three passed.
type Verdict struct {
	Proven bool
	// Bank, Linearizability and Conservation are "PASS", "FAIL",
	// "UNKNOWN" (the checker could not decide) or "not run".
	Bank, Linearizability, Conservation string
	// Reason says why the cell is not proven ("" when it is).
	Reason           string
	HistoryOps       int
	HistorySnapshots int
	Groups           int           // account groups porcupine checked apart
	CheckTime        time.Duration // reading the history and both checkers
	// History is the file a failed cell's history was kept in ("" when
	// the cell was proven), for "bank check FILE".
	History string
}

// Text is "proven" or "FAILED".
func (v Verdict) Text() string {
	if v.Proven {
		return "proven"
	}
	return "FAILED"
}

const notRun = "not run"

// Result is one finished cell.
type Result struct {
	Index int // 1-based position in the run
	Cell
	Metrics
	Verdict     Verdict
	Err         error         // the cell could not be run (its verdict is then failed)
	Ran         bool          // the load ran: the metrics are its figures
	Interrupted bool          // the load was cut short (Ctrl-C)
	Setup       time.Duration // starting the servers
	Wall        time.Duration // the whole cell: setup, load, checks, teardown
}

// Failed reports whether the cell is not proven correct, or could not run.
func (r *Result) Failed() bool { return r.Err != nil || !r.Verdict.Proven }

// commitOps are the operations that commit a write.
var commitOps = []string{"transferencia", "deposito", "saque"}

// derive fills the metrics from the load generator's report, with the
// aborts classified by def.
func (m *Metrics) derive(rep *loadgen.Report, def policyDef) {
	m.Seconds = rep.DurationSeconds
	m.Requests = rep.Requests
	for _, op := range commitOps {
		m.Commits += rep.Ops[op].OK
	}
	if rep.DurationSeconds > 0 {
		m.CommitsPerSec = float64(m.Commits) / rep.DurationSeconds
		m.OKTransfersPerSec = float64(rep.Ops["transferencia"].OK) / rep.DurationSeconds
	}
	m.TotalPerSec = rep.ThroughputTotal
	m.P50, m.P99, m.P999 = rep.Latency.P50, rep.Latency.P99, rep.Latency.P999
	m.Aborts = map[Cause]int64{}
	m.OtherDetail = map[string]int64{}
	for label, n := range rep.Outcomes {
		if n == 0 {
			continue
		}
		cause, abort := def.aborts[label]
		switch {
		case label == labelOK:
		case abort:
			m.Aborts[cause] += n
			m.AbortsTotal += n
		case label == labelInsufficient:
			m.Insufficient += n
		default:
			m.Other += n
			m.OtherDetail[label] = n
		}
	}
	m.rates()
}

// fromTxnload fills the metrics from an in-process run: a transaction
// given up for a lock is an abort of def's cause for it, one refused for
// insufficient funds a business refusal, and anything else other.
func (m *Metrics) fromTxnload(r *txnload.Result, def policyDef) {
	m.Seconds = r.Elapsed.Seconds()
	m.Requests = r.Committed + r.Refused + r.Timeouts + r.Errors
	m.Commits = r.Committed
	if m.Seconds > 0 {
		m.CommitsPerSec = float64(m.Commits) / m.Seconds
		m.TotalPerSec = float64(m.Requests) / m.Seconds
	}
	if len(r.History.Ops) > 0 && r.History.Ops[0].Op == check.OpTransferencia {
		m.OKTransfersPerSec = m.CommitsPerSec
	}
	m.P50, m.P99, m.P999 = r.P50, r.P99, r.P999
	m.Aborts = map[Cause]int64{}
	if r.Timeouts > 0 {
		m.Aborts[def.lockedCause()] += r.Timeouts
		m.AbortsTotal += r.Timeouts
	}
	m.Insufficient = r.Refused
	m.OtherDetail = map[string]int64{}
	if r.Errors > 0 {
		m.Other = r.Errors
		m.OtherDetail["error: "+r.FirstError] = r.Errors
	}
	if def.fromTeller {
		m.addAborts(r.Stats)
	}
	m.setLockWaits(r.LockWaits, r.LockWaitMean*time.Duration(r.LockWaits))
	m.Deadlocks, m.DeadlockResolved, m.DeadlockMax = r.Deadlocks, r.DeadlockResolved, r.DeadlockMax
	m.rates()
}

// setDeadlocks records the deadlocks d timed.
func (m *Metrics) setDeadlocks(d *txnload.DeadlockTimes) {
	m.Deadlocks, m.DeadlockResolved, m.DeadlockMax, _ = d.Summary()
}

// addAborts adds the aborts a scheme retried, as its tellers counted them.
func (m *Metrics) addAborts(st teller.Stats) {
	for _, a := range []struct {
		cause Cause
		n     uint64
	}{{CauseDied, st.Died}, {CauseWounded, st.Wounded}, {CauseDeadlock, st.Deadlocks}, {CauseValidation, st.Validations}} {
		if a.n > 0 {
			m.Aborts[a.cause] += int64(a.n)
			m.AbortsTotal += int64(a.n)
		}
	}
	m.rates()
}

// rates computes the abort ratios from the counts.
func (m *Metrics) rates() {
	attempts := m.Commits + m.AbortsTotal
	m.AbortRate = 0
	if attempts > 0 {
		m.AbortRate = float64(m.AbortsTotal) / float64(attempts)
	}
	m.AbortsPerCommit, m.AttemptsPerCommit = math.NaN(), math.NaN()
	if m.Commits > 0 {
		m.AbortsPerCommit = float64(m.AbortsTotal) / float64(m.Commits)
		m.AttemptsPerCommit = float64(attempts) / float64(m.Commits)
	}
}

// setLockWaits records n granted locks that waited total.
func (m *Metrics) setLockWaits(n int64, total time.Duration) {
	m.LockWaits, m.LockWaitTotal = n, total
	if n > 0 {
		m.LockWait = total / time.Duration(n)
	}
}

// number is a float that encodes NaN and infinities as JSON null.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}
