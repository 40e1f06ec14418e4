// Package business is the bank's business server: it serves the public
// routes (/deposito, /saque, /saldo, /transferencia) of the original bank,
// and POST /transferencias, a batch of transfers (see MaxBatch), and
// applies them through a data server (package dataserver) over HTTP, with
// a dataclient.Client.
//
// Every operation that writes locks the accounts it touches on the data
// server, all of them before reading any, in ascending account order
// (Config.LockOrder; OrderRequest locks in the request's order instead, to
// show the deadlocks that ordering prevents); it then checks funds and
// overflow and writes every new balance with one /commit, under the
// grants' fences, which also releases the locks: a transfer's debit and
// credit are applied together or not at all, whenever the business server
// dies. A lock held by someone else is waited for as Config.LockMode says,
// for up to LockWait in all: queued on the data server (ModeWait, its wait
// parameter; against a data server that fails fast like the original,
// retried), retried with jittered exponential backoff (ModeRetry), or not
// at all (ModeFailFast). A lock grant carries the balance (sparing a
// read), a lease (LockTTL) and a fence that the commit (and every unlock)
// repeats, so that a business server whose lease ran out cannot overwrite
// the next holder's work.
//
// A lock taken is released on every path: refusal, data server error,
// timeout, panic — including after a commit whose answer was lost, which
// may or may not have released it (an unlock refused as stale then means
// it did). Requests served by one business server on one account are
// serialized locally too, because the data server's locks are re-entrant
// per id_negoc.
//
// Requests with an Idempotency-Key header are applied at most once however
// often they are repeated (see wire.HeaderIdempotencyKey and idem.go): the
// outcome is kept on the data server under the key, in the same durable
// batch as the balances.
//
// The data server must be gobank's, with /commit and /idem. Against a data
// server without them (the original: its grants carry no fence, and
// /commit answers 404), requests without a key still work, the old way:
// setSaldo per account, a failed write undone by writing the old balance
// back — not atomic, so a business server that dies between a transfer's
// two writes loses the debit; requests with a key are refused (501).
//
// Status codes of the public routes (the body is always JSON, with
// "error_code" and "error" on refusal, see wire.AppendError):
//
//	200 success; for a batch, each transfer's result, applied or refused
//	400 SAME_ACCOUNT         transfer from an account to itself
//	400 BAD_REQUEST          a malformed request; a repeated token header; an Idempotency-Key that
//	                         is empty, repeated, over 128 bytes or not printable ASCII; a batch
//	                         that is not a JSON array of 1 to 8190 transfers, or has an Idempotency-Key
//	401 UNAUTHORIZED         token missing, or refused by the data server's /autentica
//	403 LOCKED_ACCOUNT       the account stayed locked (by another business server, or by another
//	                         request of this one) past LockWait; at once in ModeFailFast
//	404 NOT_FOUND            no such account
//	404 INVALID_ACCOUNT      account not a positive integer ("0", "-5", "abc", "+5", "1.5", ...)
//	404 INVALID_VALUE        valor not a positive integer that fits in int64
//	404 OVERFLOW             a credit whose result would not fit in int64
//	404 BAD_REQUEST          no such route (exact paths only: no redirects)
//	405 BAD_REQUEST          a method other than GET or POST (POST only on /transferencias)
//	409 INSUFFICIENT_FUNDS   a withdrawal or transfer that would leave a negative balance
//	413 BAD_REQUEST          a request body over MaxBody (2 MiB: a batch's; the other routes ignore the body)
//	422 KEY_REUSED           an Idempotency-Key already used for another request; nothing applied
//	431 BAD_REQUEST          request header block (request line included) over 8 KiB
//	500 INTERNAL             a bug; the operation may or may not have been applied
//	501 UNAVAILABLE          an Idempotency-Key, but the data server keeps no idempotency records
//	503 UNAVAILABLE          data server down, too slow, failing, refusing our credential, or the
//	                         lock's lease ran out mid-operation (STALE_FENCE: the commit was
//	                         refused, nothing changed); or the commit's answer was lost, so the
//	                         operation may or may not have been applied (ErrOutcomeUnknown: repeat
//	                         it with the same Idempotency-Key to learn which)
//
// 403 and 404 follow the original bank's documentation, so that its
// clients keep working; the other codes are this project's.
package business

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/dataclient"
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/oplog"
	"github.com/bank/gobank/http/tracing"
	"github.com/bank/gobank/http/wire"
)

