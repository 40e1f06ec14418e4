//go:build !race

package cluster

// Several members in one process: left out of -race builds, as
// members_test.go explains.

import (
	"context"
	"testing"
	"time"

	"github.com/bank/gobank/actors"
)

// TestInspectAndOwner reads accounts as the live view does from any
// member: the owner every member computes is where the account is
// activated, the state is the activation's, and only operations count.
func TestInspectAndOwner(t *testing.T) {
	members, _ := testCluster(t, 2, 6, 0)
	a, b := members[0], members[1]
	ctx := context.Background()
	hosts := map[string]int{}
	for id := int64(1); id <= 6; id++ {
		owner := a.Owner(id)
		if owner == "" || owner != b.Owner(id) {
			t.Fatalf("account %d: owners %q and %q, want one member both agree on", id, owner, b.Owner(id))
		}
		if got := a.Placement(id); got != owner {
			t.Errorf("account %d: activated on %q, Owner says %q", id, got, owner)
		}
		hosts[owner]++
	}
	if len(hosts) != 2 {
		t.Errorf("6 accounts over 2 members placed on %v", hosts)
	}
	if _, err := a.Do(3, actors.Request{Op: actors.OpLock, Holder: "bs:5001", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	r, err := b.Inspect(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Balance != 1000 || r.Holder != "bs:5001" || r.Fence == 0 || time.Until(r.Expires) <= 0 {
		t.Errorf("Inspect(3) through the other member = %+v, want balance 1000, holder bs:5001, a fence, a lease", r)
	}
	if got := a.Ops(nil); len(got) != 6 || got[2] != 1 || got[0] != 0 {
		t.Errorf("member a's Ops = %v, want 1 for account 3 only", got)
	}
	if got := b.Ops(nil); got[2] != 0 {
		t.Errorf("member b's Ops = %v: its Inspect was counted", got)
	}
	if a.Owner(0) != "" || a.Owner(7) != "" {
		t.Error("Owner of an account that does not exist is not empty")
	}
}
