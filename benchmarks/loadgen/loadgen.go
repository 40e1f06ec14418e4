// Package loadgen is the load generator behind "bank bench": it drives the
// bank's business servers (or its data server) over HTTP, measures latency
// in an HdrHistogram, counts every outcome by kind, and checks afterwards
// that no money was created or destroyed.
//
// Two loops are offered because they answer different questions. The
// closed loop (Config.Rate == 0) runs Workers goroutines that each send
// back to back: it finds the throughput the servers sustain, but a stalled
// server also stalls the generator, so its latencies understate queueing.
// The open loop (Rate > 0) sends at a fixed arrival schedule and measures
// each latency from the request's intended send time, as wrk2 and k6's
// constant-arrival-rate do, so a stall shows up in the percentiles instead
// of being hidden by "coordinated omission". A request whose slot comes
// while MaxInflight requests are outstanding is counted as dropped, never
// silently skipped.
//
// The conservation check reads every balance before and after the run
// (through the first business server's /saldo). Deposits and withdrawals
// the bank acknowledged must account for the whole difference; requests
// whose outcome the client cannot know (timeouts, broken connections, a
// 5xx without the bank's error body) widen the allowed range by their
// amounts. Transfers never change the sum. The check assumes nothing else
// writes to the bank during the run.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Target names what the generator talks to.
type Target string

// Targets.
const (
	// TargetBusiness drives business servers through the public routes.
	TargetBusiness Target = "business"
	// TargetData drives a data server's routes with the server credential.
	TargetData Target = "data"
)

// Defaults applied by Run to zero fields of Config, and by Command to its
// flags.
const (
	// DefaultWorkers is enough concurrency to saturate a few business
	// servers on a small machine without drowning them in lock waits.
	DefaultWorkers = 64
	// DefaultDuration is long enough for stable percentiles, short enough
	// to iterate.
	DefaultDuration = 10 * time.Second
	// DefaultMaxInflight bounds the open loop's outstanding requests (and
	// its connections per server).
	DefaultMaxInflight = 1024
	// DefaultAccounts matches the original bank's ten demo accounts.
	DefaultAccounts = 10
	// DefaultAmountMin and DefaultAmountMax keep amounts small beside the
	// demo balances of 1000, so that most withdrawals succeed.
	DefaultAmountMin = 1
	DefaultAmountMax = 100
	// DefaultTimeout is below the business servers' own request budget
	// (lock retry + data calls), so a timeout here means a stuck server.
	DefaultTimeout = 5 * time.Second
	// DefaultSettle covers a business server finishing, after we gave up,
	// a request that waited for locks and data calls.
	DefaultSettle = 10 * time.Second
	// DefaultToken is the original client's default token.
	DefaultToken = "ba0f"
)

// Latency bounds of the histograms, in microseconds: a latency beyond
// them is clamped (and still counted), never lost.
const (
	minLatencyUS = 1
	maxLatencyUS = 60_000_000
)

// Config describes one run. Zero fields take the defaults above; Mix
// defaults to DefaultBusinessMix or DefaultDataMix by target.
type Config struct {
	// Target is TargetBusiness (default) or TargetData.
	Target Target
	// Servers are base URLs ("http://localhost:5001"); requests are spread
	// over them round-robin. The conservation check reads through the first.
	Servers []string
	// Token goes in the "token" header: a client token for the business
	// target (default "ba0f"), the server credential for the data target.
	Token string
	// Workers is the closed loop's concurrency.
	Workers int
	// Duration bounds the run; Requests bounds the number of operations
	// (open loop: operations scheduled, dropped ones included). With both,
	// whichever comes first ends it; with neither, Duration is 10s.
	Duration time.Duration
	Requests int64
	// Rate > 0 selects the open loop: operations per second at a fixed
	// schedule. MaxInflight bounds the operations outstanding at once.
	Rate        float64
	MaxInflight int
	// Mix weights operations by name (see ParseMix).
	Mix map[string]int
	// AmountMin..AmountMax bounds the uniformly drawn amounts.
	AmountMin, AmountMax int64
	// Accounts: operations use accounts 1..Accounts, picked by Dist.
	Accounts int
	Dist     Dist
	// Seed makes the operation sequence (ops, accounts, amounts, servers)
	// reproducible: per worker in the closed loop, in full in the open loop.
	Seed uint64
	// Timeout bounds each HTTP request.
	Timeout time.Duration
	// NoCheck skips the conservation check (it is always skipped for the
	// data target, whose writes are balance-neutral by construction).
	NoCheck bool
	// Unknown5xx counts every 5xx as an unknown outcome, even one with the
	// bank's error body (which promises "not applied or rolled back").
	Unknown5xx bool
	// Settle bounds how long, when some writes have unknown outcomes, the
	// final balances are re-read until they stop changing: the servers may
	// still be working on requests the client gave up on.
	Settle time.Duration
	// ProgressInterval is how often the progress line is redrawn; zero
	// means 250ms on a terminal and 1s otherwise.
	ProgressInterval time.Duration

	// History, when set, receives every operation as invoked and returned,
	// one JSON line each (see HistoryVersion for the format); business
	// target only. The initial balances are read for it even with NoCheck.
	History io.Writer
	// SnapshotEvery > 0 records a /snapshot of the data server DataServer
	// (with the server credential ServerToken) in the history that often,
	// plus one before and one after the load.
	SnapshotEvery time.Duration
	DataServer    string
	ServerToken   string
	// Groups > 1 splits the accounts into that many contiguous blocks
	// (GroupOf); worker w (open loop: operation i) stays within group
	// w mod Groups, so no transfer crosses groups.
	Groups int
}

