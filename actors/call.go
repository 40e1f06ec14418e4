package actors

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Call states: the caller and the actor race to move a call out of pending.
const (
	pending int32 = iota
	claimed
	abandoned
)

type result struct {
	Reply
	err error
	// durable, when set, is the sync the balance waits for (early lock
	// release); see answer.
	durable *durability
}

// call is the message sent to an account actor. It is pooled together with
// its reply channel; a call whose caller gave up is never reused, so a late
// answer can never reach the next user of the channel.
type call struct {
	req   Request
	state atomic.Int32
	reply chan result
}

var callPool = sync.Pool{New: func() any { return &call{reply: make(chan result, 1)} }}

func getCall() *call {
	c := callPool.Get().(*call)
	c.state.Store(pending)
	return c
}

func putCall(c *call) {
	c.req = Request{}
	callPool.Put(c)
}

// answered returns the call's answer if the actor has given it already.
func (c *call) answered() (result, bool) {
	select {
	case r := <-c.reply:
		putCall(c)
		return r, true
	default:
		return result{}, false
	}
}

// await waits for the call's answer until expire fires or ctx ends, and
// then abandons the call: the actor will skip it, and since it still
// holds a pointer to it, the call does not go back to the pool. gaveUp
// says why it was abandoned (ErrTimeout, or ctx's error); it is nil when
// the answer came, which includes an actor that took the call up just as
// the caller gave up: its answer tells what really happened. This is the
// one way every caller of an account, local or a cluster grain's host,
// waits for it.
func (c *call) await(ctx context.Context, expire <-chan time.Time) (r result, gaveUp error) {
	select {
	case r = <-c.reply:
		putCall(c)
		return r, nil
	case <-expire:
		gaveUp = ErrTimeout
	case <-ctx.Done():
		gaveUp = ctx.Err()
	}
	if c.state.CompareAndSwap(pending, abandoned) {
		return result{}, gaveUp
	}
	r = <-c.reply
	putCall(c)
	return r, nil
}

var timerPool sync.Pool

// getTimer returns a running timer. Since Go 1.23 a stopped or reset timer
// never delivers a stale tick, so pooled timers are safe to reuse.
func getTimer(d time.Duration) *time.Timer {
	if t, ok := timerPool.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func putTimer(t *time.Timer) {
	t.Stop()
	timerPool.Put(t)
}
