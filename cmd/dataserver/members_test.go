package main

// Cluster tests with real processes: three data-server members of a
// Proto.Actor cluster on loopback share the accounts through a real
// PostgreSQL server; business servers talk to different members.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/actors/store/pgserver/pgtest"
	"github.com/bank/gobank/cmd/internal/proctest"
)

// members is a three-member data-server cluster; c's data server is
// member 0, so that c's helpers (balances, waitUnlocked) go through it.
type members struct {
	c       *cluster
	env     []string
	ports   []string         // HTTP
	cluster []string         // host:port of each member's cluster endpoint
	peers   string           // every member's health endpoint
	procs   []*proctest.Proc // the current process of each member
	all     []*proctest.Proc // every member process started
	starts  int
	extra   int // accounts beyond numAccounts, which the load leaves alone
	// membership returns member i's flags that say how it finds the
	// others (automanaged unless set).
	membership func(i int) []string
}

// newMembers starts n members that find each other with the automanaged
// provider.
func newMembers(t *testing.T, n int) *members {
	t.Helper()
	return startMembers(newMembersOf(t, n, 0))
}

// newMembersOf prepares n members with extra accounts beyond the load's
// numAccounts; nothing runs yet.
func newMembersOf(t *testing.T, n, extraAccounts int) *members {
	t.Helper()
	c := newCluster(t, "")
	m := &members{c: c, env: append([]string{"BANK_POSTGRES_DSN=" + pgtest.ForTest(t)}, c.env...), extra: extraAccounts}
	ports := proctest.FreePorts(t, 3*n)
	var peers []string
	for i := range n {
		m.ports = append(m.ports, strconv.Itoa(ports[i]))
		m.cluster = append(m.cluster, "127.0.0.1:"+strconv.Itoa(ports[n+i]))
		peers = append(peers, "127.0.0.1:"+strconv.Itoa(ports[2*n+i]))
	}
	m.peers = strings.Join(peers, ",")
	m.membership = func(i int) []string {
		_, manage, _ := strings.Cut(strings.Split(m.peers, ",")[i], ":")
		return []string{"--cluster-manage-port", manage, "--cluster-peers", m.peers}
	}
	return m
}

// startMembers starts m's members and waits until each sees all.
func startMembers(m *members) *members {
	c, t, n := m.c, m.c.t, len(m.ports)
	t.Helper()
	m.procs = make([]*proctest.Proc, n)
	for i := range n {
		m.start(i)
	}
	c.data, c.dataPort = m.procs[0], m.ports[0]
	// Each member must see the others before the test measures anything:
	// until then one would activate accounts another owns.
	for i := range n {
		m.waitMembers(i, n, 20*time.Second)
	}
	return m
}

// start starts (or restarts) member i on its ports and waits until it
// serves HTTP.
func (m *members) start(i int) {
	m.c.t.Helper()
	m.starts++
	wd := filepath.Join(m.c.root, fmt.Sprintf("member%d-wd", i))
	if err := os.MkdirAll(wd, 0o700); err != nil {
		m.c.t.Fatal(err)
	}
	args := append([]string{"--host", "127.0.0.1", "--port", m.ports[i], "--log", filepath.Join(m.c.dataWD, "data_server.log"),
		"--accounts", strconv.Itoa(numAccounts + m.extra), "--balance", strconv.Itoa(initial),
		"--cluster-addr", m.cluster[i], "--cluster-pin-timeout", "2s"}, m.membership(i)...)
	m.procs[i] = proctest.Start(m.c.t, fmt.Sprintf("member%d#%d", i, m.starts), wd, m.c.dataBin, m.env, args...)
	m.all = append(m.all, m.procs[i])
}

// waitMembers waits until member i's /metrics reports want members.
func (m *members) waitMembers(i, want int, timeout time.Duration) {
	m.c.t.Helper()
	url := "http://127.0.0.1:" + m.ports[i] + "/metrics"
	proctest.WaitFor(m.c.t, timeout, fmt.Sprintf("member %d to see %d members", i, want), func() bool {
		resp, err := m.c.client.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return err == nil && strings.Contains(string(body), "\ngobank_cluster_members "+strconv.Itoa(want)+"\n")
	})
}

func (m *members) url(i int) string { return "http://127.0.0.1:" + m.ports[i] }

