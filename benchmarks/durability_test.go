package benchmarks

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	bolt "go.etcd.io/bbolt"

	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// durabilityAccounts is the number of accounts of the durability
// benchmarks: enough that 64 writers rarely meet on one account.
const durabilityAccounts = 1000

// BenchmarkDurability measures, in one run, what making every write
// durable costs: a data server whose store is pebble (every write synced
// to its write-ahead log before it is acknowledged) beside one that keeps
// balances in memory, with 1 and 64 concurrent writers, through
//
//   - op=setSaldo: the data server's /setSaldo over loopback (no lock: one
//     account actor, one store commit per request);
//   - op=transfer: a business server's /transferencia over loopback (two
//     locks, then one atomic /commit of both balances that also unlocks).
//
// Each pair of store=pebble and store=memory runs back to back, so that
// their ratio is read on a machine in the same state; ns/op is wall time
// per operation, ops/s the throughput.
//
//	go test -run '^$' -bench Durability -count 6 ./benchmarks/ | benchstat -col /store -
func BenchmarkDurability(b *testing.B) {
	type bank struct{ data, token, biz string }
	banks := map[string]bank{}
	for _, name := range []string{"pebble", "memory"} {
		opt := dataservertest.Options{Accounts: durabilityAccounts, InitialBalance: 1 << 40}
		if name == "pebble" {
			opt.Store = openPebble(b)
		}
		ds := dataservertest.Start(b, opt)
		biz := businesstest.Start(b, ds, businesstest.Options{})
		banks[name] = bank{data: ds.Addr, token: ds.ServerToken, biz: biz.Addr}
	}
	for _, op := range []string{"setSaldo", "transfer"} {
		for _, writers := range []int{1, 64} {
			for _, name := range []string{"pebble", "memory"} {
				bk := banks[name]
				b.Run(fmt.Sprintf("store=%s/op=%s/writers=%d", name, op, writers), func(b *testing.B) {
					switch op {
					case "setSaldo":
						loopback(b, bk.data, bk.token, writers, func(i int64) string {
							return "/setSaldo?id_negoc=bench&conta=" + strconv.FormatInt(i%durabilityAccounts+1, 10) +
								"&valor=" + strconv.FormatInt(i, 10)
						}, isEmptyObject)
					case "transfer":
						loopback(b, bk.biz, "ba0f", writers, transferPath, isTransfer)
					}
				})
			}
		}
	}
}

// transferPath spreads transfers of 1 over the accounts, alternating
// directions so that no account drains.
func transferPath(i int64) string {
	from, to := i%durabilityAccounts+1, (i*7919+1)%durabilityAccounts+1
	if from == to {
		to = to%durabilityAccounts + 1
	}
	if i%2 == 1 {
		from, to = to, from
	}
	return "/transferencia/" + strconv.FormatInt(from, 10) + "/" + strconv.FormatInt(to, 10) + "/1"
}

func isEmptyObject(status int, body []byte) bool { return status == 200 && string(body) == "{}" }

func isTransfer(status int, body []byte) bool {
	return status == 200 && bytes.HasPrefix(body, []byte(`{"conta_orig":`))
}

// loopback sends b.N GETs built by path to addr from exactly writers
// goroutines over keep-alive connections, and reports ops/s beside ns/op.
func loopback(b *testing.B, addr, token string, writers int, path func(i int64) string, check func(int, []byte) bool) {
	c := &fasthttp.HostClient{Addr: addr, MaxConns: writers, MaxConnWaitTimeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	run(b, writers, func() func(i int64) error {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		if token != "" {
			req.Header.Set("token", token)
		}
		return func(i int64) error {
			req.SetRequestURI("http://" + addr + path(i))
			if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
				return err
			}
			if !check(resp.StatusCode(), resp.Body()) {
				return fmt.Errorf("unexpected answer %d %s", resp.StatusCode(), resp.Body())
			}
			return nil
		}
	})
}

// run calls the function each writer's setup returns, b.N times in all,
// from exactly writers goroutines, and reports ops/s.
func run(b *testing.B, writers int, setup func() func(i int64) error) {
	var (
		seq    atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Bool
	)
	do := make([]func(int64) error, writers)
	for w := range do {
		do[w] = setup()
	}
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for !failed.Load() {
				i := seq.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := do[w](i); err != nil {
					if !failed.Swap(true) {
						b.Error(err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
}

// BenchmarkStore compares embedded stores for the data server's one
// write: a single account's new balance, synced to disk before it
// returns, from 1 and 64 concurrent writers — what chose pebble. pebble
// commits a batch with pebble.Sync (concurrent commits share the write-
// ahead log's fsync); bbolt commits a read-write transaction (db.Update
// for one writer, db.Batch, which coalesces concurrent callers into one
// transaction, for 64); memory is the bank's in-memory store, the ceiling.
func BenchmarkStore(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("store=pebble/writers=%d", writers), func(b *testing.B) {
			p, err := store.OpenPebble(filepath.Join(b.TempDir(), "db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			commits(b, writers, func(id, balance int64) error {
				return p.Commit([]store.Write{{ID: id, Balance: balance}}, nil)
			})
		})
		b.Run(fmt.Sprintf("store=bbolt/writers=%d", writers), func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "bank.db"), 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			bucket := []byte("accounts")
			if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err }); err != nil {
				b.Fatal(err)
			}
			commit := db.Update
			if writers > 1 {
				commit = db.Batch
			}
			commits(b, writers, func(id, balance int64) error {
				var k, v [8]byte
				binary.BigEndian.PutUint64(k[:], uint64(id))
				binary.BigEndian.PutUint64(v[:], uint64(balance))
				return commit(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(k[:], v[:]) })
			})
		})
		b.Run(fmt.Sprintf("store=memory/writers=%d", writers), func(b *testing.B) {
			m := store.NewMemory()
			commits(b, writers, func(id, balance int64) error {
				return m.Commit([]store.Write{{ID: id, Balance: balance}}, nil)
			})
		})
	}
}

// commits runs b.N single-account commits from writers goroutines.
func commits(b *testing.B, writers int, commit func(id, balance int64) error) {
	b.ReportAllocs()
	run(b, writers, func() func(int64) error {
		return func(i int64) error { return commit(i%durabilityAccounts+1, i) }
	})
}
