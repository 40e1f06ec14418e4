package loadgen

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

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
			var batch []xfer // a batch's transfers, reused
			for !stop.Load() {
				if cfg.Requests > 0 && issued.Add(1) > cfg.Requests {
					return
				}
				p := l.pl.nextInto(rng, batch)
				if p.batch != nil {
					batch = p.batch
				}
				regroup(&p, w, cfg.Accounts, cfg.Groups)
				p.server = server
				server = (server + 1) % len(l.targets)
				t0 := time.Now()
				o := ex.do(p)
				t1 := time.Now()
				rec.record(p, o, t1.Sub(t0), cfg.Unknown5xx, ex.resp.Body())
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
	rec.record(p, o, t1.Sub(l.start)-time.Duration(p.intended), l.cfg.Unknown5xx, ex.resp.Body())
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
	// Batches, as recorder counts them; batchHist is nil without any.
	batchHist          *hdr.Histogram
	batchReq, batchOK  int64
	transfers, applied int64
	refused            map[int32]int64
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
		if r.batchHist != nil {
			if t.batchHist == nil {
				t.batchHist = hdr.New(minLatencyUS, maxLatencyUS, 3)
				t.refused = map[int32]int64{}
			}
			t.batchHist.Merge(r.batchHist)
			t.batchReq += r.batchReq
			t.batchOK += r.batchOK
			t.transfers += r.transfers
			t.applied += r.applied
			for code, n := range r.refused {
				t.refused[code] += n
			}
		}
	}
	t.opDropped = l.opDropped
	t.dropped = l.dropped.Load()
	return t
}
