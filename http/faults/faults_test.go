package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/client"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/faultnet"
)

const (
	accounts = 6
	initial  = 1000
	token    = "ba0f"
)

// proxy starts a fault-injecting proxy to upstream, closed when the test
// ends.
func proxy(t *testing.T, name, upstream string) *faultnet.Proxy {
	t.Helper()
	p, err := faultnet.New(name, upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// newClient is a client of base that retries unknown outcomes with one
// key through the others.
func newClient(t *testing.T, data *dataservertest.Server, base string, retries int, others ...string) *client.Client {
	t.Helper()
	c, err := client.New(base, data.URL+"/autentica", token, client.WithRetries(retries), client.WithFailover(others...),
		client.WithTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	return time.Since(start)
}

// commitLines returns the data server's commit lines by holder id.
func commitLines(data *dataservertest.Server, id string) []string {
	var out []string
	for _, l := range strings.Split(data.LogText(), "\n") {
		f := strings.Split(l, ", ")
		if len(f) >= 4 && f[2] == id && (f[3] == "commit" || f[3] == "setSaldo") {
			out = append(out, l)
		}
	}
	return out
}

// applied reports whether a commit or setSaldo line was applied (a refusal
// ends with the error's name).
func applied(line string) bool {
	last := line[strings.LastIndex(line, ", ")+2:]
	return last != "" && last[0] >= '0' && last[0] <= '9'
}

// op is one operation of the workload, and what became of it.
type op struct {
	kind       string // deposito, saque, transferencia
	a, b, v    int64
	key        string
	applied    bool
	known      bool
	saldo      int64 // the balance answered, for deposits and withdrawals
	err        error
	sawUnknown bool
}

// TestUnderNetworkFaults runs deposits, withdrawals and transfers from
// several clients through two business servers while the links between
// clients, business servers and the data server go slow, lose answers
// after the data server applied them, reset, and partition past the
// lease; then heals them, resolves every unknown outcome by repeating it
// with its Idempotency-Key, and checks the properties, each a subtest.
func TestUnderNetworkFaults(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{Accounts: accounts, InitialBalance: initial})
	var bizData [2]*faultnet.Proxy
	var cli [2]*faultnet.Proxy
	for i := range 2 {
		bizData[i] = proxy(t, fmt.Sprintf("biz%d->data", i+1), data.Addr)
		b := businesstest.Start(t, data, businesstest.Options{DataURL: bizData[i].URL(), ID: fmt.Sprintf("biz%d", i+1),
			LockTTL: 500 * time.Millisecond, LockWait: 300 * time.Millisecond, DataTimeout: 1500 * time.Millisecond})
		cli[i] = proxy(t, fmt.Sprintf("client->biz%d", i+1), b.Addr)
	}

	// Negative balances are watched throughout, through the actors.
	var negative atomic.Value
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond): // a sampling period, not a synchronization
			}
			bal, _ := data.Balances(t)
			for i, b := range bal {
				if b < 0 {
					negative.Store(fmt.Sprintf("account %d at %d", i+1, b))
				}
			}
		}
	}()

	const workers = 6
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var ops []*op
	var wg sync.WaitGroup
	for w := range workers {
		// No retries by the client: an unknown outcome stays unknown until
		// the end, when it is repeated with its key.
		c := newClient(t, data, cli[w%2].URL(), 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				o := &op{a: 1 + rng.Int64N(accounts), v: 1 + rng.Int64N(40), key: client.NewKey()}
				switch rng.IntN(3) {
				case 0:
					o.kind = "deposito"
				case 1:
					o.kind = "saque"
				default:
					o.kind = "transferencia"
					o.b = 1 + (o.a+rng.Int64N(accounts-1))%accounts
				}
				run(context.Background(), c, o)
				mu.Lock()
				ops = append(ops, o)
				mu.Unlock()
			}
		}()
	}

	// The schedule of faults: each on for a while, then healed.
	step := func(d time.Duration, what string, inject func() error, links ...*faultnet.Proxy) {
		t.Helper()
		if err := inject(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(d) // the fault's duration: the schedule, not a synchronization
		for _, l := range links {
			if err := l.Heal(); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // load before the first fault
	step(time.Second, "slow business->data", func() error {
		return errors.Join(bizData[0].Latency(faultnet.Both, 80*time.Millisecond, 60*time.Millisecond),
			bizData[1].Latency(faultnet.Up, 30*time.Millisecond, 30*time.Millisecond))
	}, bizData[0], bizData[1])
	step(time.Second, "answers cut after delivery", func() error { return bizData[1].LimitData(faultnet.Down, 700) }, bizData[1])
	step(time.Second, "client->business resets mid-answer", func() error { return cli[0].ResetPeer(faultnet.Down, 0) }, cli[0])
	step(time.Second, "business->data late answers past the lease", func() error {
		return bizData[0].Latency(faultnet.Down, 700*time.Millisecond, 50*time.Millisecond)
	}, bizData[0])
	step(1200*time.Millisecond, "business -/- data past the lease", func() error { return bizData[1].Partition() }, bizData[1])
	step(time.Second, "requests cut mid-way", func() error { return bizData[0].LimitData(faultnet.Up, 300) }, bizData[0])
	step(time.Second, "client -/- business", func() error { return cli[1].Partition() }, cli[1])
	cancel()
	wg.Wait()
	close(stopWatch)
	<-watched

	// Every unknown outcome is resolved: repeated with its key through a
	// healed link until it is known.
	c := newClient(t, data, cli[0].URL(), 5, cli[1].URL())
	unknown := 0
	for _, o := range ops {
		if o.known {
			continue
		}
		unknown++
		deadline := time.Now().Add(20 * time.Second)
		for !o.known {
			if time.Now().After(deadline) {
				t.Fatalf("%s %d %d %d: outcome still unknown after healing: %v", o.kind, o.a, o.b, o.v, o.err)
			}
			run(context.Background(), c, o)
		}
	}
	want := make([]int64, accounts)
	for i := range want {
		want[i] = initial
	}
	nApplied := 0
	for _, o := range ops {
		if !o.applied {
			continue
		}
		nApplied++
		switch o.kind {
		case "deposito":
			want[o.a-1] += o.v
		case "saque":
			want[o.a-1] -= o.v
		default:
			want[o.a-1] -= o.v
			want[o.b-1] += o.v
		}
	}
	bal, holders := data.Balances(t)
	t.Logf("%d operations, %d applied, %d unknown until repeated with their keys; balances %v", len(ops), nApplied, unknown, bal)
	if nApplied < 50 || unknown == 0 {
		t.Errorf("the workload did too little (%d applied) or no fault left an outcome unknown (%d): the faults were not exercised", nApplied, unknown)
	}

	t.Run("no acknowledged write lost", func(t *testing.T) {
		for i := range want {
			if bal[i] != want[i] {
				t.Errorf("account %d: balance %d, the acknowledged operations give %d", i+1, bal[i], want[i])
			}
		}
	})
	t.Run("no money created or destroyed", func(t *testing.T) {
		var sum, wantSum int64
		for i := range bal {
			sum += bal[i]
			wantSum += want[i]
		}
		if sum != wantSum {
			t.Errorf("the balances sum to %d, deposits and withdrawals allow %d", sum, wantSum)
		}
	})
	t.Run("no balance negative", func(t *testing.T) {
		if v := negative.Load(); v != nil {
			t.Errorf("a negative balance was seen: %v", v)
		}
		for i, b := range bal {
			if b < 0 {
				t.Errorf("account %d ends at %d", i+1, b)
			}
		}
	})
	t.Run("every lock free after healing", func(t *testing.T) {
		for i, h := range holders {
			if h != "" {
				t.Errorf("account %d still locked by %q", i+1, h)
			}
		}
	})
}

// run runs o once through c and records what became of it: applied, known
// not to be, or unknown (to be repeated with o.key).
func run(ctx context.Context, c *client.Client, o *op) {
	var err error
	switch o.kind {
	case "deposito":
		var m client.Movement
		m, err = c.Deposito(ctx, o.a, o.v, client.Key(o.key))
		o.saldo = m.Saldo
	case "saque":
		var m client.Movement
		m, err = c.Saque(ctx, o.a, o.v, client.Key(o.key))
		o.saldo = m.Saldo
	default:
		_, err = c.Transferencia(ctx, o.a, o.b, o.v, client.Key(o.key))
	}
	o.err = err
	var ce *client.Error
	switch {
	case err == nil:
		o.applied, o.known = true, true
	case errors.Is(err, client.ErrUnavailable) || !errors.As(err, &ce):
		// No answer, or 502/503/504: the outcome is unknown, unless the
		// message says it was not applied — repeating with the key
		// settles both.
		o.sawUnknown = true
	default:
		// A refusal (403 locked, 409 insufficient funds...): nothing
		// applied, and not kept under the key unless definite.
		o.known = true
	}
}

// TestFencedAfterLease: a business server whose link to the data server
// stalls after its locks were granted, for longer than its lease, writes
// nothing once the lease has run out — its commit reaches the data server
// late and is refused (STALE_FENCE) while another business server, which
// took the lock after the lease, has its write applied.
func TestFencedAfterLease(t *testing.T) {
	const lease = 400 * time.Millisecond
	for _, tc := range []struct {
		name  string
		stall func(p *faultnet.Proxy) error
	}{
		// The commit is held on the wire and delivered after the lease.
		{"slow link", func(p *faultnet.Proxy) error { return p.Latency(faultnet.Up, 3*lease, 0) }},
		// Nothing passes until the link heals, after the lease.
		{"partition", func(p *faultnet.Proxy) error { return p.Partition() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{Accounts: accounts, InitialBalance: initial})
			link := proxy(t, "biz1->data", data.Addr)
			var once sync.Once
			locked := make(chan time.Time, 1)
			biz1 := businesstest.Start(t, data, businesstest.Options{DataURL: link.URL(), ID: "biz1", LockTTL: lease,
				DataTimeout: 10 * lease, RequestTimeout: 20 * lease,
				Hook: func(stage string) {
					if stage == "locked" {
						once.Do(func() {
							if err := tc.stall(link); err != nil {
								t.Error(err)
							}
							locked <- time.Now()
						})
					}
				}})
			biz2 := businesstest.Start(t, data, businesstest.Options{ID: "biz2", LockTTL: lease, LockWait: 5 * lease})
			c1 := newClient(t, data, biz1.URL, 0)
			c2 := newClient(t, data, biz2.URL, 0)

			first := make(chan error, 1)
			go func() {
				_, err := c1.Deposito(context.Background(), 3, 100)
				first <- err
			}()
			grant := <-locked
			// biz2 gets the lock once biz1's lease runs out, and writes.
			if _, err := c2.Deposito(context.Background(), 3, 7); err != nil {
				t.Fatalf("biz2's deposit after biz1's lease: %v", err)
			}
			if since := time.Since(grant); since < lease/2 {
				t.Errorf("biz2 had the lock %v after biz1's grant, within biz1's lease %v", since, lease)
			}
			time.Sleep(2 * lease) // the cut lasts well past the lease: the schedule, not a synchronization
			if err := link.Heal(); err != nil {
				t.Fatal(err)
			}
			err := <-first
			if err == nil {
				t.Fatal("biz1's deposit, committed after its lease, was acknowledged")
			}
			if !errors.Is(err, client.ErrUnavailable) {
				t.Errorf("biz1's deposit: %v, want 503 unavailable", err)
			}
			bal, _ := data.Balances(t)
			if bal[2] != initial+7 {
				t.Errorf("account 3 holds %d, want %d: only biz2's deposit", bal[2], initial+7)
			}
			for _, l := range commitLines(data, "biz1") {
				if applied(l) {
					t.Errorf("the data server applied a write of biz1 after its lease: %q", l)
				}
			}
			if tc.name == "slow link" {
				// The late commit did reach the data server: it was refused.
				waitFor(t, 5*time.Second, "biz1's late commit refused in the data server's log", func() bool {
					for _, l := range commitLines(data, "biz1") {
						if strings.HasSuffix(l, "STALE_FENCE") {
							return true
						}
					}
					return false
				})
			}
		})
	}
}

// TestLostCommitAnswerRetriedElsewhere: the data server applies a
// deposit's /commit, its answer is lost on the way back to business
// server biz1 (which answers 503, outcome unknown); the client repeats the
// deposit with its Idempotency-Key through biz2, which answers the first
// outcome: the deposit is applied once.
func TestLostCommitAnswerRetriedElsewhere(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{Accounts: accounts, InitialBalance: initial})
	link := proxy(t, "biz1->data", data.Addr)
	var once sync.Once
	biz1 := businesstest.Start(t, data, businesstest.Options{DataURL: link.URL(), ID: "biz1",
		Hook: func(stage string) {
			if stage == "before-commit" {
				once.Do(func() {
					if err := link.DropAnswers(); err != nil {
						t.Error(err)
					}
				})
			}
		}})
	biz2 := businesstest.Start(t, data, businesstest.Options{ID: "biz2"})
	c := newClient(t, data, biz1.URL, 1, biz2.URL)

	m, err := c.Deposito(context.Background(), 4, 250)
	if err != nil {
		t.Fatalf("deposit retried through biz2: %v", err)
	}
	if m.Saldo != initial+250 {
		t.Errorf("answered balance %d, want %d", m.Saldo, initial+250)
	}
	bal, _ := data.Balances(t)
	if bal[3] != initial+250 {
		t.Fatalf("account 4 holds %d, want %d: the deposit applied once", bal[3], initial+250)
	}
	// biz1's commit was applied by the data server (its answer lost), and
	// biz2 applied nothing: it answered the record kept with the commit.
	var biz1Applied int
	for _, l := range commitLines(data, "biz1") {
		if applied(l) {
			biz1Applied++
		}
	}
	if biz1Applied != 1 {
		t.Errorf("biz1 commits applied: %d, want 1 (%q)", biz1Applied, commitLines(data, "biz1"))
	}
	if l := commitLines(data, "biz2"); len(l) != 0 {
		t.Errorf("biz2 wrote %q: the retry applied the deposit again", l)
	}
	if !strings.Contains(biz2.LogText(), "deposito") {
		t.Error("the retry did not go through biz2")
	}
}

