package benchmarks

import (
	"strconv"
	"testing"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/cluster"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/store/pgserver/pgtest"
	"github.com/bank/gobank/http/freeport"
)

// BenchmarkClusterCall is the cost of one account call (a read) through a
// two-member Proto.Actor cluster on loopback, for an account the calling
// member hosts itself and for one the other member hosts (a forwarded
// call: a gRPC hop each way), against the same read on a single data
// server's actors in the same run. Sequential (one caller: latency) and
// with 64 callers (throughput).
func BenchmarkClusterCall(b *testing.B) {
	const accounts = 100
	single, err := actors.New(actors.Config{Accounts: accounts, Synchronous: true})
	if err != nil {
		b.Fatal(err)
	}
	defer single.Close()
	st, err := store.OpenPostgres(pgtest.ForTest(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ports, err := freeport.Ports(4) // two cluster ports, two health ports
	if err != nil {
		b.Fatal(err)
	}
	peers := []string{"127.0.0.1:" + strconv.Itoa(ports[2]), "127.0.0.1:" + strconv.Itoa(ports[3])}
	var members []*cluster.Bank
	for i := range 2 {
		m, err := cluster.Join(cluster.Config{Accounts: accounts, InitialBalance: 1000, Store: st,
			Host: "127.0.0.1", Port: ports[i], Provider: cluster.Automanaged(ports[2+i], peers, 200*time.Millisecond)})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		members = append(members, m)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(members[0].Members()) < 2 || len(members[1].Members()) < 2 {
		if time.Now().After(deadline) {
			b.Fatal("members did not see each other within 20s")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded above
	}
	// Sort the accounts by where they live, as seen from member 0.
	var local, remote []int64
	for id := int64(1); id <= accounts; id++ {
		if _, err := members[0].Do(id, actors.Request{Op: actors.OpRead}); err != nil {
			b.Fatal(err)
		}
		if members[0].Placement(id) == members[0].Address() {
			local = append(local, id)
		} else {
			remote = append(remote, id)
		}
	}
	if len(local) == 0 || len(remote) == 0 {
		b.Fatalf("placement put %d accounts here and %d on the other member", len(local), len(remote))
	}
	type target struct {
		name string
		do   func(int64, actors.Request) (actors.Reply, error)
		ids  []int64
	}
	all := make([]int64, accounts)
	for i := range all {
		all[i] = int64(i + 1)
	}
	targets := []target{
		{"single", single.Do, all},
		{"cluster-local", members[0].Do, local},
		{"cluster-forwarded", members[0].Do, remote},
	}
	for _, tg := range targets {
		b.Run(tg.name+"/sequential", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := tg.do(tg.ids[i%len(tg.ids)], actors.Request{Op: actors.OpRead}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tg.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(clients / max(1, runtimeProcs()))
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					if _, err := tg.do(tg.ids[i%len(tg.ids)], actors.Request{Op: actors.OpRead}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
