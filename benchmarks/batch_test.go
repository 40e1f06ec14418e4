package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

// batchSizes is the curve of BenchmarkBatch: transfers per batch, from
// one (a batch that is a single transfer) to teller.MaxBatch.
var batchSizes = []int{1, 10, 100, 1000, teller.MaxBatch}

// batchCallers is how many callers send batches of n at once: 64 single
// transfers, as the other benchmarks; fewer batches the larger they are,
// since a batch of 1,000 over 1,000 accounts locks nearly every one of
// them, and more callers would only queue behind it; never fewer than two,
// so that one batch's round trips overlap another's work.
func batchCallers(n int) int { return min(max(clients/n, 2), clients) }

// BenchmarkBatch is the batch-size curve: batches of 1 to 8,190 transfers
// of 1 over 1,000 accounts (directions alternating, as BenchmarkTransfer's),
// each batch one teller.Transfers (one Lock of its accounts and one
// Commit), over the account actors with each store. b.N counts batches;
// it reports transfers/s and the p99 of a batch's latency (p99-ms).
//
//	go test -run '^$' -bench 'Batch$' -benchtime 2s ./benchmarks/
func BenchmarkBatch(b *testing.B) {
	for _, st := range benchStores {
		for _, n := range batchSizes {
			b.Run("path=inprocess/store="+st+"/batch="+strconv.Itoa(n), func(b *testing.B) {
				tl := startInProcess(b, st, 0)
				runBatches(b, n, func(ctx context.Context, batch []teller.BatchTransfer) error {
					results := make([]teller.BatchResult, len(batch))
					if err := tl.Transfers(ctx, batch, results); err != nil {
						return err
					}
					for _, r := range results {
						if r.Err != nil {
							return r.Err
						}
					}
					return nil
				})
			})
		}
	}
}

// BenchmarkBatchLoopback is BenchmarkBatch through a business server's
// POST /transferencias over loopback, the data server durable with early
// lock release (the dataserver command's default): the JSON body decoded,
// one /getLocks and one /commit of the batch's accounts, the answer of
// every transfer encoded.
//
//	go test -run '^$' -bench 'BatchLoopback$' -benchtime 2s ./benchmarks/
func BenchmarkBatchLoopback(b *testing.B) {
	opts := dataservertest.Options{Accounts: 1000, InitialBalance: 1 << 40}
	opts.Store, opts.EarlyLockRelease = durableStore(b, storePebbleELR)
	ds := dataservertest.Start(b, opts)
	biz := businesstest.Start(b, ds, businesstest.Options{})
	c := &fasthttp.HostClient{Addr: biz.Addr, MaxConns: clients, MaxConnWaitTimeout: 5 * time.Second,
		MaxResponseBodySize: 4 << 20}
	for _, n := range batchSizes {
		b.Run("path=loopback/store="+storePebbleELR+"/batch="+strconv.Itoa(n), func(b *testing.B) {
			runBatches(b, n, func(_ context.Context, batch []teller.BatchTransfer) error {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetBody(wire.AppendTransfers(make([]byte, 0, 64*len(batch)), len(batch),
					func(i int) teller.BatchTransfer { return batch[i] }))
				req.SetRequestURI("http://" + biz.Addr + "/transferencias")
				req.Header.SetMethod(fasthttp.MethodPost)
				req.Header.SetContentType("application/json")
				req.Header.Set("token", "ba0f")
				if err := c.DoTimeout(req, resp, 30*time.Second); err != nil {
					return err
				}
				want := `{"applied":` + strconv.Itoa(len(batch)) + `,`
				if resp.StatusCode() != fasthttp.StatusOK || !bytes.HasPrefix(resp.Body(), []byte(want)) {
					return fmt.Errorf("a batch of %d: %d %.200s", len(batch), resp.StatusCode(), resp.Body())
				}
				return nil
			})
		})
	}
}

// runBatches sends b.N batches of n transfers through send from
// batchCallers(n) callers, and reports transfers/s and the p99 of a
// batch's latency in milliseconds.
func runBatches(b *testing.B, n int, send func(ctx context.Context, batch []teller.BatchTransfer) error) {
	callers := batchCallers(n)
	var seq atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range callers {
		wg.Go(func() {
			ctx := context.Background()
			batch := make([]teller.BatchTransfer, n)
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for {
				k := seq.Add(1)
				if k > int64(b.N) {
					return
				}
				for j := range batch {
					from, to := transferLegs(k*int64(n) + int64(j))
					batch[j] = teller.BatchTransfer{From: from, To: to, Amount: 1}
				}
				t0 := time.Now()
				if err := send(ctx, batch); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "transfers/s")
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[(len(lat)*99)/100])/1e6, "p99-ms")
	}
}
