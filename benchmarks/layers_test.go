package benchmarks

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/actors/teller/inprocess"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// clients is the number of concurrent callers in the parallel benchmarks:
// RunParallel starts parallelism × GOMAXPROCS goroutines.
const clients = 64

// BenchmarkAccountRules is the cost of the pure rules: lock (with a
// lease), fenced write, fenced unlock.
func BenchmarkAccountRules(b *testing.B) {
	a, _ := account.New(0)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		g, _ := a.Lock("A", 0, time.Second, now)
		_ = a.Write("A", g.Fence, int64(i))
		_, _, _ = a.Unlock("A", g.Fence, now)
	}
}

// BenchmarkLockUnlock is a lock and unlock pair through an account actor,
// without a lease and with one, whose timer is armed and cancelled per
// grant (upstream measured ~8.6 µs per pair with timers).
func BenchmarkLockUnlock(b *testing.B) {
	for _, ttl := range []time.Duration{0, 10 * time.Second} {
		b.Run("lease="+ttl.String(), func(b *testing.B) {
			bank, err := actors.New(actors.Config{Accounts: 10000, Synchronous: true})
			if err != nil {
				b.Fatal(err)
			}
			defer bank.Close()
			var seq atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(clients / max(1, runtimeProcs()))
			b.ResetTimer() // spawning 10,000 actors is not what is measured
			b.RunParallel(func(pb *testing.PB) {
				id := seq.Add(7919)
				me := "holder" + strconv.FormatInt(id, 10)
				for pb.Next() {
					id = id%10000 + 1
					g, err := bank.Do(id, actors.Request{Op: actors.OpLock, Holder: me, TTL: ttl})
					if err == nil {
						_, err = bank.Do(id, actors.Request{Op: actors.OpUnlock, Holder: me, Fence: g.Fence})
					}
					if err != nil && !errors.Is(err, account.ErrLocked) {
						b.Error(err)
						return
					}
					id += 7919
				}
			})
		})
	}
}

