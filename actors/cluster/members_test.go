//go:build !race

package cluster

// Tests with several members in one process. protoactor-go has data races
// of its own there (each member's remote sets gRPC's global logger while
// the others' gRPC goroutines read it; its gossip blocks members and its
// remote stops endpoints unsynchronized), which the race detector reports
// whatever this package does. So these tests are left out of -race
// builds; .ci/run runs them without it. The tests with one member, which
// exercise this package's own concurrency, run under -race. The
// real-process tests (cmd/dataserver) run members as separate processes.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
)

func TestMembersShareAccounts(t *testing.T) {
	members, st := testCluster(t, 3, 12, 0)
	a, b, c := members[0], members[1], members[2]

	// Every member answers for every account.
	for id := int64(1); id <= 12; id++ {
		for i, m := range members {
			r, err := m.Do(id, actors.Request{Op: actors.OpRead})
			if err != nil || r.Balance != 1000 {
				t.Fatalf("member %d: read of account %d = %d, %v", i, id, r.Balance, err)
			}
		}
	}
	if _, err := a.Do(13, actors.Request{Op: actors.OpRead}); !errors.Is(err, actors.ErrNotFound) {
		t.Errorf("account 13 of 12: %v, want ErrNotFound", err)
	}

	// A lock taken through one member holds through the others.
	g, err := a.Do(5, actors.Request{Op: actors.OpLock, Holder: "biz-a", TTL: 5 * time.Second})
	if err != nil || g.Fence == 0 {
		t.Fatalf("lock: %+v, %v", g, err)
	}
	if _, err := b.Do(5, actors.Request{Op: actors.OpLock, Holder: "biz-b"}); !errors.Is(err, account.ErrLocked) {
		t.Fatalf("second holder through another member: %v, want ErrLocked", err)
	}
	if _, err := c.Do(5, actors.Request{Op: actors.OpWrite, Holder: "biz-a", Fence: g.Fence, Value: 1500}); err != nil {
		t.Fatalf("fenced write through a third member: %v", err)
	}
	if _, err := b.Do(5, actors.Request{Op: actors.OpUnlock, Holder: "biz-a", Fence: g.Fence}); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	// The write is durable in the shared store.
	saved, err := st.Accounts()
	if err != nil || saved[5] != 1500 {
		t.Fatalf("store holds %d for account 5 (%v), want 1500", saved[5], err)
	}
}

func TestApplyAcrossMembers(t *testing.T) {
	members, st := testCluster(t, 3, 30, 0)
	ctx := context.Background()
	// Thirty accounts spread over three members: pairs (1,2)..(29,30)
	// include accounts on different members.
	split := 0
	for id := int64(1); id < 30; id += 2 {
		if members[0].Placement(id) != members[0].Placement(id+1) {
			split++
		}
	}
	if split == 0 {
		t.Fatal("no pair of accounts spans two members: the test would not cross members")
	}
	t.Logf("%d of 15 transfers between accounts on different members", split)
	for id := int64(1); id < 30; id += 2 {
		m := members[int(id)%3]
		var changes []actors.Change
		for _, acct := range []int64{id, id + 1} {
			g, err := m.Do(acct, actors.Request{Op: actors.OpLock, Holder: "biz", TTL: 5 * time.Second})
			if err != nil {
				t.Fatalf("lock %d: %v", acct, err)
			}
			delta := int64(-100)
			if acct == id+1 {
				delta = 100
			}
			changes = append(changes, actors.Change{ID: acct, Fence: g.Fence, Balance: g.Balance + delta})
		}
		if err := m.Apply(ctx, "biz", changes, true, nil); err != nil {
			t.Fatalf("transfer %d->%d: %v", id, id+1, err)
		}
	}
	saved, err := st.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for id := int64(1); id <= 30; id++ {
		want := int64(900)
		if id%2 == 0 {
			want = 1100
		}
		r, err := members[0].Do(id, actors.Request{Op: actors.OpRead})
		if err != nil || r.Balance != want || saved[id] != want || r.Holder != "" {
			t.Errorf("account %d: actor %d (holder %q), store %d, %v; want %d, unlocked", id, r.Balance, r.Holder, saved[id], err, want)
		}
		total += saved[id]
	}
	if total != 30*1000 {
		t.Errorf("total %d, want %d", total, 30*1000)
	}
}
