package business_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/freeport"
)

// closedURL returns the URL of a loopback port nobody listens on: a data
// server that is down.
func closedURL(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// TestBusinessFailsOverWhenADataServerDies runs a business server in front
// of two data servers of one bank, over real HTTP, and stops the first
// (the one it calls) in the middle of a concurrent run of transfers,
// deposits and reads. Operations in flight at that moment may fail and are
// retried with their Idempotency-Key, as a client does; once the first
// data server is gone, every operation succeeds at the first attempt,
// through the second. Money is conserved throughout.
func TestBusinessFailsOverWhenADataServerDies(t *testing.T) {
	a := dataservertest.Start(t, dataservertest.Options{})
	b := a.Second(t)
	bs := startBusiness(t, a, businesstest.Options{DataURL: a.URL + "," + b.URL})

	var deposited atomic.Int64
	// op runs operation i (a transfer, a deposit or a read), retrying an
	// answer other than 200 with the same key, at most retries times.
	op := func(worker, i, retries int) (attempts int, last result, err error) {
		var path string
		switch i % 3 {
		case 0:
			path = fmt.Sprintf("/transferencia/%d/%d/7", 1+(worker+i)%10, 1+(worker+i+1)%10)
		case 1:
			path = fmt.Sprintf("/deposito/%d/3", 1+(worker*7+i)%10)
		default:
			path = fmt.Sprintf("/saldo/%d", 1+i%10)
		}
		key := "w" + strconv.Itoa(worker) + "-" + strconv.Itoa(i)
		for attempts = 1; ; attempts++ {
			if last, err = tryDoKey("GET", bs.URL+path, token, key); err != nil {
				return attempts, last, err
			}
			if last.status == 200 || attempts > retries {
				break
			}
		}
		if last.status == 200 && i%3 == 1 {
			deposited.Add(3)
		}
		return attempts, last, nil
	}

	const workers, perWorker = 4, 60
	var wg sync.WaitGroup
	var done atomic.Int64
	killed := make(chan struct{})
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				if _, r, err := op(w, i, 3); err != nil || r.status != 200 {
					errs <- fmt.Errorf("worker %d op %d: %d %s %v", w, i, r.status, r.body, err)
					return
				}
				// Halfway through, the first data server goes away.
				if done.Add(1) == workers*perWorker/2 {
					go func() { a.StopHTTP(); close(killed) }()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	<-killed
	// The first data server is gone: every operation succeeds at once.
	for i := range 30 {
		attempts, r, err := op(99, i, 0)
		if err != nil || r.status != 200 || attempts != 1 {
			t.Fatalf("after the failover, op %d: %d %s (%d attempts) %v", i, r.status, r.body, attempts, err)
		}
	}
	if !strings.Contains(b.LogText(), "commit") {
		t.Error("the second data server served no commit")
	}
	checkTotal(t, a, 10*1000+deposited.Load()) // 10000 and the acknowledged deposits
}