// normalize applies the defaults and rejects impossible values.
func (c Config) normalize() (Config, error) {
	if c.Target == "" {
		c.Target = TargetBusiness
	}
	if _, ok := targetOps[c.Target]; !ok {
		return c, fmt.Errorf("target %q: want business or data", c.Target)
	}
	if len(c.Servers) == 0 {
		return c, errors.New("no servers given")
	}
	if c.Token == "" {
		if c.Target == TargetData {
			return c, errors.New("the data target needs the server credential (--token or $BANK_SERVER_TOKEN)")
		}
		c.Token = DefaultToken
	}
	switch {
	case c.Workers < 0, c.Duration < 0, c.Requests < 0, c.MaxInflight < 0, c.Accounts < 0,
		c.Timeout < 0, c.Settle < 0, c.ProgressInterval < 0:
		return c, errors.New("negative worker count, duration, request count, bound, account count or timeout")
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return c, fmt.Errorf("rate %v: want a finite number >= 0", c.Rate)
	case c.Rate > 10_000_000:
		return c, fmt.Errorf("rate %v: at most 10000000/s", c.Rate)
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Duration == 0 && c.Requests == 0 {
		c.Duration = DefaultDuration
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.Accounts == 0 {
		c.Accounts = DefaultAccounts
	}
	if c.AmountMin == 0 && c.AmountMax == 0 {
		c.AmountMin, c.AmountMax = DefaultAmountMin, DefaultAmountMax
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.Mix == nil {
		spec := DefaultBusinessMix
		if c.Target == TargetData {
			spec = DefaultDataMix
		}
		m, err := ParseMix(spec)
		if err != nil {
			panic(err) // the defaults are constants
		}
		c.Mix = m
	}
	if c.Target == TargetData {
		c.NoCheck = true
		if c.History != nil {
			return c, errors.New("history: business target only")
		}
	}
	switch {
	case c.Groups < 0 || c.SnapshotEvery < 0:
		return c, errors.New("negative group count or snapshot interval")
	case c.Groups > 1 && c.Accounts < c.Groups:
		return c, fmt.Errorf("groups %d: more groups than accounts (%d)", c.Groups, c.Accounts)
	case c.Groups > 1 && c.Mix["transferencia"] > 0 && c.Accounts < 2*c.Groups:
		return c, fmt.Errorf("groups %d: transfers need at least two accounts per group (have %d accounts)", c.Groups, c.Accounts)
	case c.SnapshotEvery > 0 && c.History == nil:
		return c, errors.New("snapshots are recorded in the history: give one")
	case c.SnapshotEvery > 0 && (c.DataServer == "" || c.ServerToken == ""):
		return c, errors.New("snapshots need the data server's URL and the server credential")
	}
	return c, nil
}

// ErrUsage marks an error in the command line or the Config; a CLI exits 2
// for it.
var ErrUsage = errors.New("usage")

// ErrConservation is returned by Command when the conservation check
// fails.
var ErrConservation = errors.New("conservation check failed")

// usageError marks err as a usage error for errors.Is(err, ErrUsage).
type usageError struct{ err error }

func (u usageError) Error() string        { return u.err.Error() }
func (u usageError) Unwrap() error        { return u.err }
func (u usageError) Is(target error) bool { return target == ErrUsage }

func usagef(f string, a ...any) error { return usageError{fmt.Errorf(f, a...)} }
func asUsage(err error) error         { return usageError{err} }

// Run performs one run and returns its report. progress, when not nil,
// receives a progress line while it runs (redrawn in place when it is a
// terminal). A failed conservation check is reported in
// Report.Conservation, not as an error: errors are for runs that could not
// be made (bad Config, balances unreadable before the start). Cancelling
// ctx ends the load early; the report then has Interrupted set.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, asUsage(err)
	}
	pl, err := newPlanner(cfg.Target, cfg.Mix, cfg.Dist, cfg.Accounts, cfg.AmountMin, cfg.AmountMax)
	if err != nil {
		return nil, asUsage(err)
	}
	// Enough connections that no request waits for one: a wait would be
	// timed as the server's latency, and its timeout cannot be told from
	// an unanswered request.
	maxConns := max(cfg.Workers, snapshotParallelism)
	if cfg.Rate > 0 {
		maxConns = max(cfg.MaxInflight, snapshotParallelism)
	}
	targets := make([]*target, len(cfg.Servers))
	for i, s := range cfg.Servers {
		if targets[i], err = newTarget(s, maxConns, cfg.Timeout); err != nil {
			return nil, asUsage(err)
		}
	}
	defer func() {
		for _, t := range targets {
			t.hc.CloseIdleConnections()
		}
	}()

	rep := newReport(cfg)
	var before []int64
	if !cfg.NoCheck || cfg.History != nil {
		if before, err = readBalances(ctx, targets[0], cfg.Token, cfg.Accounts, cfg.Timeout); err != nil {
			return nil, fmt.Errorf("conservation check: reading the balances before the run: %w (do accounts 1..%d exist? --no-check skips the check)", err, cfg.Accounts)
		}
	}

	l := &loop{cfg: cfg, pl: pl, targets: targets, pid: os.Getpid()}
	l.start = time.Now()
	var snaps *snapshotter
	stopSnaps := make(chan struct{})
	var snapsDone sync.WaitGroup
	if cfg.History != nil {
		l.hist = newHistory(cfg.History)
		l.hist.start = l.start
		l.hist.header(cfg.Target, cfg.Accounts, cfg.Groups, before)
		if cfg.SnapshotEvery > 0 {
			if snaps, err = newSnapshotter(l.hist, cfg.DataServer, cfg.ServerToken, cfg.Accounts, cfg.Timeout, cfg.SnapshotEvery, cfg.Unknown5xx); err != nil {
				return nil, asUsage(err)
			}
			defer snaps.close()
			snaps.read()
			snapsDone.Go(func() { snaps.run(stopSnaps) })
		}
	}
	stopProgress := startProgress(progress, cfg.ProgressInterval, l.start, l.live)
	if cfg.Rate > 0 {
		l.runOpen(ctx)
	} else {
		l.runClosed(ctx)
	}
	elapsed := time.Since(l.start)
	stopProgress()
	close(stopSnaps)
	snapsDone.Wait()
	if snaps != nil {
		snaps.read()
	}
	if l.hist != nil {
		n, err := l.hist.close()
		rep.HistoryLines = n
		if err != nil {
			return nil, fmt.Errorf("writing the history: %w", err)
		}
	}

	sum := l.merge()
	rep.fill(sum, elapsed, ctx.Err() != nil)
	if !cfg.NoCheck {
		rep.Conservation = l.check(ctx, before, sum, ctx.Err() != nil)
	}
	return rep, nil
}

// snapshotParallelism bounds the concurrent /saldo reads of the
// conservation check: enough to read thousands of accounts quickly, few
// enough not to be a load test of their own.
const snapshotParallelism = 16

// recorder holds one worker's (or one open-loop sender's) results. Only
// its owner writes it, so recording takes no lock; live is read by the
// progress line.
type recorder struct {
	hist     *hdr.Histogram
	outcomes map[outcome]int64
	opReq    [numOps]int64
	opOK     [numOps]int64
	unknown  int64
	// Money the bank acknowledged moving, and money whose fate is unknown.
	deposited, withdrawn            int64
	unknownDeposit, unknownWithdraw int64
	unknownTransfers                int64

	live struct {
		done, ok atomic.Int64
		_        [48]byte // keep recorders' counters on separate cache lines
	}
}

func newRecorder() *recorder {
	return &recorder{hist: hdr.New(minLatencyUS, maxLatencyUS, 3), outcomes: make(map[outcome]int64, 8)}
}

func (r *recorder) record(p planned, o outcome, lat time.Duration, unknown5xx bool) {
	us := lat.Microseconds()
	us = min(max(us, minLatencyUS), maxLatencyUS)
	_ = r.hist.RecordValue(us) // in range by construction
	r.outcomes[o]++
	r.opReq[p.op]++
	ok := o == okOutcome
	unknown := !ok && o.unknown(unknown5xx)
	if ok {
		r.opOK[p.op]++
		r.live.ok.Add(1)
	}
	if unknown {
		r.unknown++
	}
	switch p.op {
	case opDeposito:
		if ok {
			r.deposited += p.amount
		} else if unknown {
			r.unknownDeposit += p.amount
		}
	case opSaque:
		if ok {
			r.withdrawn += p.amount
		} else if unknown {
			r.unknownWithdraw += p.amount
		}
	case opTransferencia:
		if unknown {
			r.unknownTransfers++
		}
	}
	r.live.done.Add(1)
}

// loop runs the load phase.
type loop struct {
	cfg     Config
	pl      *planner
	targets []*target
	pid     int
	start   time.Time
	hist    *history // nil: no history

	mu      sync.Mutex // guards recs while the open loop adds senders
	recs    []*recorder
	dropped atomic.Int64
	// opDropped is written by the open loop's scheduler only.
	opDropped [numOps]int64
}

// live sums the progress counters.
func (l *loop) live() (done, ok, dropped int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		done += r.live.done.Load()
		ok += r.live.ok.Load()
	}
	return done, ok, l.dropped.Load()
}

