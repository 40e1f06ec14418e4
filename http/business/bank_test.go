package business_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// TestBank runs three business servers on one data server with 64
// concurrent clients doing random deposits, withdrawals and transfers
// (opposite-direction transfers between the same pairs included), then
// checks that the money adds up, no balance is negative, no lock is held
// and every request was answered.
func TestBank(t *testing.T) {
	const (
		accounts = 5
		initial  = 1000
		clients  = 64
	)
	duration := 3 * time.Second
	if testing.Short() {
		duration = time.Second
	}
	data := dataservertest.Start(t, dataservertest.Options{Accounts: accounts, InitialBalance: initial})
	var servers []*businesstest.Server
	for range 3 {
		servers = append(servers, startBusiness(t, data, businesstest.Options{}))
	}

	var (
		deposited, withdrawn atomic.Int64
		requests             [3]atomic.Int64 // per business server
		statuses             sync.Map        // "route status" -> *atomic.Int64
		failures             = make(chan string, 1000)
	)
	count := func(key string) {
		v, _ := statuses.LoadOrStore(key, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	fail := func(format string, args ...any) {
		select {
		case failures <- fmt.Sprintf(format, args...):
		default:
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				si := rng.IntN(len(servers))
				a := 1 + rng.Int64N(accounts)
				var route, path string
				var amount int64
				switch k := rng.IntN(20); {
				case k < 6:
					route, amount = "deposito", 1+rng.Int64N(100)
					path = fmt.Sprintf("/deposito/%d/%d", a, amount)
				case k < 11:
					route, amount = "saque", 1+rng.Int64N(300)
					path = fmt.Sprintf("/saque/%d/%d", a, amount)
				case k < 18:
					// Half the transfers go either way between accounts 1
					// and 2, so opposite-direction pairs meet constantly.
					b := 1 + rng.Int64N(accounts-1)
					if b >= a {
						b++
					}
					if k < 14 {
						a, b = 1, 2
						if rng.IntN(2) == 0 {
							a, b = b, a
						}
					}
					route, amount = "transferencia", 1+rng.Int64N(400)
					path = fmt.Sprintf("/transferencia/%d/%d/%d", a, b, amount)
				default:
					route, path = "saldo", fmt.Sprintf("/saldo/%d", a)
				}
				requests[si].Add(1)
				r, err := tryDo(http.MethodGet, servers[si].URL+path, token)
				if err != nil {
					fail("%s: no answer (hung or failed): %v", path, err)
					continue
				}
				count(fmt.Sprintf("%s %d", route, r.status))
				switch r.status {
				case 200:
					switch route {
					case "deposito":
						deposited.Add(amount)
					case "saque":
						withdrawn.Add(amount)
					}
					for _, v := range []*int64{r.ans.Saldo, r.ans.SaldoOrig, r.ans.SaldoDest} {
						if v != nil && *v < 0 {
							fail("%s: negative balance answered: %s", path, r.body)
						}
					}
				case 403, 409:
					// lock contention past the deadline, or insufficient funds
				default:
					fail("%s: %d %s", path, r.status, r.body)
				}
			}
		})
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}

	var summary []string
	ok := int64(0)
	statuses.Range(func(k, v any) bool {
		n := v.(*atomic.Int64).Load()
		summary = append(summary, fmt.Sprintf("%s: %d", k, n))
		if strings.HasSuffix(k.(string), " 200") {
			ok += n
		}
		return true
	})
	t.Logf("answers: %s", strings.Join(summary, ", "))
	if ok < 100 {
		t.Errorf("only %d operations succeeded", ok)
	}

	// The initial money, plus the deposits, less the withdrawals.
	checkTotal(t, data, int64(accounts*initial)+deposited.Load()-withdrawn.Load())
	for i, s := range servers {
		if got, sent := int64(len(s.LogLines())), requests[i].Load(); got != sent {
			t.Errorf("business server %d logged %d lines for %d requests", i, got, sent)
		}
	}
}