// Defaults of Config.
const (
	DefaultLockWait     = 2 * time.Second
	DefaultDataTimeout  = dataclient.DefaultTimeout
	DefaultAuthCacheTTL = 5 * time.Second
	// DefaultCoalesce is the businessserver command's --coalesce: how
	// many concurrent operations one transaction may carry (Config.Coalesce).
	DefaultCoalesce = 64
)

// LockMode says how an operation takes a lock that another business server
// holds: the teller's modes.
type LockMode = teller.LockMode

// Lock modes (see teller.LockMode).
const (
	// ModeWait queues on the data server (FIFO, its wait parameter) for up
	// to LockWait; against a data server that fails fast (the original) it
	// retries as ModeRetry does. The default.
	ModeWait = teller.ModeWait
	// ModeRetry sends fail-fast getLocks, retried with jittered exponential
	// backoff for up to LockWait.
	ModeRetry = teller.ModeRetry
	// ModeFailFast is the original's: one attempt, 403 at once when the
	// account is locked, by another business server or by another request
	// of this one.
	ModeFailFast = teller.ModeFailFast
	// ModeWaitDie, ModeWoundWait, ModeDetect and ModeOCC are the
	// concurrency-control schemes of teller.LockMode: transactions named
	// by a timestamp, aborted and retried as the scheme says, for up to
	// LockWait. They need this project's data server.
	ModeWaitDie   = teller.ModeWaitDie
	ModeWoundWait = teller.ModeWoundWait
	ModeDetect    = teller.ModeDetect
	ModeOCC       = teller.ModeOCC
)

// LockOrder says in which order an operation locks its accounts: the
// teller's orders.
type LockOrder = teller.LockOrder

// Lock orders (see teller.LockOrder).
const (
	// OrderAscending locks the lowest account number first: two transfers
	// can never each hold the lock the other waits for. The default.
	OrderAscending = teller.OrderAscending
	// OrderRequest locks in the order of the request (conta_orig, then
	// conta_dest), as the original did: opposite transfers between the same
	// accounts can each hold one lock and wait for the other until LockWait
	// runs out (403), which shows why the order matters.
	OrderRequest = teller.OrderRequest
)

// Config configures a Server.
type Config struct {
	// DataURL is the data server's URL, e.g. "http://localhost:5000", or
	// the URLs of several data servers of the bank (in front of the same
	// accounts), comma-separated: calls go to the first, and fail over to
	// the next when one surely was not applied (see dataclient.Client). Required.
	DataURL string
	// ServerToken is the credential the data server requires on its data
	// routes. Required.
	ServerToken string
	// ID is this server's id_negoc, HOST:PORT as clients reach it. It names
	// the lock holder on the data server, so it must be unique among the
	// business servers of one data server. Required.
	ID string
	// LockWait bounds how long an operation waits for (ModeWait) or
	// retries (ModeRetry) the locks it needs, held by another business
	// server or by another request of this one, before answering 403. It
	// covers all the locks of an operation together. Zero means 2s;
	// ModeFailFast ignores it.
	LockWait time.Duration
	// LockMode says how a lock held by someone else is waited for. Zero
	// means ModeWait.
	LockMode LockMode
	// LockOrder says in which order an operation locks its accounts. Zero
	// means OrderAscending.
	LockOrder LockOrder
	// Coalesce, above 1, runs up to that many deposits, withdrawals and
	// transfers that arrive at once (without an Idempotency-Key) as one
	// transaction on the data server: one /getLocks and one /commit for
	// all of them, each answered its own outcome (teller.Config.Coalesce).
	// LockMode wait only. Zero: every operation alone; the
	// businessserver command's --coalesce defaults to DefaultCoalesce.
	Coalesce int
	// LockTTL is the lease asked for with every lock grant (the getLock ttl
	// parameter): a business server that dies holding a lock blocks the
	// account this long at most, and one paused longer loses the lock (its
	// writes are then refused with STALE_FENCE, answered 503). Zero sends
	// no ttl, so the data server's default lease applies. A transfer's
	// first lease runs while it waits for its second lock: keep LockTTL
	// well above LockWait plus a few DataTimeouts.
	LockTTL time.Duration
	// DataTimeout bounds each call to the data server. Zero means 2s.
	DataTimeout time.Duration
	// RequestTimeout bounds the calls an operation makes before it gives up
	// (unlocks and rollbacks get their own DataTimeout each). Zero means
	// LockWait + 6*DataTimeout.
	RequestTimeout time.Duration
	// AuthCacheTTL is how long a client token the data server accepted is
	// trusted without asking again (see authCache: only SHA-256 digests of
	// tokens are kept, never the tokens). Zero means 5s; negative disables
	// the cache, so every request calls /autentica.
	AuthCacheTTL time.Duration
	// MaxDataConns bounds the connections to the data server. Zero means 512.
	MaxDataConns int
	// Log receives one line per request to an operation route, refusals
	// included; nil logs nothing.
	Log *oplog.Log
	// Logger receives errors an operator must see; nil discards them. It
	// never receives tokens.
	Logger *slog.Logger
	// TestHook, when set, is called at named points of every operation
	// that writes (see Stages). For fault-injection tests only (it may
	// block to pause the operation there, panic, or kill the process);
	// production code leaves it nil.
	TestHook func(stage string)
	// Wrap, when set, wraps the handler that Serve uses (not Handler's
	// result): tests inject faults with it. Production code leaves it nil.
	Wrap func(fasthttp.RequestHandler) fasthttp.RequestHandler
	// Metrics is the registry /metrics serves; nil: the server makes its
	// own.
	Metrics *metrics.Registry
	// TracerProvider, when set, traces every operation route: a server
	// span (the child of the request's W3C traceparent) with a client span
	// per data server call, whose traceparent goes along. Nil: no spans,
	// at no cost.
	TracerProvider trace.TracerProvider
}