func (l *loop) id(kind string, i int) string {
	return "loadgen-" + strconv.Itoa(l.pid) + "-" + kind + strconv.Itoa(i)
}

// runClosed runs Workers goroutines that send back to back until the
// duration, the request budget or ctx runs out.
func (l *loop) runClosed(ctx context.Context) {
	cfg := l.cfg
	recs := make([]*recorder, cfg.Workers)
	for i := range recs {
		recs[i] = newRecorder()
	}
	l.mu.Lock() // the progress line may already be reading
	l.recs = recs
	l.mu.Unlock()
	// Workers poll an atomic flag rather than ctx.Err() or the clock:
	// cheaper, and shared by every way a run can end.
	var stop atomic.Bool
	finished := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		var expire <-chan time.Time
		if cfg.Duration > 0 {
			t := time.NewTimer(cfg.Duration)
			defer t.Stop()
			expire = t.C
		}
		select {
		case <-ctx.Done():
		case <-expire:
		case <-finished:
		}
		stop.Store(true)
	})
	var issued atomic.Int64
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		rec := recs[w]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)+1))
			ex := newExecutor(l.targets, cfg.Token, cfg.Timeout, l.id("w", w))
			defer ex.release()
			server := w % len(l.targets)
			for !stop.Load() {
				if cfg.Requests > 0 && issued.Add(1) > cfg.Requests {
					return
				}
				p := l.pl.next(rng)
				regroup(&p, w, cfg.Accounts, cfg.Groups)
				p.server = server
				server = (server + 1) % len(l.targets)
				t0 := time.Now()
				o := ex.do(p)
				t1 := time.Now()
				rec.record(p, o, t1.Sub(t0), cfg.Unknown5xx)
				if l.hist != nil {
					l.hist.op(w, p, t0, t1, o, ex.resp.Body(), cfg.Unknown5xx)
				}
			}
		})
	}
	wg.Wait()
	close(finished)
	watcher.Wait()
}