// BenchmarkActorRoundTrip is one read through an account actor, from 64
// callers over 10,000 accounts, with each dispatcher.
func BenchmarkActorRoundTrip(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := "dispatcher=goroutine"
		if sync {
			name = "dispatcher=synchronized"
		}
		b.Run(name, func(b *testing.B) {
			bank, err := actors.New(actors.Config{Accounts: 10000, Synchronous: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer bank.Close()
			var seq atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(clients / max(1, runtimeProcs()))
			b.ResetTimer() // spawning 10,000 actors is not what is measured
			b.RunParallel(func(pb *testing.PB) {
				id := seq.Add(7919)
				for pb.Next() {
					id = id%10000 + 1
					if _, err := bank.Do(id, actors.Request{Op: actors.OpRead}); err != nil {
						b.Error(err)
						return
					}
					id += 7919
				}
			})
		})
	}
}

// startConstant serves a fixed body with fasthttp's defaults: the ceiling
// for any route of ours on this machine.
func startConstant(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"saldo":1000}`)
	}}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// hammer sends GETs built by path from 64 goroutines over keep-alive
// connections and reports requests per second.
func hammer(b *testing.B, addr string, token string, path func(i int64) string, check func(status int, body []byte) bool) {
	c := &fasthttp.HostClient{Addr: addr, MaxConns: clients, MaxConnWaitTimeout: 5 * time.Second}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(clients / max(1, runtimeProcs()))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		if token != "" {
			req.Header.Set("token", token)
		}
		for pb.Next() {
			req.SetRequestURI("http://" + addr + path(seq.Add(1)))
			if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
				b.Error(err)
				return
			}
			if !check(resp.StatusCode(), resp.Body()) {
				b.Errorf("unexpected answer %d %s", resp.StatusCode(), resp.Body())
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func ok200(status int, _ []byte) bool { return status == 200 }

// BenchmarkLoopback compares, in one run, a constant fasthttp answer with
// the data server's /status and /getSaldo through the actors.
func BenchmarkLoopback(b *testing.B) {
	b.Run("route=constant", func(b *testing.B) {
		addr := startConstant(b)
		hammer(b, addr, "", func(int64) string { return "/" }, ok200)
	})
	ds := dataservertest.Start(b, dataservertest.Options{Accounts: 1000})
	addr := ds.Addr
	b.Run("route=status", func(b *testing.B) {
		hammer(b, addr, "", func(int64) string { return "/status" }, ok200)
	})
	b.Run("route=getSaldo", func(b *testing.B) {
		hammer(b, addr, ds.ServerToken, func(i int64) string {
			return "/getSaldo?id_negoc=bench&conta=" + strconv.FormatInt(i%1000+1, 10)
		}, func(status int, body []byte) bool { return status == 200 && body[2] == 's' })
	})
}

// BenchmarkTransfer is one whole transfer (two locks, the check, one
// atomic commit of both balances that also unlocks), from 64 callers over
// 1,000 accounts, along both paths in one run:
//
//   - path=inprocess: a teller.Teller over the account actors of this
//     process (actors/teller/inprocess), no socket at all, with the store
//     in memory and in pebble (every commit a synced batch);
//   - path=loopback: a business server's /transferencia over loopback
//     (auth cache hit, one /getLocks and one /commit on an in-memory data
//     server), beside the business server's /status.
//
// Directions alternate so that no account drains.
//
//	go test -run '^$' -bench 'Transfer$' -count 6 ./benchmarks/ | benchstat -col /path -
func BenchmarkTransfer(b *testing.B) {
	for _, st := range benchStores {
		for _, co := range benchCoalesce {
			b.Run("path=inprocess/store="+st+"/coalesce="+strconv.Itoa(co), func(b *testing.B) {
				runTeller(b, startInProcess(b, st, co), func(i int64) teller.Op {
					from, to := transferLegs(i)
					return teller.Op{Kind: teller.Transfer, A: from, B: to, Amount: 1}
				})
			})
		}
	}
	ds := dataservertest.Start(b, dataservertest.Options{Accounts: 1000, InitialBalance: 1 << 40})
	biz := businesstest.Start(b, ds, businesstest.Options{})
	b.Run("path=loopback/route=status", func(b *testing.B) {
		hammer(b, biz.Addr, "", func(int64) string { return "/status" }, ok200)
	})
	for _, co := range benchCoalesce {
		biz := businesstest.Start(b, ds, businesstest.Options{Coalesce: co})
		b.Run("path=loopback/route=transferencia/coalesce="+strconv.Itoa(co), func(b *testing.B) {
			hammer(b, biz.Addr, "ba0f", func(i int64) string {
				from, to := transferLegs(i)
				return "/transferencia/" + strconv.FormatInt(from, 10) + "/" + strconv.FormatInt(to, 10) + "/1"
			}, ok200)
		})
	}
}

// transferLegs spreads the i-th transfer over 1,000 accounts, alternating
// directions so that no account drains.
func transferLegs(i int64) (from, to int64) {
	from, to = i%1000+1, (i*7919+1)%1000+1
	if from == to {
		to = to%1000 + 1
	}
	if i%2 == 1 {
		from, to = to, from
	}
	return from, to
}

// The stores the benchmarks compare: in memory; durable, each commit
// synced before its locks pass on; durable with early lock release (the
// locks pass on once the commit is ordered in the WAL, every answer
// waiting for its sync: the dataserver command's default).
const (
	storeMemory    = "memory"
	storePebble    = "pebble"
	storePebbleELR = "pebble-elr"
)

var benchStores = []string{storeMemory, storePebble, storePebbleELR}

// durableStore returns the store named, a fresh pebble for the durable
// ones, and whether early lock release is on.
func durableStore(b *testing.B, st string) (s interface {
	actors.Store
	inprocess.Records
}, elr bool) {
	b.Helper()
	if st == storeMemory {
		return store.NewMemory(), false
	}
	return openPebble(b), st == storePebbleELR
}

// benchCoalesce are the Tellers the in-process benchmarks compare: each
// operation alone (0), and up to 64 concurrent ones coalesced into one
// batch transaction (the businessserver command's default).
var benchCoalesce = []int{0, 64}

// startInProcess starts 1,000 account actors over the store named (see
// benchStores) and returns a Teller over them, as a business server's
// would be (ascending order, waiting, a 10 s lease), coalescing up to
// coalesce concurrent operations (teller.Config.Coalesce).
func startInProcess(b *testing.B, st string, coalesce int) *teller.Teller {
	b.Helper()
	s, elr := durableStore(b, st)
	bank, err := actors.New(actors.Config{Accounts: 1000, InitialBalance: 1 << 40, Store: s, Synchronous: true, EarlyLockRelease: elr})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bank.Close) // before the store's close
	accts, err := inprocess.New(inprocess.Config{Bank: bank, Records: s})
	if err != nil {
		b.Fatal(err)
	}
	tl, err := teller.New(teller.Config{Accounts: accts.For("bench", 10*time.Second), Holder: "bench", Coalesce: coalesce})
	if err != nil {
		b.Fatal(err)
	}
	return tl
}

// BenchmarkHotAccount is deposits of 1 from 64 callers, all to account 1
// (accounts=1) against spread over 1,000 accounts (accounts=1000), in one
// run, along both paths, with the store durable (pebble: every commit a
// synced batch) and in memory:
//
//   - path=inprocess: a teller.Teller over the account actors;
//   - path=loopback: a business server's /deposito over loopback.
//
// One account serializes its operations: its lock is held from the grant
// to the commit's durable write, so accounts=1 runs at one operation per
// lock-to-commit round (with pebble, one fsync each); the ratio of the two
// is what a hot account costs.
//
//	go test -run '^$' -bench 'HotAccount$' -count 6 ./benchmarks/ | benchstat -col /accounts -
func BenchmarkHotAccount(b *testing.B) {
	spread := func(n int64) func(int64) int64 {
		return func(i int64) int64 { return i%n + 1 }
	}
	for _, st := range benchStores {
		for _, co := range benchCoalesce {
			for _, n := range []int64{1, 1000} {
				pick := spread(n)
				b.Run("path=inprocess/store="+st+"/coalesce="+strconv.Itoa(co)+"/accounts="+strconv.FormatInt(n, 10), func(b *testing.B) {
					runTeller(b, startInProcess(b, st, co), func(i int64) teller.Op {
						return teller.Op{Kind: teller.Deposit, A: pick(i), Amount: 1}
					})
				})
			}
		}
	}
	for _, st := range benchStores {
		opts := dataservertest.Options{Accounts: 1000}
		opts.Store, opts.EarlyLockRelease = durableStore(b, st)
		ds := dataservertest.Start(b, opts)
		for _, co := range benchCoalesce {
			biz := businesstest.Start(b, ds, businesstest.Options{Coalesce: co})
			for _, n := range []int64{1, 1000} {
				pick := spread(n)
				b.Run("path=loopback/store="+st+"/coalesce="+strconv.Itoa(co)+"/accounts="+strconv.FormatInt(n, 10), func(b *testing.B) {
					hammer(b, biz.Addr, "ba0f", func(i int64) string {
						return "/deposito/" + strconv.FormatInt(pick(i), 10) + "/1"
					}, ok200)
				})
			}
		}
	}
}

// runTeller runs op(i) for i = 1, 2, ... through tl from the parallel
// benchmark's callers.
func runTeller(b *testing.B, tl *teller.Teller, op func(i int64) teller.Op) {
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(clients / max(1, runtimeProcs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := tl.Run(ctx, op(seq.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// openPebble opens a pebble store in a fresh directory, closed when b
// ends (after whatever was started over it later: cleanups run last
// first).
func openPebble(b *testing.B) *store.Pebble {
	b.Helper()
	p, err := store.OpenPebble(filepath.Join(b.TempDir(), "db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}
