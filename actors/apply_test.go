package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/bank/gobank/actors/store"
)

// script is a Phases that records what ApplyPhases asks of it and fails
// where a table says, so that the choreography shared by the single
// server and the cluster is pinned without either: Bank's own tests
// (durable_test.go) and the cluster's run it against real actors.
type script struct {
	failPin    int64 // the account whose pin fails; 0: none
	failStore  bool
	lostStore  bool // the store's answer lost: it may have committed
	failCommit int64
	log        []string
}

var errScripted = errors.New("scripted failure")

func (s *script) Pin(_ context.Context, holder string, c Change) (uint64, error) {
	s.log = append(s.log, fmt.Sprintf("pin %d", c.ID))
	if c.ID == s.failPin {
		return 0, errScripted
	}
	return uint64(c.ID * 10), nil
}

func (s *script) Unpin(_ string, c Change) { s.log = append(s.log, fmt.Sprintf("unpin %d", c.ID)) }

func (s *script) CommitStore(_ context.Context, pinned []Pinned, _ *store.Record) error {
	e := "store"
	for _, p := range pinned {
		e += fmt.Sprintf(" %d@%d", p.ID, p.Version)
	}
	s.log = append(s.log, e)
	if s.failStore {
		return errScripted
	}
	if s.lostStore {
		return fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, errScripted)
	}
	return nil
}

func (s *script) Commit(_ context.Context, _ string, c Pinned, unlock bool) error {
	s.log = append(s.log, fmt.Sprintf("commit %d@%d unlock=%v", c.ID, c.Version, unlock))
	if c.ID == s.failCommit {
		return errScripted
	}
	return nil
}

func TestApplyPhases(t *testing.T) {
	three := []Change{{3, 7, 30}, {1, 7, 10}, {2, 7, 20}}
	for _, tc := range []struct {
		name    string
		s       script
		changes []Change
		err     error
		log     []string
	}{
		{"in account order, versions to the store and the commits", script{}, three, nil,
			[]string{"pin 1", "pin 2", "pin 3", "store 1@10 2@20 3@30", "commit 1@10 unlock=true", "commit 2@20 unlock=true", "commit 3@30 unlock=true"}},
		{"a refused pin drops the pins before it", script{failPin: 3}, three, errScripted,
			[]string{"pin 1", "pin 2", "pin 3", "unpin 1", "unpin 2"}},
		{"the first pin refused: nothing to drop", script{failPin: 1}, three, errScripted, []string{"pin 1"}},
		{"a store failure drops every pin", script{failStore: true}, three, ErrStore,
			[]string{"pin 1", "pin 2", "pin 3", "store 1@10 2@20 3@30", "unpin 1", "unpin 2", "unpin 3"}},
		{"a store whose answer was lost keeps every pin", script{lostStore: true}, three, store.ErrOutcomeUnknown,
			[]string{"pin 1", "pin 2", "pin 3", "store 1@10 2@20 3@30"}},
		{"a failed commit is returned", script{failCommit: 2}, three, errScripted,
			[]string{"pin 1", "pin 2", "pin 3", "store 1@10 2@20 3@30", "commit 1@10 unlock=true", "commit 2@20 unlock=true"}},
		{"no fence: nothing pinned", script{}, []Change{{1, 7, 10}, {2, 0, 20}}, ErrNoFence, nil},
		{"an account twice: nothing pinned", script{}, []Change{{2, 7, 10}, {1, 7, 1}, {2, 7, 20}}, nil, nil},
		{"no change", script{}, nil, nil, nil},
	} {
		s := tc.s
		in := slices.Clone(tc.changes)
		err := ApplyPhases(context.Background(), &s, "H", tc.changes, true, nil)
		switch {
		case tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		case tc.err == nil && tc.log == nil && err == nil:
			t.Errorf("%s: no error", tc.name)
		case tc.err == nil && tc.log != nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		}
		if !slices.Equal(s.log, tc.log) {
			t.Errorf("%s: asked\n%q\nwant\n%q", tc.name, s.log, tc.log)
		}
		if !slices.Equal(in, tc.changes) {
			t.Errorf("%s: the caller's changes were reordered: %v", tc.name, tc.changes)
		}
	}
}