// TestLocksFreeWithinLease: a business server's link to the data server
// fails while it holds a lock — it goes silent, it is cut, or it goes
// silent and heals at once — and the lock is free within one lease of the
// grant (or of the heal), and another business server can take it.
func TestLocksFreeWithinLease(t *testing.T) {
	const lease = 500 * time.Millisecond
	const slack = 500 * time.Millisecond // timers and polling on a loaded 2-core machine; a lock held to the data server's own 10 s lease still fails
	for _, tc := range []struct {
		name string
		cut  func(p *faultnet.Proxy) error
		heal time.Duration // > 0: healed this long after the cut
	}{
		{"link silent", (*faultnet.Proxy).Partition, 0},
		{"link cut", func(p *faultnet.Proxy) error { p.Disconnect(); return nil }, 0},
		{"link silent then healed", (*faultnet.Proxy).Partition, lease / 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := dataservertest.Start(t, dataservertest.Options{Accounts: accounts, InitialBalance: initial})
			link := proxy(t, "biz1->data", data.Addr)
			var once sync.Once
			locked := make(chan time.Time, 1)
			biz1 := businesstest.Start(t, data, businesstest.Options{DataURL: link.URL(), ID: "biz1", LockTTL: lease,
				DataTimeout: 4 * lease,
				Hook: func(stage string) {
					if stage == "locked" {
						once.Do(func() {
							if err := tc.cut(link); err != nil {
								t.Error(err)
							}
							locked <- time.Now()
						})
					}
				}})
			c1 := newClient(t, data, biz1.URL, 0)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = c1.Transferencia(context.Background(), 2, 5, 10)
			}()
			t.Cleanup(func() { _ = link.Heal(); <-done })
			grant := <-locked
			from := grant
			if tc.heal > 0 {
				time.Sleep(tc.heal) // the cut's duration: the schedule, not a synchronization
				if err := link.Heal(); err != nil {
					t.Fatal(err)
				}
				from = time.Now()
			}
			waitFor(t, 10*time.Second, "accounts 2 and 5 free", func() bool {
				_, holders := data.Balances(t)
				return holders[1] == "" && holders[4] == ""
			})
			if took := time.Since(from); took > lease+slack {
				t.Errorf("the locks were free %v after the grant or heal, more than one lease (%v) + %v", took, lease, slack)
			}
			biz2 := businesstest.Start(t, data, businesstest.Options{ID: "biz2", LockTTL: lease})
			c2 := newClient(t, data, biz2.URL, 0)
			if _, err := c2.Transferencia(context.Background(), 5, 2, 1); err != nil {
				t.Errorf("another business server cannot use the accounts: %v", err)
			}
		})
	}
}
