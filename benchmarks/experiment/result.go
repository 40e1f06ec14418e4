package experiment

import (
	"encoding/json"
	"math"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/benchmarks/loadgen"
)

// Metrics are one cell's figures. A transport fills what it can measure:
// an HTTP cell knows the business servers' answers and the data server's
// lock waits, so of the abort causes it fills refused and timeout only.
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
	Err         error           // the cell could not be run (its verdict is then failed)
	Interrupted bool            // the load was cut short (Ctrl-C)
	Report      *loadgen.Report // nil when the load did not run
	Setup       time.Duration   // starting the servers
	Wall        time.Duration   // the whole cell: setup, load, checks, teardown
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
