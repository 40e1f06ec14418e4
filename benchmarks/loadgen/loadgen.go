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
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

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
	pl.batch = cfg.Batch
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
		targets[i].hc.MaxResponseBodySize = max(targets[i].hc.MaxResponseBodySize, batchAnswerMax(cfg.Batch))
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

	// Batches (Config.Batch > 1): the POST /transferencias sent and those
	// answered with results, their transfers, the transfers applied and
	// those refused by error_code, and each batch's latency. batchHist is
	// nil until the first batch.
	batchHist          *hdr.Histogram
	batchReq, batchOK  int64
	transfers, applied int64
	refused            map[int32]int64

	live struct {
		done, ok atomic.Int64
		_        [48]byte // keep recorders' counters on separate cache lines
	}
}

func newRecorder() *recorder {
	return &recorder{hist: hdr.New(minLatencyUS, maxLatencyUS, 3), outcomes: make(map[outcome]int64, 8)}
}

// record counts an operation that ended with o after lat; body is its
// answer, read for a batch's results.
func (r *recorder) record(p planned, o outcome, lat time.Duration, unknown5xx bool, body []byte) {
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
			r.unknownTransfers += int64(max(1, len(p.batch)))
		}
		if p.batch != nil {
			r.recordBatch(p, ok, us, body)
		}
	}
	r.live.done.Add(1)
}

// recordBatch counts a batch, whose latency was us, and when it was
// answered with results (ok), its transfers' results.
func (r *recorder) recordBatch(p planned, ok bool, us int64, body []byte) {
	if r.batchHist == nil {
		r.batchHist = hdr.New(minLatencyUS, maxLatencyUS, 3)
		r.refused = make(map[int32]int64, 4)
	}
	_ = r.batchHist.RecordValue(us) // in range: record clamped it
	r.batchReq++
	r.transfers += int64(len(p.batch))
	if ok {
		r.batchOK++
		r.applied += batchTally(body, func(code int32) { r.refused[code]++ })
	}
}
