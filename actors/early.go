package actors

import (
	"fmt"

	"github.com/bank/gobank/actors/store"
)

// Early lock release with flush pipelining (Johnson et al., "Aether",
// VLDB 2010): an Apply's writes are ordered in the store's log, applied
// to their accounts and their locks passed on, and only then synced. The
// next holder of an account works on a balance that is not yet on disk,
// which is safe because the log is replayed in order: its own commit
// comes later in the log, so it is durable only if this one is. What must
// not happen is an answer that shows such a balance before it is durable.
// So each account remembers the sync its balance waits for, every reply
// carries it, and the caller of the account waits for it before it
// answers — except where the answer shows the balance to no one (see
// waitsForDurable).

// durability is the sync of one ordered store commit.
type durability struct {
	done chan struct{}
	err  error // set before done is closed
	sync func() error
}

func newDurability(sync func() error) *durability {
	return &durability{done: make(chan struct{}), sync: sync}
}

// finish waits for the sync and tells everyone waiting; the Apply that
// ordered the commit calls it, once.
func (d *durability) finish() error {
	d.err = d.sync()
	close(d.done)
	return d.err
}

// wait returns once the commit is durable, or the error that says it
// may not be.
func (d *durability) wait() error {
	<-d.done
	return d.err
}

// synced reports whether the commit is durable by now.
func (d *durability) synced() bool {
	select {
	case <-d.done:
		return d.err == nil
	default:
		return false
	}
}

// waitsForDurable reports whether the answer to req (which ended with
// err) must wait until the balance it carries is durable. Apply's own
// phases do not: they answer Apply, which waits for its commit's sync
// (a pin checks the new balance it is given, not the one it replaces). A grant asked for BeforeDurable does not. Every other
// answer — a read, a write, an unlock (a business server answers a
// refusal once its unlock has), a grant, an inspection — does.
func waitsForDurable(req Request) bool {
	switch req.Op {
	case OpPin, OpCommit, OpUnpin:
		return false
	case OpLock:
		return !req.BeforeDurable
	}
	return true
}

// answer is the caller's side of a reply: it waits, if req's answer
// must, until the balance the reply carries is durable. A sync that
// failed leaves the balance one a crash may erase: the answer is then
// ErrStore with store.ErrOutcomeUnknown.
func answer(req Request, r result) (Reply, error) {
	if r.durable != nil && waitsForDurable(req) {
		if err := r.durable.wait(); err != nil {
			return Reply{}, fmt.Errorf("%w: %w: %w", ErrStore, store.ErrOutcomeUnknown, err)
		}
	}
	return r.Reply, r.err
}
