// Package txnload drives transactions of 2 to 16 legs through Tellers over
// the in-process accounts of one bank — actors, the lock rules, the
// durable store, no socket — in a closed loop, and records what happened
// as a history the checkers of package check judge. It is the lock-scheme
// experiment's in-process transport, where contention and cycles can be
// studied as DBx1000 does (its transactions touch 16 rows), beside the
// HTTP transport's two-account transfers.
//
// A transaction of L legs is L/2 transfers of v made at once: legs 0, 2,
// 4, ... are debited v and legs 1, 3, 5, ... credited v (with L odd, the
// last leg is credited v and the first debited 2v). It conserves money,
// each account's balance moves by v as in a transfer (so that wider
// transactions are no likelier to be refused for insufficient funds), and
// with two legs it is a transfer.
//
// Its accounts are drawn from Config.Dist. With Groups, worker w stays in
// group w mod Groups, each account drawn over all of them and folded into
// that group (each group has its own hottest account), as loadgen's
// workers do, so that the checker can split the history by group: a group
// then has at most ⌈Workers/Groups⌉ concurrent clients, which porcupine's
// search needs (a group that every worker reaches has them all).
package txnload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/actors/teller/inprocess"
	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/loadgen"
)

// Config is one run.
type Config struct {
	// Accounts 1..Accounts, each starting with InitialBalance.
	Accounts       int
	InitialBalance int64
	// Tellers is how many Tellers (lock holders, as business servers are)
	// share the load; Workers closed-loop clients are spread over them.
	Tellers int
	Workers int
	// Legs per transaction, 2..teller.MaxLegs.
	Legs int
	// Dist draws the accounts.
	Dist loadgen.Dist
	// Groups, when above 1, splits the accounts into that many contiguous
	// groups (loadgen.GroupOf) and keeps each transaction within one, so
	// that the linearizability check can be split by group. Each group
	// must hold at least Legs accounts.
	Groups int
	// Mode, Order and LockWait are the Tellers'; Lease is their locks'
	// lease (0: none).
	Mode     teller.LockMode
	Order    teller.LockOrder
	LockWait time.Duration
	Lease    time.Duration
	// AmountMin..AmountMax is v, drawn uniformly.
	AmountMin, AmountMax int64
	// Duration of the load, and the seed of every draw.
	Duration time.Duration
	Seed     uint64
	// Dir, when set, makes the bank durable: a pebble store in Dir. Empty:
	// in memory.
	Dir string
	// Synchronous is the actors' (actors.Config.Synchronous).
	Synchronous bool
	// EarlyLockRelease is the actors' (actors.Config.EarlyLockRelease):
	// with Dir, a transaction's locks go as soon as its writes are
	// ordered in the store, before they are synced.
	EarlyLockRelease bool
	// Record keeps a history of every transaction (Result.History).
	Record bool
}

// Result is what a run measured.
type Result struct {
	// Elapsed is the load's duration, from the first call to the last
	// answer.
	Elapsed time.Duration
	// Transactions by outcome: committed, refused for insufficient funds,
	// given up at LockWait (ErrLocked), and anything else (Errors; the
	// first one in FirstError).
	Committed, Refused, Timeouts, Errors int64
	FirstError                           string
	// Stats sums the Tellers' counts: attempts, aborts by cause.
	Stats teller.Stats
	// P50, P99 and P999 of the committed transactions' latency, in µs.
	P50, P99, P999 int64
	// LockWaitMean is the mean time a granted lock was waited for, and
	// LockWaits how many were granted.
	LockWaitMean time.Duration
	LockWaits    int64
	// Deadlocks broken by the detector, and how long after the cycle
	// closed its victim was answered (median and maximum).
	Deadlocks                     int64
	DeadlockResolved, DeadlockMax time.Duration
	DeadlockVictimWait            time.Duration // the victims' mean wait before their abort
	// History is every transaction, when Config.Record, with a snapshot
	// of the final balances.
	History *check.History
	// Initial and Final are the balances before and after the load, and
	// Conserved says they hold the same total, none negative.
	Initial, Final   []int64
	Conserved        bool
	ConservationNote string
}

