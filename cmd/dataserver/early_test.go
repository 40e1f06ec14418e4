package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHotAccountKilledWithEarlyLockRelease is the crash test of early
// lock release, where it matters: every operation deposits 1 to account
// 1, so each one takes the lock its predecessor passed on before that
// predecessor's write was synced. Sixteen workers deposit through two
// business servers while readers poll account 1's balance, on the data
// server (/getSaldo) and on a business server (/saldo/1); the data server
// is killed with SIGKILL three times under that load and restarted on the
// same --data-dir. After each restart the balance must be at least every
// balance any client was shown before the kill — by a reader or in a
// deposit's answer — since a balance shown and then lost is a value a
// crash erased after a client saw it; and it must lie within what the
// acknowledged deposits and those of unknown outcome allow. At the end
// every unknown outcome is resolved with its key and the balance is exact.
func TestHotAccountKilledWithEarlyLockRelease(t *testing.T) {
	const (
		rounds  = 3
		workers = 16
		between = 400 // deposits acknowledged before each kill
	)
	c := newCluster(t, "")
	c.startData()
	b1 := c.startBusiness("biz1", nil)
	b2 := c.startBusiness("biz2", nil)
	urls := []string{b1.URL, b2.URL}

	var seen maxSeen
	var ops []*op
	for r := 1; r <= rounds; r++ {
		load := startLoadOf(t, &loadGen{
			client: c.client, urls: urls,
			next: func(*rng) *op { return &op{kind: opDeposit, a: 1, v: 1} },
			onAnswer: func(o *op) {
				if o.out == outOK && o.saldo != nil {
					seen.observe(*o.saldo, "deposit answer")
				}
			},
		}, workers, uint64(r))
		stopReaders := startReaders(c, b1.URL, &seen)
		load.waitAcked(t, between, 30*time.Second, fmt.Sprintf("before kill %d", r))
		c.data.Kill()
		stopReaders()
		ops = append(ops, load.stop()...)
		c.startData()

		bal := c.balances()
		most, by := seen.get()
		if bal[0] < most {
			t.Errorf("kill %d: account 1 holds %d after the restart, but a client was shown %d (%s) before the kill: a balance a crash erased was exposed", r, bal[0], most, by)
		}
		checkBounds(t, bal, ops)
		t.Logf("kill %d: balance %d after the restart; the most any client was shown before it: %d (%s); %d reads",
			r, bal[0], most, by, seen.reads.Load())
	}
	tl := count(ops)
	t.Logf("%d deposits to account 1: %d acknowledged, %d with unknown outcome", len(ops), tl.ok, tl.unknown)
	if tl.ok < rounds*between {
		t.Errorf("only %d deposits acknowledged", tl.ok)
	}
	resolve(t, c.client, b1.URL, ops)
	checkExact(t, c.balances(), ops)
}

// maxSeen is the largest balance of account 1 any client was shown, and
// by what.
type maxSeen struct {
	mu    sync.Mutex
	most  int64
	by    string
	reads atomic.Int64
}

func (m *maxSeen) observe(b int64, by string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b > m.most {
		m.most, m.by = b, by
	}
}

func (m *maxSeen) get() (int64, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.most, m.by
}

// startReaders polls account 1's balance on the data server and on the
// business server at biz until the returned stop is called; stop returns
// once neither reader has a request in flight, so that nothing read after
// it is counted.
func startReaders(c *cluster, biz string, seen *maxSeen) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	poll := func(what string, read func() (int64, bool)) {
		for {
			select {
			case <-done:
				return
			default:
			}
			if b, ok := read(); ok {
				seen.reads.Add(1)
				seen.observe(b, what)
			} else {
				// The data server is down or restarting: pace the retries.
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	}
	wg.Go(func() {
		poll("/getSaldo on the data server", func() (int64, bool) {
			r, err := c.dataGet("/getSaldo", "conta=1")
			if err != nil || r.Status != http.StatusOK || r.Saldo == nil {
				return 0, false
			}
			return *r.Saldo, true
		})
	})
	wg.Go(func() {
		poll("/saldo/1 on a business server", func() (int64, bool) { return businessSaldo(c.client, biz, 1) })
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// businessSaldo reads account a's balance through a business server.
func businessSaldo(client *http.Client, base string, a int) (int64, bool) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/saldo/%d", base, a), nil)
	if err != nil {
		return 0, false
	}
	req.Header.Set("token", clientToken)
	resp, err := client.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, false
	}
	var answer struct {
		Saldo *int64 `json:"saldo"`
	}
	if json.Unmarshal(body, &answer) != nil || answer.Saldo == nil {
		return 0, false
	}
	return *answer.Saldo, true
}
