//go:build !race

// Allocation counts are meaningless under the race detector, where
// sync.Pool drops items at random: this file is left out of -race builds.

package dataserver_test

import (
	"io"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/http/auth"
	"github.com/bank/gobank/http/dataserver"
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/oplog"
)

// maxHotPathAllocs is the allocations per request the data server's hot
// path (getSaldo through an actor, with metrics and the operation log) is
// held to. Lower it when you lower the real figure.
const maxHotPathAllocs = 1

// hotPath returns a call of the data server's handler, as the server
// would make it, for a getSaldo parsed into ctx.
func hotPath(t testing.TB) (call func(), ctx *fasthttp.RequestCtx) {
	reg := metrics.NewRegistry()
	st := store.NewMemory()
	bank, err := actors.New(actors.Config{Accounts: 100, InitialBalance: 1000, Synchronous: true, Store: st,
		Observer: dataserver.NewObserver(reg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bank.Close)
	tokens, _ := auth.NewTokens(auth.DefaultClientTokens...)
	log := oplog.New(io.Discard, oplog.Options{})
	t.Cleanup(func() { _ = log.Close() })
	srv, err := dataserver.New(dataserver.Config{Accounts: bank, ClientTokens: tokens, ServerToken: "secret-token",
		Log: log, Records: st, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	ctx = &fasthttp.RequestCtx{}
	ctx.Request.SetRequestURI("/getSaldo?id_negoc=host:5001&conta=42")
	ctx.Request.Header.Set("token", "secret-token")
	return func() {
		ctx.Response.Reset()
		h(ctx)
	}, ctx
}

// BenchmarkGetSaldoHandler is the data server's hot path in-process (no
// network): routing, metrics, credential check, the actor round trip, the
// operation log and the answer.
//
//	go test -run '^$' -bench GetSaldoHandler -cpuprofile cpu.out ./http/dataserver/
func BenchmarkGetSaldoHandler(b *testing.B) {
	call, _ := hotPath(b)
	b.ReportAllocs()
	for b.Loop() {
		call()
	}
}

// TestHotPathAllocs calls the data server's handler in-process, with a
// request parsed into a fasthttp.RequestCtx as the server would, and
// counts allocations per getSaldo (durable store, metrics and oplog as in
// production).
func TestHotPathAllocs(t *testing.T) {
	call, ctx := hotPath(t)
	call()
	if got := string(ctx.Response.Body()); ctx.Response.StatusCode() != 200 || got != `{"saldo":1000}` {
		t.Fatalf("getSaldo: %d %s", ctx.Response.StatusCode(), got)
	}
	n := testing.AllocsPerRun(2000, call)
	t.Logf("%v allocations per getSaldo", n)
	if n > maxHotPathAllocs {
		t.Errorf("%v allocations per getSaldo, want at most %d", n, maxHotPathAllocs)
	}
}
