package experiment

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/benchmarks/txnload"
)

// Measurement is what a transport's runner measured of one cell.
type Measurement struct {
	// Ran says the load ran: Metrics hold its figures (but the abort
	// ratios, which runCell computes).
	Ran         bool
	Interrupted bool // the load was cut short (Ctrl-C)
	Metrics     Metrics
	Setup       time.Duration // starting the bank and its servers
	// History is the load's recorded history (nil: none). Raw, when set,
	// is the file it was read from, kept as it is for a failed cell.
	History *check.History
	Raw     []byte
	// Conserved and ConservationNote are the load's own conservation
	// check; Conservation says it was made.
	Conservation     bool
	Conserved        bool
	ConservationNote string
}

// runner runs cell c's load with settings s: in s.Groups(c.Workers,
// c.Legs) account groups, recording its history.
type runner func(ctx context.Context, s Settings, c Cell) (Measurement, error)

// runners holds the runner of each transport.
var runners = map[Transport]runner{TransportHTTP: runHTTP, TransportInprocess: runInprocess}

// runHTTP starts a fresh bank for c in this process (a data server and
// c.Servers business servers on loopback), loads it with the load
// generator, reads the data server's lock waits and stops everything.
func runHTTP(ctx context.Context, s Settings, c Cell) (m Measurement, err error) {
	def, _ := c.Policy.def()
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
	var hist bytes.Buffer
	rep, err := loadgen.Run(ctx, loadgen.Config{
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
		History:       &hist,
		SnapshotEvery: s.SnapshotEvery,
		DataServer:    cl.dataURL,
		ServerToken:   cl.token,
		Groups:        s.Groups(c.Workers, c.Legs),
	}, nil)
	if err != nil {
		return m, err
	}
	m.Ran, m.Interrupted = true, rep.Interrupted
	m.Metrics.derive(rep, def)
	if cons := rep.Conservation; cons != nil {
		m.Conservation, m.Conserved, m.ConservationNote = true, cons.OK, cons.Reason
	}
	n, total, err := cl.lockWaits()
	if err != nil {
		return m, fmt.Errorf("reading the lock waits: %w", err)
	}
	m.Metrics.setLockWaits(n, total)
	var st teller.Stats
	for _, b := range cl.biz {
		st = st.Add(b.Stats())
	}
	if def.fromTeller {
		m.Metrics.addAborts(st)
	}
	m.Metrics.setDeadlocks(cl.deadlocks)
	m.Raw = hist.Bytes()
	if m.History, err = check.Read(bytes.NewReader(m.Raw)); err != nil {
		return m, fmt.Errorf("the history cannot be read: %w", err)
	}
	return m, nil
}

// runInprocess runs c's transactions of c.Legs legs through c.Servers
// Tellers over a fresh bank in this process (package txnload): in memory,
// or over pebble in a temporary directory (c.Store).
func runInprocess(ctx context.Context, s Settings, c Cell) (m Measurement, err error) {
	def, _ := c.Policy.def()
	dist, err := loadgen.ParseDist(c.Skew.Spec)
	if err != nil {
		return m, err
	}
	cfg := txnload.Config{
		Accounts: s.Accounts, InitialBalance: s.InitialBalance,
		Tellers: c.Servers, Workers: c.Workers, Legs: c.Legs, Dist: dist, Groups: s.Groups(c.Workers, c.Legs),
		Mode: def.mode, Order: c.Order.business(), LockWait: s.LockWait,
		AmountMin: s.AmountMin, AmountMax: s.AmountMax, Duration: s.InprocessDuration, Seed: s.Seed, Record: true,
		Synchronous: true, // as the HTTP cells' data server
	}
	if def.lease {
		cfg.Lease = s.Lease
	}
	if c.Store.durable() {
		if cfg.Dir, err = os.MkdirTemp("", "gobank-experiment-"); err != nil {
			return m, err
		}
		defer func() {
			if rmErr := os.RemoveAll(cfg.Dir); err == nil {
				err = rmErr
			}
		}()
		cfg.EarlyLockRelease = c.Store.earlyLockRelease()
	}
	r, err := txnload.Run(ctx, cfg)
	if err != nil {
		return m, err
	}
	m.Ran, m.Interrupted = true, ctx.Err() != nil
	m.Metrics.fromTxnload(r, def)
	m.Conservation, m.Conserved, m.ConservationNote = true, r.Conserved, r.ConservationNote
	m.History = r.History
	return m, nil
}