// sender is an open-loop goroutine that sends the operations handed to it.
type sender struct {
	id   int
	jobs chan planned
	rec  *recorder
	ex   *executor
}

// runOpen sends at a fixed schedule. One scheduler goroutine (this one)
// draws the whole operation sequence, so it is reproducible, and hands
// each operation at its intended time to an idle sender; with none idle
// and MaxInflight senders busy, the operation is dropped. Idle senders are
// kept on a stack, so the most recently used is reused: at low
// concurrency only a few senders (and their histograms) ever exist.
func (l *loop) runOpen(ctx context.Context) {
	cfg := l.cfg
	var (
		idleMu sync.Mutex
		idle   []*sender
		all    []*sender
		wg     sync.WaitGroup
	)
	release := func(s *sender) {
		idleMu.Lock()
		idle = append(idle, s)
		idleMu.Unlock()
	}
	acquire := func() *sender {
		idleMu.Lock()
		defer idleMu.Unlock()
		if n := len(idle); n > 0 {
			s := idle[n-1]
			idle = idle[:n-1]
			return s
		}
		if len(all) >= cfg.MaxInflight {
			return nil
		}
		s := &sender{
			id:   len(all),
			jobs: make(chan planned, 1),
			rec:  newRecorder(),
			ex:   newExecutor(l.targets, cfg.Token, cfg.Timeout, l.id("s", len(all))),
		}
		all = append(all, s)
		l.mu.Lock()
		l.recs = append(l.recs, s.rec)
		l.mu.Unlock()
		wg.Go(func() {
			defer s.ex.release()
			for p := range s.jobs {
				l.sendScheduled(s.id, s.ex, s.rec, p)
				release(s)
			}
		})
		return s
	}

	rng := rand.New(rand.NewPCG(cfg.Seed, 0))
	nsPer := 1e9 / cfg.Rate
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	done := ctx.Done()
schedule:
	for i := int64(0); cfg.Requests == 0 || i < cfg.Requests; i++ {
		intended := int64(float64(i) * nsPer)
		if cfg.Duration > 0 && intended >= int64(cfg.Duration) {
			break
		}
		// Go's timers wake an idle process up to a millisecond late (its
		// poller sleeps in whole milliseconds), which would be counted as
		// latency at rates above 1000/s: the timer covers all but the last
		// stretch, which a precise sleep of this thread covers. Waits too
		// short for a system call to pay off are left to the timer: at the
		// rates that make them, the process is busy and its timers are
		// checked often.
		wait := time.Duration(intended) - time.Since(l.start)
		if wait > preciseSleepBelow {
			if !l.sleep(timer, wait-preciseSleepBelow, done) {
				break schedule
			}
			wait = time.Duration(intended) - time.Since(l.start)
		}
		switch {
		case wait >= minPreciseSleep:
			preciseSleep(wait)
		case wait > 0:
			if !l.sleep(timer, wait, done) {
				break schedule
			}
		}
		select {
		case <-done:
			break schedule
		default:
		}
		p := l.pl.next(rng)
		regroup(&p, int(i%int64(max(cfg.Groups, 1))), cfg.Accounts, cfg.Groups)
		p.server = int(i % int64(len(l.targets)))
		p.intended = intended
		s := acquire()
		if s == nil {
			l.opDropped[p.op]++
			l.dropped.Add(1)
			continue
		}
		s.jobs <- p // never blocks: an idle sender's buffer is empty
	}
	idleMu.Lock()
	for _, s := range all {
		close(s.jobs)
	}
	idleMu.Unlock()
	wg.Wait()
}