// CommittedPerSec is the committed transactions' rate.
func (r *Result) CommittedPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Committed) / r.Elapsed.Seconds()
}

// DeadlockTimes is an actors.Observer (and DeadlockObserver) that times
// the deadlocks the bank's detector breaks; it ignores the rest. The
// experiment's HTTP transport gives one to its data server's bank too.
type DeadlockTimes struct {
	mu       sync.Mutex
	resolved *hdr.Histogram // ns
	waited   time.Duration
	n        int64
}

// NewDeadlockTimes returns an observer that has seen no deadlock.
func NewDeadlockTimes() *DeadlockTimes {
	return &DeadlockTimes{resolved: hdr.New(1, 60_000_000_000, 3)}
}

// LockHeld, LeaseExpired and StoreCommit are not timed.
func (*DeadlockTimes) LockHeld(time.Duration)    {}
func (*DeadlockTimes) LeaseExpired()             {}
func (*DeadlockTimes) StoreCommit(time.Duration) {}

// Deadlock records one broken cycle: its victim was answered resolved
// after the cycle closed, having waited waited.
func (o *DeadlockTimes) Deadlock(resolved, waited time.Duration) {
	o.mu.Lock()
	_ = o.resolved.RecordValue(max(resolved.Nanoseconds(), 1))
	o.waited += waited
	o.n++
	o.mu.Unlock()
}

// Summary returns how many deadlocks were broken, how long after its
// cycle closed a victim was answered (median and maximum), and the
// victims' mean wait before their abort; zero durations without one.
func (o *DeadlockTimes) Summary() (n int64, resolved, slowest, victimWait time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == 0 {
		return 0, 0, 0, 0
	}
	return o.n, time.Duration(o.resolved.ValueAtPercentile(50)), time.Duration(o.resolved.Max()), o.waited / time.Duration(o.n)
}

func (c *Config) check() error {
	switch {
	case c.Accounts < 2:
		return fmt.Errorf("txnload: %d accounts: want at least 2", c.Accounts)
	case c.Legs < 2 || c.Legs > teller.MaxLegs:
		return fmt.Errorf("txnload: %d legs: want 2 to %d", c.Legs, teller.MaxLegs)
	case c.Tellers < 1 || c.Workers < 1:
		return errors.New("txnload: want at least one teller and one worker")
	case c.AmountMin < 1 || c.AmountMax < c.AmountMin:
		return fmt.Errorf("txnload: amounts %d..%d: want 1 <= min <= max", c.AmountMin, c.AmountMax)
	case c.Duration <= 0:
		return errors.New("txnload: the duration must be positive")
	}
	if g := max(c.Groups, 1); c.Accounts/g < c.Legs {
		return fmt.Errorf("txnload: %d accounts in %d groups: a group must hold at least %d accounts (the legs)", c.Accounts, g, c.Legs)
	}
	return nil
}