// keepFiles names where a failed cell's history and porcupine's
// visualization go.
type keepFiles func(index int) (history, visualization string)

// runCell runs c, then checks its history and conservation.
func runCell(ctx context.Context, s Settings, c Cell, index int, keep keepFiles) (res Result) {
	start := time.Now()
	groups := s.Groups(c.Workers, c.Legs)
	res = Result{Index: index, Cell: c}
	res.Verdict = Verdict{Bank: notRun, Linearizability: notRun, Conservation: notRun, Groups: groups}
	res.rates() // no commit yet: the ratios are NaN until the load ran
	defer func() { res.Wall = time.Since(start) }()
	_, ok := c.Policy.def()
	run := runners[c.Transport]
	switch {
	case !ok:
		res.Err = fmt.Errorf("unknown policy %q", c.Policy)
	case run == nil:
		res.Err = fmt.Errorf("unknown transport %q", c.Transport)
	case c.Store != "" && !slices.Contains(Stores, c.Store):
		res.Err = fmt.Errorf("unknown store %q", c.Store)
	case !c.Transport.runs(c.Legs):
		res.Err = fmt.Errorf("the %s transport runs transfers (2 legs), not %d legs", c.Transport, c.Legs)
	}
	if res.Err != nil {
		res.Verdict.Reason = res.Err.Error()
		return res
	}
	m, err := run(ctx, s, c)
	res.Setup = m.Setup
	res.Err = err
	if m.Ran {
		res.Ran, res.Interrupted = true, m.Interrupted
		res.Metrics = m.Metrics
		res.rates()
	}
	histPath, vizPath := keep(index)
	switch {
	case !m.Ran || m.History == nil:
		res.Verdict.Reason = "the cell did not run: nothing to check"
		if err != nil {
			res.Verdict.Reason = err.Error()
		}
	default:
		res.Verdict = judge(m, s, groups, vizPath)
		if err != nil {
			res.Verdict.Proven = false
			res.Verdict.Reason = joinReasons(res.Verdict.Reason, err.Error())
		}
	}
	if !res.Verdict.Proven && histPath != "" && (m.Raw != nil || m.History != nil) {
		if werr := keepHistory(histPath, m); werr != nil {
			res.Verdict.Reason = joinReasons(res.Verdict.Reason, "keeping the history: "+werr.Error())
		} else {
			res.Verdict.History = histPath
		}
	}
	return res
}

// keepHistory writes m's history to path: the file as recorded, or the
// in-memory history written out.
func keepHistory(path string, m Measurement) error {
	if m.Raw != nil {
		return os.WriteFile(path, m.Raw, 0o644)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := check.Write(f, m.History); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// judge checks m's history with the bank checker and porcupine
// (partitioned into groups), and reads the load's conservation check.
// vizPath receives porcupine's visualization of a history that is not
// linearizable.
func judge(m Measurement, s Settings, groups int, vizPath string) (v Verdict) {
	t0 := time.Now()
	v = Verdict{Bank: notRun, Linearizability: notRun, Conservation: notRun, Groups: groups}
	defer func() { v.CheckTime = time.Since(t0) }()
	var reasons []string
	if m.Conservation {
		v.Conservation = "PASS"
		if !m.Conserved {
			v.Conservation = "FAIL"
			reasons = append(reasons, "conservation FAIL: "+m.ConservationNote)
		}
	} else {
		reasons = append(reasons, "conservation: not checked")
	}
	h := m.History
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
