// Package storetest holds stores for the tests of what runs above a
// store: a real pebble store whose syncs the test holds back.
package storetest

import (
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/bank/gobank/actors/store"
)

// Gated is a real pebble store whose ordered commits wait, before their
// sync, until the test opens their gate: it holds a commit in the window
// early lock release opens, ordered in the log and applied to its
// accounts, not yet on disk.
type Gated struct {
	*store.Pebble
	// Syncing yields one Gate per ordered commit, when its sync is
	// awaited, in the order the syncs are.
	Syncing chan Gate
	// Commits counts the commits that went the unordered way (Commit).
	Commits atomic.Int32
	done    chan struct{} // closed when the test ends: every gate opens
}

// Gate is one ordered commit waiting for its sync: the test sends the
// sync's outcome on Open (nil: let it sync).
type Gate struct{ Open chan error }

// NewGated opens a Gated store in a fresh directory of t's, closed when t
// ends, after every gate still shut has opened.
func NewGated(t testing.TB) *Gated {
	t.Helper()
	p, err := store.OpenPebble(filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	g := &Gated{Pebble: p, Syncing: make(chan Gate, 16), done: make(chan struct{})}
	// Registered after the close, so run before it: a test that failed
	// with a gate shut must not leave Close waiting for its sync.
	t.Cleanup(func() { close(g.done) })
	return g
}

// Commit implements actors.Committer, counted.
func (g *Gated) Commit(w []store.Write, r *store.Record) error {
	g.Commits.Add(1)
	return g.Pebble.Commit(w, r)
}

// CommitOrdered implements actors.OrderedCommitter: the commit is ordered
// at once, its sync waits for its gate.
func (g *Gated) CommitOrdered(w []store.Write, r *store.Record) (func() error, error) {
	sync, err := g.Pebble.CommitOrdered(w, r)
	if err != nil {
		return nil, err
	}
	return func() error {
		gt := Gate{Open: make(chan error)}
		var err error
		select {
		case g.Syncing <- gt:
			select {
			case err = <-gt.Open:
			case <-g.done:
			}
		case <-g.done:
		}
		if err != nil {
			sync() // the real one must still be awaited once
			return err
		}
		return sync()
	}, nil
}
