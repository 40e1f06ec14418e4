package main

// The cluster over a real membership service: three member processes find
// each other in a real etcd server (Debian's etcd-server, started by the
// test) and share the accounts through a real PostgreSQL server. Each
// member reaches etcd, and is reached by the other members, through links
// of its own (embedded toxiproxy proxies, etcdtest.Link) that the test
// cuts; every member reaches PostgreSQL directly, so a partitioned member
// still reaches the store.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/actors/cluster/etcdtest"
	"github.com/bank/gobank/cmd/internal/proctest"
)

// TestEtcdClusterPartition partitions member 2 from etcd and from its
// peers (not from PostgreSQL) under load through three business servers,
// one of them in front of member 2 first:
//   - member 2 leaves on its own once its lease cannot be renewed, before
//     etcd drops its registration; the survivors then drop it, and serve
//     every account within a bound, each of member 2's through a fresh
//     activation that claims it from the store;
//   - member 2 refuses every write meanwhile, "not applied", even with a
//     lock grant it gave before the partition;
//   - once the links heal, member 2 joins again as a new member (etcd
//     never readmits the old one's id): every member sees three, and
//     member 2 serves every account again;
//   - nothing acknowledged is lost: every balance is within the bounds of
//     the acknowledged and unknown operations, every unknown outcome
//     resolves by its Idempotency-Key, and then every balance is exact,
//     read through each member.
func TestEtcdClusterPartition(t *testing.T) {
	const (
		ttl           = 2 * time.Second
		failoverBound = 10 * time.Second
		probes        = 12 // accounts beyond the load's, locked through member 2 before the partition
	)
	srv := etcdtest.Start(t)
	m := newMembersOf(t, 3, probes)
	c := m.c
	etcdLinks := make([]*etcdtest.Link, 3)
	peerLinks := make([]*etcdtest.Link, 3)
	for i := range 3 {
		etcdLinks[i] = etcdtest.NewLink(t, fmt.Sprintf("member%d-etcd", i), srv.Addr)
		// The others dial member i at its advertised address: its link.
		peerLinks[i] = etcdtest.NewLink(t, fmt.Sprintf("member%d-cluster", i), m.cluster[i])
	}
	m.membership = func(i int) []string {
		return []string{"--cluster-provider", "etcd", "--etcd-endpoints", "http://" + etcdLinks[i].Addr,
			"--etcd-prefix", "/partition-test", "--etcd-ttl", ttl.String(), "--cluster-advertise", peerLinks[i].Addr}
	}
	startMembers(m)
	for i := range 3 {
		if !m.readAll(i) {
			t.Fatalf("member %d does not serve every account", i)
		}
	}

	bizURLs := m.startBusiness()
	load := startLoad(t, c.client, bizURLs, 8, 11)
	load.waitAcked(t, 200, 30*time.Second, "before the partition")

	// Lock grants of member 2's activations (and of the others', for the
	// probe accounts they host), taken before the partition.
	fences := map[int]uint64{}
	c.dataPort = m.ports[2]
	for a := numAccounts + 1; a <= numAccounts+probes; a++ {
		r, err := c.dataGet("/getLock", fmt.Sprintf("conta=%d&ttl=30s", a))
		if err != nil || r.Status != 200 || r.Fence == nil {
			t.Fatalf("getLock %d through member 2: %d %v %q", a, r.Status, err, r.Error)
		}
		fences[a] = *r.Fence
	}
	c.dataPort = m.ports[0]

	cut := time.Now()
	etcdLinks[2].Cut(t)
	peerLinks[2].Cut(t)
	m.waitMembers(2, 0, ttl+5*time.Second)
	left := time.Since(cut)
	m.waitMembers(0, 2, ttl+5*time.Second)
	m.waitMembers(1, 2, ttl+5*time.Second)
	dropped := time.Since(cut)
	var served time.Duration
	proctest.WaitFor(t, failoverBound, "every account served by the members on the majority side", func() bool {
		if m.readAll(0) && m.readAll(1) {
			served = time.Since(cut)
			return true
		}
		return false
	})
	t.Logf("partition of member 2: it left after %v, the others dropped it after %v and served every account after %v (TTL %v, bound %v)",
		left.Round(time.Millisecond), dropped.Round(time.Millisecond), served.Round(time.Millisecond), ttl, failoverBound)

	// The partitioned member applies no write, whatever grant it holds.
	c.dataPort = m.ports[2]
	for a, f := range fences {
		r, err := c.dataGet("/setSaldo", fmt.Sprintf("conta=%d&valor=%d&fence=%d", a, 1_000_000+a, f))
		if err != nil || r.Status != 503 || !strings.Contains(r.Error, "not applied") {
			t.Fatalf("setSaldo %d through the partitioned member: %d %v %q, want 503 not applied", a, r.Status, err, r.Error)
		}
	}
	c.dataPort = m.ports[0]
	load.waitAcked(t, 200, 30*time.Second, "during the partition")

	healed := time.Now()
	etcdLinks[2].Heal(t)
	peerLinks[2].Heal(t)
	for i := range 3 {
		m.waitMembers(i, 3, 20*time.Second)
	}
	proctest.WaitFor(t, 20*time.Second, "member 2 to serve every account again", func() bool { return m.readAll(2) })
	t.Logf("links healed: member 2 joined again and served every account after %v", time.Since(healed).Round(time.Millisecond))
	load.waitAcked(t, 200, 30*time.Second, "after the heal")
	m.checkHistory(load.stop(), bizURLs[0])
	for i := range 3 {
		c.dataPort = m.ports[i]
		for a := range fences {
			r, err := c.dataGet("/getSaldo", "conta="+strconv.Itoa(a))
			if err != nil || r.Status != 200 || r.Saldo == nil || *r.Saldo != initial {
				t.Fatalf("probe account %d through member %d: %d %v %v, want %d untouched", a, i, r.Status, err, r.Saldo, initial)
			}
		}
	}
	out := m.procs[2].Output()
	for _, want := range []string{"lost its etcd membership", "joined the cluster again"} {
		if !strings.Contains(out, want) {
			t.Errorf("member 2's log does not say %q:\n%s", want, out)
		}
	}
}
