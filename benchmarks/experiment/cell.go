package experiment

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/loadgen"
)

// Measurement is what a transport's runner measured of one cell.
type Measurement struct {
	// Report is the load generator's: latencies, outcomes, conservation.
	Report *loadgen.Report
	Setup  time.Duration // starting the servers
	// LockWaits locks were granted after waiting LockWaitTotal in all.
	LockWaits     int64
	LockWaitTotal time.Duration
	// Stats sums the business servers' tellers' counts: the aborts the
	// schemes retried, by cause.
	Stats teller.Stats
}

// runner runs cell c's load with settings s, recording its history to
// hist (loadgen.HistoryVersion, with snapshots every s.SnapshotEvery, in
// s.Groups(c.Workers) account groups).
type runner func(ctx context.Context, s Settings, c Cell, hist io.Writer) (Measurement, error)

// runners holds the runner of each transport.
var runners = map[Transport]runner{TransportHTTP: runHTTP}

// runHTTP starts a fresh bank for c in this process (a data server and
// c.Servers business servers on loopback), loads it with the load
// generator, reads the data server's lock waits and stops everything.
func runHTTP(ctx context.Context, s Settings, c Cell, hist io.Writer) (m Measurement, err error) {
	dist, err := loadgen.ParseDist(c.Skew.Spec)
	if err != nil {
		return m, err
	}
	mix, err := loadgen.ParseMix(s.Mix)
	if err != nil {
		return m, err
	}
	start := time.Now()
	cl, err := startCluster(s, c)
	if err != nil {
		return m, fmt.Errorf("starting the servers: %w", err)
	}
	m.Setup = time.Since(start)
	defer func() {
		if stopErr := cl.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("stopping the servers: %w", stopErr)
		}
	}()
	m.Report, err = loadgen.Run(ctx, loadgen.Config{
		Servers:       cl.urls,
		Token:         loadgen.DefaultToken,
		Workers:       c.Workers,
		Duration:      s.Duration,
		Mix:           mix,
		AmountMin:     s.AmountMin,
		AmountMax:     s.AmountMax,
		Accounts:      s.Accounts,
		Dist:          dist,
		Seed:          s.Seed,
		Timeout:       s.Timeout,
		History:       hist,
		SnapshotEvery: s.SnapshotEvery,
		DataServer:    cl.dataURL,
		ServerToken:   cl.token,
		Groups:        s.Groups(c.Workers),
	}, nil)
	if err != nil {
		return m, err
	}
	n, total, err := cl.lockWaits()
	if err != nil {
		return m, fmt.Errorf("reading the lock waits: %w", err)
	}
	m.LockWaits, m.LockWaitTotal = n, total
	for _, b := range cl.biz {
		m.Stats = m.Stats.Add(b.Stats())
	}
	return m, nil
}

// keepFiles names where a failed cell's history and porcupine's
// visualization go.
type keepFiles func(index int) (history, visualization string)

// runCell runs c, then checks its history and conservation.
func runCell(ctx context.Context, s Settings, c Cell, index int, keep keepFiles) (res Result) {
	start := time.Now()
	res = Result{Index: index, Cell: c}
	res.Verdict = Verdict{Bank: notRun, Linearizability: notRun, Conservation: notRun, Groups: s.Groups(c.Workers)}
	res.rates() // no commit yet: the ratios are NaN until the load ran
	defer func() { res.Wall = time.Since(start) }()
	def, ok := c.Policy.def()
	run := runners[c.Transport]
	switch {
	case !ok:
		res.Err = fmt.Errorf("unknown policy %q", c.Policy)
	case run == nil:
		res.Err = fmt.Errorf("unknown transport %q", c.Transport)
	}
	if res.Err != nil {
		res.Verdict.Reason = res.Err.Error()
		return res
	}
	var hist bytes.Buffer
	m, err := run(ctx, s, c, &hist)
	res.Setup = m.Setup
	res.Err = err
	if m.Report != nil {
		res.Report = m.Report
		res.Interrupted = m.Report.Interrupted
		res.derive(m.Report, def)
		if def.fromTeller {
			res.addAborts(m.Stats)
		}
		res.setLockWaits(m.LockWaits, m.LockWaitTotal)
	}
	if m.Report == nil || hist.Len() == 0 {
		res.Verdict.Reason = "the cell did not run: nothing to check"
		if err != nil {
			res.Verdict.Reason = err.Error()
		}
		return res
	}
	histPath, vizPath := keep(index)
	res.Verdict = judge(hist.Bytes(), m.Report, s, res.Verdict.Groups, vizPath)
	if err != nil {
		res.Verdict.Proven = false
		res.Verdict.Reason = joinReasons(res.Verdict.Reason, err.Error())
	}
	if !res.Verdict.Proven && histPath != "" {
		if werr := os.WriteFile(histPath, hist.Bytes(), 0o644); werr != nil {
			res.Verdict.Reason = joinReasons(res.Verdict.Reason, "keeping the history: "+werr.Error())
		} else {
			res.Verdict.History = histPath
		}
	}
	return res
}

// judge checks a recorded history with the bank checker and porcupine
// (partitioned into groups), and reads the load generator's conservation
// check. vizPath receives porcupine's visualization of a history that is
// not linearizable.
func judge(hist []byte, rep *loadgen.Report, s Settings, groups int, vizPath string) (v Verdict) {
	t0 := time.Now()
	v = Verdict{Bank: notRun, Linearizability: notRun, Conservation: notRun, Groups: groups}
	defer func() { v.CheckTime = time.Since(t0) }()
	var reasons []string
	if c := rep.Conservation; c != nil {
		v.Conservation = "PASS"
		if !c.OK {
			v.Conservation = "FAIL"
			reasons = append(reasons, "conservation FAIL: "+c.Reason)
		}
	} else {
		reasons = append(reasons, "conservation: not checked")
	}
	h, err := check.Read(bytes.NewReader(hist))
	if err != nil {
		reasons = append(reasons, "the history cannot be read: "+err.Error())
		v.Reason = joinReasons(reasons...)
		return v
	}
	v.HistoryOps, v.HistorySnapshots = len(h.Ops), len(h.Snapshots)
	bank := check.Bank(h)
	lin := check.Linearizable(h, check.LinearOptions{Timeout: s.LinearTimeout, Visualization: vizPath})
	v.Bank, v.Linearizability = bank.Verdict(), lin.Verdict()
	for _, r := range []check.Result{bank, lin} {
		if r.OK {
			continue
		}
		why := r.Name + " " + r.Verdict()
		if len(r.Violations) > 0 {
			why += ": " + r.Violations[0].Message
			if len(r.Violations[0].Entries) > 0 {
				why += " (" + r.Violations[0].Entries[0].String() + ")"
			}
		} else if r.Note != "" {
			why += ": " + r.Note
		}
		if r.Visualization != "" {
			why += "; visualization " + r.Visualization
		}
		reasons = append(reasons, why)
	}
	v.Proven = bank.OK && lin.OK && v.Conservation == "PASS"
	v.Reason = joinReasons(reasons...)
	return v
}

func joinReasons(rs ...string) string {
	var out []string
	for _, r := range rs {
		if r != "" {
			out = append(out, r)
		}
	}
	return strings.Join(out, "; ")
}