// sleep waits d on timer, or until done is closed (then it returns false).
func (l *loop) sleep(timer *time.Timer, d time.Duration, done <-chan struct{}) bool {
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-done:
		return false
	}
}

// sendScheduled sends an open-loop operation and records its latency from
// the intended send time, not from when the request left: any delay in
// getting it out (a late scheduler, a busy machine) is latency a user at
// that arrival rate would see.
func (l *loop) sendScheduled(client int, ex *executor, rec *recorder, p planned) {
	t0 := time.Now()
	o := ex.do(p)
	t1 := time.Now()
	rec.record(p, o, t1.Sub(l.start)-time.Duration(p.intended), l.cfg.Unknown5xx)
	if l.hist != nil {
		l.hist.op(client, p, t0, t1, o, ex.resp.Body(), l.cfg.Unknown5xx)
	}
}

// totals are the merged results of every recorder.
type totals struct {
	hist                            *hdr.Histogram
	outcomes                        map[outcome]int64
	opReq, opOK, opDropped          [numOps]int64
	requests, ok, unknown, dropped  int64
	deposited, withdrawn            int64
	unknownDeposit, unknownWithdraw int64
	unknownTransfers                int64
}

func (l *loop) merge() totals {
	t := totals{hist: hdr.New(minLatencyUS, maxLatencyUS, 3), outcomes: map[outcome]int64{}}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		t.hist.Merge(r.hist)
		for k, v := range r.outcomes {
			t.outcomes[k] += v
			t.requests += v
		}
		for o := range numOps {
			t.opReq[o] += r.opReq[o]
			t.opOK[o] += r.opOK[o]
			t.ok += r.opOK[o]
		}
		t.unknown += r.unknown
		t.deposited += r.deposited
		t.withdrawn += r.withdrawn
		t.unknownDeposit += r.unknownDeposit
		t.unknownWithdraw += r.unknownWithdraw
		t.unknownTransfers += r.unknownTransfers
	}
	t.opDropped = l.opDropped
	t.dropped = l.dropped.Load()
	return t
}