// Stages returns the names of the points at which Config.TestHook is
// called, in order: teller.Stages.
func Stages() []string { return teller.Stages() }

// Server is a business server. Create it with New.
type Server struct {
	cfg     Config
	data    *dataclient.Client
	teller  *teller.Teller
	auth    *authCache
	logger  *slog.Logger
	handler fasthttp.RequestHandler
	server  *fasthttp.Server
	reg     *metrics.Registry
	http    *metrics.HTTP
	tracer  trace.Tracer // nil: tracing off

	// hook, when set by tests, runs at named points of an operation.
	hook atomic.Pointer[func(stage string)]
	// originalHint is set once the server has logged how to work with the
	// original's data server, which refuses our credential.
	originalHint atomic.Bool
}

// New checks cfg and builds a Server. It does not contact the data server.
func New(cfg Config) (*Server, error) {
	if cfg.ID == "" {
		return nil, errors.New("business: no id_negoc (HOST:PORT)")
	}
	if cfg.LockWait < 0 {
		return nil, fmt.Errorf("business: lock wait %v: must not be negative (use ModeFailFast for no wait)", cfg.LockWait)
	}
	if cfg.LockWait == 0 {
		cfg.LockWait = DefaultLockWait
	}
	if cfg.LockTTL < 0 {
		return nil, fmt.Errorf("business: lock ttl %v: must not be negative (0 leaves the lease to the data server)", cfg.LockTTL)
	}
	if cfg.DataTimeout <= 0 {
		cfg.DataTimeout = DefaultDataTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = cfg.LockWait + 6*cfg.DataTimeout
	}
	if cfg.AuthCacheTTL == 0 {
		cfg.AuthCacheTTL = DefaultAuthCacheTTL
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewRegistry()
	}
	data, err := dataclient.New(dataclient.Config{
		Metrics:     cfg.Metrics,
		URL:         cfg.DataURL,
		ServerToken: cfg.ServerToken,
		ID:          cfg.ID,
		Timeout:     cfg.DataTimeout,
		MaxConns:    cfg.MaxDataConns,
		LockTTL:     cfg.LockTTL,
		Logger:      cfg.Logger,

		TracerProvider: cfg.TracerProvider,
	})
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:    cfg,
		data:   data,
		auth:   newAuthCache(cfg.AuthCacheTTL),
		logger: logger,
		reg:    cfg.Metrics,
		http:   metrics.NewHTTP(cfg.Metrics, "gobank_business", func(c int) string { return teller.Code(c).String() }),
		tracer: tracing.Tracer(cfg.TracerProvider),
	}
	if cfg.TestHook != nil {
		s.hook.Store(&cfg.TestHook)
	}
	if s.teller, err = teller.New(teller.Config{
		Accounts:      data,
		Holder:        cfg.ID,
		Mode:          cfg.LockMode,
		Order:         cfg.LockOrder,
		Coalesce:      cfg.Coalesce,
		LockWait:      cfg.LockWait,
		LockTTL:       cfg.LockTTL,
		UnlockTimeout: cfg.DataTimeout,
		Logger:        logger,
		At:            s.at,
	}); err != nil {
		return nil, fmt.Errorf("business: %w", err) // the lock mode and order are the teller's to check
	}
	s.registerTransactionMetrics()
	s.handler = s.newHandler()
	h := s.handler
	if cfg.Wrap != nil {
		h = cfg.Wrap(h)
	}
	s.server = wire.NewServer("gobank-business", h, MaxBody, logger) // a batch's; the other routes' parameters are in the path
	return s, nil
}