// readAll reads every account through member i, and reports whether all
// answered.
func (m *members) readAll(i int) bool {
	for a := 1; a <= numAccounts; a++ {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/getSaldo?conta=%d", m.url(i), a), nil)
		req.Header.Set("token", m.c.token)
		resp, err := m.c.client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// TestClusterMemberKilledUnderLoad runs the bank's load (deposits,
// withdrawals, transfers with idempotency keys) through three business
// servers, each pointed at a different member first, kills one member
// with SIGKILL, checks that its accounts are served again by the others
// within a bound, then restarts it — it rejoins and takes accounts back,
// every one through a fresh activation that claims the account from the
// store — and finally checks that every acknowledged operation is there,
// every unknown one resolves by its key, and the total is conserved.
func TestClusterMemberKilledUnderLoad(t *testing.T) {
	const failoverBound = 10 * time.Second
	m := newMembers(t, 3)
	c := m.c
	bizURLs := m.startBusiness()
	load := startLoad(t, c.client, bizURLs, 8, 7)
	load.waitAcked(t, 200, 30*time.Second, "before the kill")

	killed := time.Now()
	m.procs[2].Kill()
	var served time.Duration
	proctest.WaitFor(t, failoverBound, "every account served by the surviving members", func() bool {
		if m.readAll(0) && m.readAll(1) {
			served = time.Since(killed)
			return true
		}
		return false
	})
	load.waitAcked(t, 200, 30*time.Second, "after the kill")
	t.Logf("member 2 killed: every account served again by members 0 and 1 after %v (bound %v)", served.Round(time.Millisecond), failoverBound)

	m.start(2)
	for i := range 3 {
		m.waitMembers(i, 3, 20*time.Second)
	}
	load.waitAcked(t, 200, 30*time.Second, "after member 2 rejoined")
	m.checkHistory(load.stop(), bizURLs[0])
}

// startBusiness starts a business server in front of each member, i
// starting with member i and failing over to the others, and returns
// their URLs.
func (m *members) startBusiness() []string {
	c, t := m.c, m.c.t
	t.Helper()
	var bizURLs []string
	for i := range m.ports {
		urls := []string{m.url(i), m.url((i + 1) % 3), m.url((i + 2) % 3)}
		wd := mkdir(t, c.root, fmt.Sprintf("biz%d-wd", i))
		p := proctest.Start(t, fmt.Sprintf("biz%d", i), wd, c.bizBin, c.env,
			strings.Join(urls, ","), "0", "--host", "127.0.0.1", "--id", fmt.Sprintf("biz%d", i),
			"--log", filepath.Join(wd, "business_server.log"),
			"--lock-ttl", "2s", "--lock-wait", "1s", "--data-timeout", "2s")
		bizURLs = append(bizURLs, p.URL)
	}
	return bizURLs
}

// checkHistory checks the load's operations against the balances: within
// the bounds of acknowledged and unknown operations, no lock left held,
// every unknown outcome resolved by repeating it with its key through
// bizURL, then every balance exact, read through each member.
func (m *members) checkHistory(ops []*op, bizURL string) {
	c, t := m.c, m.c.t
	t.Helper()
	before := count(ops)
	t.Logf("%d operations: %d acknowledged, %d refused, %d with unknown outcome", len(ops), before.ok, before.refused, before.unknown)

	checkBounds(t, c.balances(), ops)
	t.Logf("no lock held %v after the load stopped", c.waitUnlocked(10*time.Second).Round(time.Millisecond))
	resolve(t, c.client, bizURL, ops)
	after := count(ops)
	t.Logf("unknown outcomes resolved by their keys: %d replayed, %d applied now, %d refused",
		after.replayed, after.ok-before.ok-after.replayed, after.refused-before.refused)
	for i := range m.ports {
		c.dataPort = m.ports[i] // read through each member in turn
		checkExact(t, c.balances(), ops)
	}
	c.dataPort = m.ports[0]
	// Writes through superseded activations were refused by the store, not
	// applied (the balances above are exact): count them for the record.
	superseded := 0
	for _, p := range m.all {
		superseded += strings.Count(p.Output(), "claimed by another activation")
	}
	t.Logf("writes refused because their activation had been superseded (members joining or leaving): %d", superseded)
}
