// Package dataservertest starts a real data server on a loopback port for
// tests of the packages that talk to it.
package dataservertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/http/auth"
	"github.com/bank/gobank/http/dataserver"
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/oplog"
)

// Options configures Start. The zero value gives the original's demo bank:
// ten accounts holding 1000 each.
type Options struct {
	Accounts       int   // default 10
	InitialBalance int64 // default 1000
	// AllowClientTokens starts the compatibility mode, with a bank that
	// allows overdrafts (the original's setSaldo), as dataserver
	// --allow-client-tokens does.
	AllowClientTokens bool
	// Timeout bounds each actor call; zero means the actors' default.
	Timeout time.Duration
	// Store keeps the accounts and idempotency records; nil means a fresh
	// in-memory store.
	Store interface {
		actors.Store
		dataserver.Records
	}
	// EarlyLockRelease passes an account's lock on once its commit is
	// ordered in the store's log (actors.Config.EarlyLockRelease), as the
	// dataserver command does by default; it needs a store that can
	// (store.Pebble).
	EarlyLockRelease bool
	// Wrap, when set, wraps the server's handler: tests use it to fail,
	// delay or garble chosen routes.
	Wrap func(fasthttp.RequestHandler) fasthttp.RequestHandler
	// TracerProvider, when set, traces the server and its actors (see
	// dataserver.Config.TracerProvider).
	TracerProvider trace.TracerProvider
}

// Server is a running data server.
type Server struct {
	URL         string // http://127.0.0.1:PORT
	Addr        string // 127.0.0.1:PORT
	Bank        *actors.Bank
	ServerToken string // a fresh random server credential
	Config      dataserver.Config

	log    *oplog.Log
	logBuf oplog.Buffer
	srv    *dataserver.Server
	stop   sync.Once
	shared bool // the Bank is another Server's: Stop leaves it running
}

// Start starts a data server and stops it when the test ends. Client
// tokens are auth.DefaultClientTokens.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	if opt.Accounts == 0 {
		opt.Accounts = 10
	}
	if opt.InitialBalance == 0 {
		opt.InitialBalance = 1000
	}
	if opt.Store == nil {
		opt.Store = store.NewMemory()
	}
	// Metrics as the dataserver command wires them, so that tests and
	// benchmarks see their cost and can read them on /metrics.
	reg := metrics.NewRegistry()
	bank, err := actors.New(actors.Config{
		Accounts: opt.Accounts, InitialBalance: opt.InitialBalance, Timeout: opt.Timeout,
		Synchronous: true, Store: opt.Store, Observer: dataserver.NewObserver(reg),
		Overdraft:      opt.AllowClientTokens, // the compatibility mode needs it
		TracerProvider: opt.TracerProvider,

		DeadlockDetection: true,
		EarlyLockRelease:  opt.EarlyLockRelease,
	})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(auth.DefaultClientTokens...)
	if err != nil {
		t.Fatal(err)
	}
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	s := &Server{Bank: bank, ServerToken: hex.EncodeToString(secret[:])}
	s.log = oplog.New(&s.logBuf, oplog.Options{})
	s.Config = dataserver.Config{
		Accounts:          bank,
		ClientTokens:      tokens,
		ServerToken:       s.ServerToken,
		AllowClientTokens: opt.AllowClientTokens,
		Log:               s.log,
		Records:           opt.Store,
		Wrap:              opt.Wrap,
		Metrics:           reg,
		TracerProvider:    opt.TracerProvider,
	}
	ds, err := dataserver.New(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = ds
	s.serve(t)
	return s
}

// Second starts another data server in front of the same accounts (the
// same Bank, credential and idempotency records), as a second data server
// of one bank would be, and stops it when the test ends. Its Stop stops
// its HTTP server only: the accounts stay with s.
func (s *Server) Second(t testing.TB) *Server {
	t.Helper()
	s2 := &Server{Bank: s.Bank, ServerToken: s.ServerToken, shared: true}
	s2.log = oplog.New(&s2.logBuf, oplog.Options{})
	s2.Config = s.Config
	s2.Config.Log = s2.log
	s2.Config.Metrics = metrics.NewRegistry()
	ds, err := dataserver.New(s2.Config)
	if err != nil {
		t.Fatal(err)
	}
	s2.srv = ds
	s2.serve(t)
	return s2
}

// serve listens on a loopback port and serves until Stop.
func (s *Server) serve(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	s.URL = "http://" + s.Addr
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(s.Stop)
	// Answering a request proves Serve has registered its listener: a
	// Shutdown before that would return at once and leave it serving.
	if status, _, err := fasthttp.GetTimeout(nil, s.URL+"/status", 10*time.Second); err != nil || status != fasthttp.StatusOK {
		t.Fatalf("data server not serving: %d, %v", status, err)
	}
}

// Stop shuts the server down, as if its process had gone away. Later
// requests are refused at connect. It is safe to call more than once.
func (s *Server) Stop() {
	s.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(ctx)
		if !s.shared {
			s.Bank.Close()
		}
		_ = s.log.Close()
	})
}

// StopHTTP shuts the HTTP server down, as if its process had gone away,
// but leaves the accounts running for the servers that share them
// (Second). Later requests are refused at connect.
func (s *Server) StopHTTP() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// LogText flushes the operation log and returns everything written so far.
func (s *Server) LogText() string {
	_ = s.log.Flush()
	return s.logBuf.String()
}

// Balances returns every account's balance and lock holder ("" when free),
// read through the actors.
func (s *Server) Balances(t testing.TB) (balances []int64, holders []string) {
	t.Helper()
	for id := int64(1); id <= int64(s.Bank.Len()); id++ {
		r, err := s.Bank.Do(id, actors.Request{Op: actors.OpRead})
		if err != nil {
			t.Fatalf("reading account %d: %v", id, err)
		}
		balances = append(balances, r.Balance)
		holders = append(holders, r.Holder)
	}
	return balances, holders
}

// Waiting returns how many lock requests are queued on account id.
func (s *Server) Waiting(t testing.TB, id int64) int {
	t.Helper()
	r, err := s.Bank.Do(id, actors.Request{Op: actors.OpRead})
	if err != nil {
		t.Fatalf("reading account %d: %v", id, err)
	}
	return r.Waiting
}