// at runs the test hook, if any, at a named point of an operation.
func (s *Server) at(stage string) {
	if h := s.hook.Load(); h != nil {
		(*h)(stage)
	}
}

// Handler returns the routing handler, for tests and embedding.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handler }

// registerTransactionMetrics exposes the teller's counts of the
// operations that write: how many ended, their attempts, and the aborts of
// the transactional lock modes by cause.
func (s *Server) registerTransactionMetrics() {
	stat := func(f func(teller.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(s.teller.Stats())) }
	}
	s.reg.CounterFunc("gobank_business_transactions_total",
		"Operations that write, ended: committed, refused by a rule, or given up.", "", stat(func(st teller.Stats) uint64 { return st.Done }))
	s.reg.CounterFunc("gobank_business_transaction_attempts_total",
		"Attempts of those operations: attempts per transaction is the work wasted by aborts.", "", stat(func(st teller.Stats) uint64 { return st.Attempts }))
	s.reg.CounterFunc("gobank_business_transaction_timeouts_total",
		"Operations given up at --lock-wait (403 LOCKED_ACCOUNT).", "", stat(func(st teller.Stats) uint64 { return st.Timeouts }))
	for _, c := range []struct {
		cause string
		n     func(teller.Stats) uint64
	}{
		{"died", func(st teller.Stats) uint64 { return st.Died }},
		{"wounded", func(st teller.Stats) uint64 { return st.Wounded }},
		{"deadlock", func(st teller.Stats) uint64 { return st.Deadlocks }},
		{"validation", func(st teller.Stats) uint64 { return st.Validations }},
	} {
		s.reg.CounterFunc("gobank_business_transaction_aborts_total",
			"Aborted attempts of the transactional lock modes, retried, by cause.", metrics.Labels("cause", c.cause), stat(c.n))
	}
}

// Stats returns the counts of the server's operations that write (see
// teller.Stats).
func (s *Server) Stats() teller.Stats { return s.teller.Stats() }

// Metrics returns the registry the server's metrics are kept in.
func (s *Server) Metrics() *metrics.Registry { return s.reg }

// Data returns the server's data server client.
func (s *Server) Data() *dataclient.Client { return s.data }

// ID returns the server's id_negoc.
func (s *Server) ID() string { return s.cfg.ID }

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.server.Serve(ln) }

// Shutdown stops accepting connections and waits, until ctx ends, for the
// requests in flight to finish (they release their locks on the way out).
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.server.ShutdownWithContext(ctx)
	s.data.CloseIdleConnections()
	return err
}

// authenticate checks a client token through the data server's
// /autentica, trusting a positive answer for AuthCacheTTL. The cache key is
// the token's SHA-256; the token itself is neither stored nor logged.
func (s *Server) authenticate(ctx context.Context, token []byte) error {
	if len(token) == 0 {
		return &dataclient.DataError{Route: wire.RouteAutentica, Kind: ErrUnauthorized, Reason: "missing token"}
	}
	key := sha256.Sum256(token)
	if s.auth.ok(key, time.Now()) {
		return nil
	}
	if err := s.data.Authenticate(ctx, string(token)); err != nil {
		return err
	}
	s.auth.put(key, time.Now())
	return nil
}
