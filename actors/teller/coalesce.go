package teller

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// Coalescing: the deposits, withdrawals and transfers that reach one
// Teller at the same time run as one batch transaction (Transfers' engine:
// one Lock of their accounts, one Commit, each operation with a result of
// its own), as a database's group commit gathers the commits that arrive
// while the log is busy. Nothing waits to fill a batch: an operation that
// finds no batch running leads one at once, and the operations that
// arrive meanwhile make the next. On one hot
// account it turns one lock hand-off per operation into one per batch;
// spread over many it spares each operation its own two round trips to
// the accounts.

// coalesceInflight bounds the batches one Teller runs at once while they
// make progress. One: measured on two cores (three business servers and
// a durable data server, wrk; and in-process), one batch at a time and
// the next gathering meanwhile beat 2, 4 and 8 at once, since fewer,
// larger batches take fewer round trips and syncs per operation.
const coalesceInflight = 1

// A batch that waits (on a lock another business server holds, say) must
// not hold up every other operation of this Teller: when no batch has
// started or ended for coalesceStall, an arriving operation leads a batch
// beside the ones running, up to coalesceMaxInflight at once.
const (
	coalesceStall       = 5 * time.Millisecond
	coalesceMaxInflight = 16
)

// coalescer gathers a Teller's concurrent operations into batches.
type coalescer struct {
	t       *Teller
	max     int // operations per batch
	mu      sync.Mutex
	queue   []*pending // arrived, not yet in a batch; guarded by mu
	running int        // batches led now; guarded by mu
	// progress is when a batch last started or ended; guarded by mu.
	progress time.Time
}

// pending is one operation waiting in, or for, a batch.
type pending struct {
	ctx   context.Context
	op    Op
	res   Result
	err   error
	done  chan struct{} // receives once res and err are the outcome
	timer *time.Timer   // wait's, kept with the pending in its pool
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}

// run runs op, a deposit, withdrawal or transfer that Run checked, in a
// batch with the operations that arrive with it.
func (c *coalescer) run(ctx context.Context, op Op) (Result, error) {
	p := pendingPool.Get().(*pending)
	p.ctx, p.op = ctx, op
	c.mu.Lock()
	c.queue = append(c.queue, p)
	lead := c.running < coalesceInflight
	if !lead && c.running < coalesceMaxInflight {
		lead = time.Since(c.progress) > coalesceStall // the batches running are stuck
	}
	if lead {
		c.running++
	}
	c.mu.Unlock()
	if lead {
		c.lead()
	}
	c.wait(p)
	res, err := p.res, p.err
	*p = pending{done: p.done, timer: p.timer}
	pendingPool.Put(p)
	return res, err
}

// wait waits for p's outcome. While p is queued behind batches that have
// made no progress for coalesceStall, it leads a batch itself (see
// coalesceMaxInflight), so that no operation waits on a stuck batch for
// want of another arrival.
func (c *coalescer) wait(p *pending) {
	if p.timer == nil {
		p.timer = time.NewTimer(coalesceStall)
	} else {
		p.timer.Reset(coalesceStall)
	}
	defer p.timer.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-p.timer.C:
		}
		c.mu.Lock()
		lead := c.running < coalesceMaxInflight && time.Since(c.progress) > coalesceStall && slices.Contains(c.queue, p)
		if lead {
			c.running++
		}
		c.mu.Unlock()
		if lead {
			c.lead()
		}
		p.timer.Reset(coalesceStall)
	}
}

// lead runs the operations at the head of the queue as one batch and
// answers them, then passes on (see next).
func (c *coalescer) lead() {
	c.mu.Lock()
	c.progress = time.Now()
	n := min(len(c.queue), c.max)
	var small [64]*pending
	batch := append(small[:0], c.queue[:n]...)
	c.queue = c.queue[:copy(c.queue, c.queue[n:])]
	c.mu.Unlock()

	if n > 0 {
		c.runBatch(batch)
	}
	c.next()
}

// next leads the batch of the operations that arrived meanwhile, if any,
// on a goroutine of its own, so that the caller's answer waits for no
// other batch; otherwise one batch fewer runs.
func (c *coalescer) next() {

	c.mu.Lock()
	c.progress = time.Now()
	more := len(c.queue) > 0
	if !more {
		c.running--
	}
	c.mu.Unlock()
	if more {
		go c.lead()
	}
}

// runBatch runs batch's operations as one transaction and answers each.
// One operation alone runs as Run would without coalescing. A batch the
// accounts cannot run (no atomic commit: the original data server) runs
// its operations one at a time.
func (c *coalescer) runBatch(batch []*pending) {
	answered := 0
	done := func(p *pending, res Result, err error) {
		p.res, p.err = res, err
		p.done <- struct{}{}
		answered++
	}
	t := c.t
	defer func() {
		// A panic (a bug, or a test's hook) must not leave the batch's
		// operations waiting for good: each that was not answered is
		// answered as failed, its outcome unknown, as a panic in Run is.
		if r := recover(); r != nil {
			t.logger.Error("panic in a coalesced batch", "panic", r, "stack", string(debug.Stack()))
			for _, p := range batch[answered:] {
				done(p, Result{}, fmt.Errorf("teller: a batch of coalesced operations panicked (%v): %w", r, ErrInternal))
			}
		}
	}()
	if len(batch) == 1 {
		p := batch[0]
		res, err := t.run(p.ctx, p.op, nil)
		done(p, res, err)
		return
	}
	items := make([]BatchTransfer, len(batch))
	for i, p := range batch {
		switch p.op.Kind {
		case Deposit:
			items[i] = BatchTransfer{To: p.op.A, Amount: p.op.Amount}
		case Withdraw:
			items[i] = BatchTransfer{From: p.op.A, Amount: p.op.Amount}
		case Transfer:
			items[i] = BatchTransfer{From: p.op.A, To: p.op.B, Amount: p.op.Amount}
		}
	}
	results := make([]BatchResult, len(batch))
	// The batch runs under its first operation's context (its trace, and
	// the earliest deadline: every operation has the same budget).
	ctx := batch[0].ctx
	err := t.transfers(ctx, items, results, true)
	if errors.Is(err, ErrUnsupported) {
		for _, p := range batch {
			res, err := t.run(p.ctx, p.op, nil)
			done(p, res, err)
		}
		return
	}
	for i, p := range batch {
		r := results[i]
		switch {
		case err != nil:
			done(p, Result{}, err)
		case r.Err != nil:
			done(p, Result{}, r.Err)
		case p.op.Kind == Deposit:
			done(p, Result{A: r.ToSaldo}, nil)
		default:
			done(p, Result{A: r.FromSaldo, B: r.ToSaldo}, nil)
		}
	}
}