// Run starts a fresh bank, loads it for cfg.Duration, reads the final
// balances and stops it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	obs := NewDeadlockTimes()
	bcfg := actors.Config{Accounts: cfg.Accounts, InitialBalance: cfg.InitialBalance, DeadlockDetection: true, Observer: obs,
		Synchronous: cfg.Synchronous, EarlyLockRelease: cfg.EarlyLockRelease}
	var st *store.Pebble
	if cfg.Dir != "" {
		var err error
		if st, err = store.OpenPebble(cfg.Dir, nil); err != nil {
			return nil, err
		}
		bcfg.Store = st
	}
	bank, err := actors.New(bcfg)
	if err != nil {
		if st != nil {
			_ = st.Close()
		}
		return nil, err
	}
	defer func() {
		bank.Close()
		if st != nil {
			_ = st.Close()
		}
	}()
	var waits, waitNS atomic.Int64
	icfg := inprocess.Config{Bank: bank, LockWait: func(d time.Duration) {
		waits.Add(1)
		waitNS.Add(int64(d))
	}}
	if st != nil {
		icfg.Records = st
	}
	accts, err := inprocess.New(icfg)
	if err != nil {
		return nil, err
	}
	tellers := make([]*teller.Teller, cfg.Tellers)
	for i := range tellers {
		holder := fmt.Sprintf("teller-%d", i+1)
		if tellers[i], err = teller.New(teller.Config{Accounts: accts.For(holder, cfg.Lease), Holder: holder,
			Mode: cfg.Mode, Order: cfg.Order, LockWait: cfg.LockWait}); err != nil {
			return nil, err
		}
	}
	res := &Result{}
	if res.Initial, err = balances(ctx, accts, cfg.Accounts); err != nil {
		return nil, err
	}
	draw, err := newDrawer(cfg)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	end := start.Add(cfg.Duration)
	workers := make([]worker, cfg.Workers)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		*w = worker{id: i, tl: tellers[i%len(tellers)], rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
			lat: hdr.New(1, 60_000_000, 3), record: cfg.Record}
		wg.Go(func() { w.run(ctx, cfg, draw, start, end) })
	}
	wg.Wait()
	res.Elapsed = time.Since(start)

	lat := hdr.New(1, 60_000_000, 3)
	var ops []check.Entry
	for i := range workers {
		w := &workers[i]
		lat.Merge(w.lat)
		res.Committed += w.committed
		res.Refused += w.refused
		res.Timeouts += w.timeouts
		res.Errors += w.errors
		if res.FirstError == "" {
			res.FirstError = w.firstError
		}
		ops = append(ops, w.ops...)
	}
	res.P50, res.P99, res.P999 = lat.ValueAtPercentile(50), lat.ValueAtPercentile(99), lat.ValueAtPercentile(99.9)
	for _, tl := range tellers {
		res.Stats = res.Stats.Add(tl.Stats())
	}
	if n := waits.Load(); n > 0 {
		res.LockWaits, res.LockWaitMean = n, time.Duration(waitNS.Load()/n)
	}
	res.Deadlocks, res.DeadlockResolved, res.DeadlockMax, res.DeadlockVictimWait = obs.Summary()

	snapCall := time.Since(start)
	if res.Final, err = balances(ctx, accts, cfg.Accounts); err != nil {
		return nil, err
	}
	res.conserve()
	if cfg.Record {
		res.History = history(cfg, res, ops, start, snapCall, time.Since(start))
	}
	return res, nil
}

// conserve checks that the transactions, which all sum to zero, moved
// money without creating or destroying any, and left no balance negative.
func (r *Result) conserve() {
	var before, after int64
	for i := range r.Initial {
		before += r.Initial[i]
		after += r.Final[i]
		if r.Final[i] < 0 {
			r.ConservationNote = fmt.Sprintf("account %d holds %d", i+1, r.Final[i])
			return
		}
	}
	r.Conserved = before == after
	r.ConservationNote = fmt.Sprintf("total %d before, %d after", before, after)
}

// balances reads accounts 1..n; nothing runs meanwhile.
func balances(ctx context.Context, a *inprocess.Accounts, n int) ([]int64, error) {
	h := a.For("txnload-reader", 0)
	out := make([]int64, n)
	for i := range out {
		b, err := h.Read(ctx, int64(i+1))
		if err != nil {
			return nil, fmt.Errorf("txnload: reading account %d: %w", i+1, err)
		}
		out[i] = b
	}
	return out, nil
}

// drawer draws a transaction's accounts.
type drawer struct {
	n, groups int
	pick      func(*rand.Rand) int64
}

func newDrawer(cfg Config) (*drawer, error) {
	pick, err := cfg.Dist.Picker(cfg.Accounts)
	return &drawer{n: cfg.Accounts, groups: max(cfg.Groups, 1), pick: pick}, err
}

// draw fills ids with distinct accounts of worker's group, each drawn
// over every account and folded into the group as loadgen folds its
// transfers' accounts.
func (d *drawer) draw(rng *rand.Rand, worker int, ids []int64) {
	_, lo, hi := loadgen.GroupOf(int64((worker%d.groups)*d.n/d.groups)+1, d.n, d.groups)
	size := hi - lo + 1
	for i := 0; i < len(ids); i++ {
	again:
		id := lo + (d.pick(rng)-1)%size
		for _, p := range ids[:i] {
			if p == id {
				goto again
			}
		}
		ids[i] = id
	}
}

