//go:build !race

// Left out of -race builds, like members_test.go: each start of a
// protoactor member (here, each time the member joins again) sets gRPC's
// global logger, unsynchronized, while the etcd client's gRPC goroutines
// read it, and the race detector reports protoactor's write whatever this
// package does. .ci/run runs these tests without -race; the member
// processes of cmd/dataserver's etcd test run the same code.

package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/cluster/etcdtest"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/store/pgserver/pgtest"
	"github.com/bank/gobank/http/freeport"
)

// waitUntil polls cond every 10 ms until it holds, failing t after
// timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, bounded by the timeout
	}
	return time.Since(start)
}

// registrations lists the member ids registered under prefix, read
// directly from etcd (not through the member's link).
func registrations(t *testing.T, cli *clientv3.Client, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, kv := range resp.Kvs {
		ids = append(ids, strings.TrimPrefix(string(kv.Key), prefix+"/gobank/"))
	}
	return ids
}

// A member cut from etcd leaves the cluster before etcd drops its
// registration (so that no other member can take its accounts while it
// still serves them), refuses calls meanwhile without applying them, and
// joins again under a new member id once the link heals; its accounts
// come back from the store, and a lock grant of its former life cannot
// write.
func TestEtcdMemberLeavesAndRejoins(t *testing.T) {
	srv := etcdtest.Start(t)
	link := etcdtest.NewLink(t, "member-etcd", srv.Addr)
	direct, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()

	const prefix = "/test-rejoin"
	const ttl = 2 * time.Second
	membership, err := NewEtcd(EtcdConfig{Endpoints: []string{link.Addr}, Prefix: prefix, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer membership.Close()
	st, err := store.OpenPostgres(pgtest.ForTest(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ports, err := freeport.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	port := ports[0]
	b, err := Join(Config{Accounts: 4, InitialBalance: 1000, Store: st, Host: "127.0.0.1", Port: port, Membership: membership})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	if got := b.Members(); len(got) != 1 || got[0] != b.Address() {
		t.Fatalf("members %v, want this member alone (%s)", got, b.Address())
	}
	first := registrations(t, direct, prefix)
	if len(first) != 1 {
		t.Fatalf("registrations in etcd: %v, want one", first)
	}
	g, err := b.Do(2, actors.Request{Op: actors.OpLock, Holder: "biz", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	// Watch the registration from etcd's side: when etcd deletes it, the
	// member must have left already.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	deleted := direct.Watch(ctx, prefix+"/", clientv3.WithPrefix())
	cut := time.Now()
	link.Cut(t)
	var leftWhenDeleted []string
	select {
	case resp := <-deleted:
		if len(resp.Events) != 1 || resp.Events[0].Type != clientv3.EventTypeDelete {
			t.Fatalf("etcd event %v, want the registration's deletion", resp.Events)
		}
		leftWhenDeleted = b.Members()
	case <-time.After(ttl + 5*time.Second):
		t.Fatalf("etcd kept the registration of a member cut from it for %v (TTL %v)", time.Since(cut), ttl)
	}
	expired := time.Since(cut)
	if len(leftWhenDeleted) > 0 {
		t.Fatalf("etcd dropped the member %v after the cut, but it still counted itself in: %v", expired, leftWhenDeleted)
	}
	t.Logf("cut from etcd: it dropped the registration after %v, the member had left already", expired.Round(time.Millisecond))
	_, err = b.Do(1, actors.Request{Op: actors.OpRead})
	if !errors.Is(err, actors.ErrClosed) {
		t.Fatalf("a call while out of the cluster: %v, want ErrClosed (not applied)", err)
	}
	_, err = b.Do(2, actors.Request{Op: actors.OpWrite, Holder: "biz", Fence: g.Fence, Value: 1})
	if !errors.Is(err, actors.ErrClosed) {
		t.Fatalf("a write while out of the cluster: %v, want ErrClosed (not applied)", err)
	}

	link.Heal(t)
	back := waitUntil(t, 15*time.Second, "the member to join again", func() bool { return len(b.Members()) == 1 })
	t.Logf("link healed: the member joined again after %v", back.Round(time.Millisecond))
	again := registrations(t, direct, prefix)
	if len(again) != 1 || again[0] == first[0] {
		t.Fatalf("registrations after the heal: %v, want one new member id (not %s)", again, first[0])
	}
	r, err := b.Do(2, actors.Request{Op: actors.OpRead})
	if err != nil || r.Balance != 1000 {
		t.Fatalf("account 2 after rejoining: %d, %v; want 1000", r.Balance, err)
	}
	// The grant of the former life is not this activation's.
	if _, err := b.Do(2, actors.Request{Op: actors.OpWrite, Holder: "biz", Fence: g.Fence, Value: 1}); err == nil {
		t.Fatal("a lock grant from before the member left wrote after it rejoined")
	}
	if r, err := b.Do(2, actors.Request{Op: actors.OpRead}); err != nil || r.Balance != 1000 {
		t.Fatalf("account 2: %d, %v; want 1000 unchanged", r.Balance, err)
	}
}