// worker is one closed-loop client.
type worker struct {
	id                                   int
	tl                                   *teller.Teller
	rng                                  *rand.Rand
	lat                                  *hdr.Histogram
	record                               bool
	ops                                  []check.Entry
	committed, refused, timeouts, errors int64
	firstError                           string
}

func (w *worker) run(ctx context.Context, cfg Config, d *drawer, start, end time.Time) {
	var ids [teller.MaxLegs]int64
	var legs [teller.MaxLegs]teller.Leg
	var saldos [teller.MaxLegs]int64
	n := cfg.Legs
	for ctx.Err() == nil && time.Now().Before(end) {
		d.draw(w.rng, w.id, ids[:n])
		v := cfg.AmountMin + w.rng.Int64N(cfg.AmountMax-cfg.AmountMin+1)
		fillLegs(legs[:n], ids[:n], v)
		call := time.Now()
		err := w.tl.Move(ctx, legs[:n], saldos[:n])
		ret := time.Now()
		e := check.Entry{Type: check.TypeOp, Client: w.id, Call: int64(call.Sub(start)), Ret: int64(ret.Sub(start))}
		switch {
		case err == nil:
			w.committed++
			_ = w.lat.RecordValue(max(ret.Sub(call).Microseconds(), 1))
			e.Result = check.ResultOK
		case errors.Is(err, teller.ErrInsufficientFunds):
			w.refused++
			e.Result, e.Error = check.ResultFail, teller.InsufficientFunds.String()
		case errors.Is(err, teller.ErrLocked):
			w.timeouts++
			e.Result, e.Error = check.ResultFail, teller.LockedAccount.String()
		default:
			w.errors++
			if w.firstError == "" {
				w.firstError = err.Error()
			}
			// Anything else may or may not have been applied.
			e.Result = check.ResultUnknown
			if errors.Is(err, teller.ErrNotApplied) {
				e.Result = check.ResultFail
			}
		}
		if w.record {
			w.ops = append(w.ops, entryOf(e, legs[:n], saldos[:n]))
		}
	}
}

// fillLegs makes legs a transaction of v over ids (see the package
// comment): debits at the even legs, credits at the odd ones.
func fillLegs(legs []teller.Leg, ids []int64, v int64) {
	for i := range legs {
		legs[i] = teller.Leg{Conta: ids[i], Delta: v}
		if i%2 == 0 {
			legs[i].Delta = -v
		}
	}
	if n := len(legs); n%2 == 1 {
		legs[n-1].Delta = v
		legs[0].Delta = -2 * v
	}
}

// Verdict is a run's proof of correctness: both checkers over its
// history, and conservation.
type Verdict struct {
	Bank, Linearizable check.Result
	Conserved          bool
}

// Proven reports whether every check passed.
func (v Verdict) Proven() bool { return v.Bank.OK && v.Linearizable.OK && v.Conserved }

// String is "proven", or what failed.
func (v Verdict) String() string {
	if v.Proven() {
		return "proven"
	}
	s := ""
	for _, c := range []struct {
		name string
		ok   bool
		r    check.Result
	}{{"bank", v.Bank.OK, v.Bank}, {"linearizability", v.Linearizable.OK, v.Linearizable}} {
		if !c.ok {
			s += c.name + " " + c.r.Verdict() + "; "
		}
	}
	if !v.Conserved {
		s += "not conserved; "
	}
	return s[:len(s)-2]
}

// Verify judges a recorded run (Config.Record): the bank checker, the
// linearizability checker (its search bounded by timeout), conservation.
func (r *Result) Verify(timeout time.Duration) (Verdict, error) {
	if r.History == nil {
		return Verdict{}, errors.New("txnload: the run kept no history (Config.Record)")
	}
	return Verdict{
		Bank:         check.Bank(r.History),
		Linearizable: check.Linearizable(r.History, check.LinearOptions{Timeout: timeout}),
		Conserved:    r.Conserved,
	}, nil
}
