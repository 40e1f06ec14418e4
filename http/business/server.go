// Package business is the bank's business server: it serves the public
// routes (/deposito, /saque, /saldo, /transferencia) of the original bank
// and applies them through a data server (package dataserver) over HTTP,
// with a dataclient.Client.
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
//	200 success
//	400 SAME_ACCOUNT         transfer from an account to itself
//	400 BAD_REQUEST          a malformed request; a repeated token header; an Idempotency-Key that
//	                         is empty, repeated, over 128 bytes or not printable ASCII
//	401 UNAUTHORIZED         token missing, or refused by the data server's /autentica
//	403 LOCKED_ACCOUNT       the account stayed locked (by another business server, or by another
//	                         request of this one) past LockWait; at once in ModeFailFast
//	404 NOT_FOUND            no such account
//	404 INVALID_ACCOUNT      account not a positive integer ("0", "-5", "abc", "+5", "1.5", ...)
//	404 INVALID_VALUE        valor not a positive integer that fits in int64
//	404 OVERFLOW             a credit whose result would not fit in int64
//	404 BAD_REQUEST          no such route (exact paths only: no redirects)
//	405 BAD_REQUEST          a method other than GET or POST
//	409 INSUFFICIENT_FUNDS   a withdrawal or transfer that would leave a negative balance
//	413 BAD_REQUEST          a request body over 4 KiB (every parameter is in the path)
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
	"runtime/debug"
	"strconv"
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

// Errors of the business server: the project's domain errors (package
// teller) and the data client's, named here for this package's callers.
var (
	ErrLocked         = teller.ErrLocked         // another id_negoc holds the account's lock
	ErrInvalidAccount = teller.ErrInvalidAccount // the data server did not accept the account number
	ErrInvalidValue   = teller.ErrInvalidValue   // the data server did not accept the value, e.g. a negative balance
	ErrNotFound       = teller.ErrNotFound       // no such account
	// ErrStaleFence: the lock grant named by a write or unlock is no longer
	// in force (its lease ran out): the call was refused and the lock is lost.
	ErrStaleFence   = teller.ErrStaleFence
	ErrUnauthorized = teller.ErrUnauthorized // the data server refused the client's token at /autentica
	// ErrCredentialRefused: the data server refused this business server's
	// own credential (see dataclient.ErrCredentialRefused).
	ErrCredentialRefused = dataclient.ErrCredentialRefused
	// ErrOriginalCredential: the same, from the original data server, which
	// accepts only its own client tokens (see dataclient.ErrOriginalCredential).
	ErrOriginalCredential = dataclient.ErrOriginalCredential
	ErrUnavailable        = teller.ErrUnavailable // unreachable, no answer in time, 5xx, or an answer outside the contract
	// ErrUnsupported: the data server lacks /getLocks, /commit or /idem
	// (HTTP 404): it is the original implementation, or an older version
	// of ours. Nothing was applied.
	ErrUnsupported = teller.ErrUnsupported
	// ErrInsufficientFunds refuses a withdrawal or transfer that would leave
	// a negative balance. Nothing was changed.
	ErrInsufficientFunds = teller.ErrInsufficientFunds
	// ErrOverflow refuses a credit whose resulting balance would not fit in
	// int64. Nothing was changed.
	ErrOverflow = teller.ErrOverflow
	// ErrSameAccount refuses a transfer from an account to itself.
	ErrSameAccount = teller.ErrSameAccount
	// errPanic reports a recovered panic.
	errPanic = errors.New("internal error")
)

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
	switch cfg.LockMode {
	case "":
		cfg.LockMode = ModeWait
	case ModeWait, ModeRetry, ModeFailFast:
	default:
		return nil, fmt.Errorf("business: lock mode %q: want %q, %q or %q", cfg.LockMode, ModeWait, ModeRetry, ModeFailFast)
	}
	switch cfg.LockOrder {
	case "":
		cfg.LockOrder = OrderAscending
	case OrderAscending, OrderRequest:
	default:
		return nil, fmt.Errorf("business: lock order %q: want %q or %q", cfg.LockOrder, OrderAscending, OrderRequest)
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
		LockWait:      cfg.LockWait,
		LockTTL:       cfg.LockTTL,
		UnlockTimeout: cfg.DataTimeout,
		Logger:        logger,
		At:            s.at,
	}); err != nil {
		return nil, err
	}
	s.handler = s.newHandler()
	h := s.handler
	if cfg.Wrap != nil {
		h = cfg.Wrap(h)
	}
	s.server = wire.NewServer("gobank-business", h, 4<<10, logger) // every parameter is in the path
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

// route describes one public operation route.
type route struct {
	path   string   // as routed, e.g. /saldo/{conta}
	name   string   // as logged
	params []string // path parameters, in log order
	writes bool     // an operation that changes balances: an Idempotency-Key applies
	// kind is the teller's operation, its arguments the route's parameters
	// in order; encode appends the success answer made of its results.
	kind   teller.Kind
	encode func(dst []byte, args [3]int64, a, b int64) []byte
}

// Path parameter names.
const (
	pConta     = "conta"
	pContaOrig = "conta_orig"
	pContaDest = "conta_dest"
	pValor     = "valor"
)

var routes = []struct {
	path string
	rt   route
}{
	{"/deposito/{" + pConta + "}/{" + pValor + "}", route{name: "deposito", params: []string{pConta, pValor}, writes: true,
		kind: teller.Deposit, encode: encodeMovement}},
	{"/saque/{" + pConta + "}/{" + pValor + "}", route{name: "saque", params: []string{pConta, pValor}, writes: true,
		kind: teller.Withdraw, encode: encodeMovement}},
	{"/saldo/{" + pConta + "}", route{name: "saldo", params: []string{pConta},
		kind: teller.Balance, encode: encodeBalance}},
	{"/transferencia/{" + pContaOrig + "}/{" + pContaDest + "}/{" + pValor + "}",
		route{name: "transferencia", params: []string{pContaOrig, pContaDest, pValor}, writes: true,
			kind: teller.Transfer, encode: encodeTransfer}},
}

func (s *Server) newHandler() fasthttp.RequestHandler {
	// serve recovers its own panics; the router's handler is the backstop.
	r := metrics.Instrument(wire.NewRouter(s.logger), s.http)
	r.GET("/metrics", s.reg.Handler())
	for _, method := range []string{fasthttp.MethodGet, fasthttp.MethodPost} {
		r.Handle(method, "/status", status)
		for _, x := range routes {
			rt := x.rt
			rt.path = x.path
			r.Handle(method, x.path, func(ctx *fasthttp.RequestCtx) { s.serve(ctx, &rt) })
		}
	}
	return r.Handler
}

func status(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("business server: ok\n")
}

// serve runs one operation route: it logs one line whatever the outcome,
// with the parameters and, on refusal, the error's name last (REPLAYED for
// an outcome answered again under its Idempotency-Key). Nothing of ctx is
// kept once it returns: the parameters are parsed into integers, and log
// fields are copied into the entry at once.
func (s *Server) serve(ctx *fasthttp.RequestCtx, rt *route) {
	entry := s.cfg.Log.Entry(clientIP(ctx), rt.name)
	var args [3]int64
	var bad error
	for i, p := range rt.params {
		raw, _ := ctx.UserValue(p).(string)
		if v, ok := parsePositive(raw); ok {
			args[i] = v
			entry = entry.Int(v)
			continue
		}
		entry = entry.Str(clip(raw))
		if bad == nil {
			if p == pValor {
				bad = ErrInvalidValue
			} else {
				bad = ErrInvalidAccount
			}
		}
	}
	var buf [256]byte
	parent := context.Background()
	var span trace.Span
	if s.tracer != nil {
		parent, span = s.startSpan(ctx, rt, args, bad)
	}
	r := s.run(parent, ctx, rt, args, bad, buf[:0])
	if span != nil {
		s.endSpan(span, &r)
	}
	switch {
	case r.replayed:
		entry.Str("REPLAYED").Done()
		ctx.Response.Header.Set(wire.HeaderReplayed, "true")
	case r.code != 0:
		entry.Str(r.code.String()).Done()
	default:
		entry.Done()
	}
	if r.status >= 500 {
		s.logger.Warn("operation failed", "route", rt.name, "client", ctx.RemoteIP().String(), "err", r.err)
	}
	if errors.Is(r.err, ErrOriginalCredential) && s.originalHint.CompareAndSwap(false, true) {
		s.logger.Error("the data server is of the original implementation, which refuses this business server's "+
			"credential on every data route: restart this business server with BANK_SERVER_TOKEN set to one of "+
			"the original's client tokens (its TOKENS list, e.g. the token its clients use); every operation fails until then",
			"id_negoc", s.cfg.ID)
	}
	ctx.SetStatusCode(r.status)
	wire.WriteJSON(ctx, r.body)
	code := r.code
	if r.replayed {
		code, _ = wire.BodyCode(r.body) // a refusal answered again counts as one
	}
	if code != 0 {
		wire.SetRefusal(ctx, code)
	}
}

// reply is an operation's answer.
type reply struct {
	status   int
	body     []byte      // JSON
	code     teller.Code // a refusal's code, for the log; 0 on success and for a replay
	replayed bool        // an outcome kept under the request's Idempotency-Key, answered again
	err      error       // the failure, for the error log
}

// failure is the answer to err (see classify), appended to dst.
func failure(err error, dst []byte) reply {
	st, code, msg := classify(err)
	return reply{status: st, code: code, body: wire.AppendError(dst[:0], code, msg), err: err}
}

// errRepeatedToken refuses (400) a request carrying the token header more
// than once, as a repeated Idempotency-Key is.
var errRepeatedToken = errors.New(wire.MsgRepeatedToken)

// run authenticates, validates and runs the operation, turning a panic
// into errPanic. The operation's own defers have released its locks (and,
// without /commit, rolled back its writes) by the time the panic reaches
// here.
//
// A request to deposito, saque or transferencia with an Idempotency-Key
// header is answered as its first attempt was, if there was one (see
// keyed); saldo accepts the header and ignores it. A request refused
// before the key is looked up (bad token, bad key, bad parameters) is
// neither kept nor looked up: a repetition is refused the same way.
func (s *Server) run(parent context.Context, rc *fasthttp.RequestCtx, rt *route, args [3]int64, bad error, dst []byte) (r reply) {
	defer func() {
		if p := recover(); p != nil {
			s.logger.Error("panic in operation", "route", rt.name, "panic", p, "stack", string(debug.Stack()))
			r = failure(errPanic, dst)
		}
	}()
	ctx, cancel := context.WithTimeout(parent, s.cfg.RequestTimeout)
	defer cancel()
	token, ok := wire.Token(&rc.Request.Header)
	if !ok {
		return failure(errRepeatedToken, dst) // before the data server sees either
	}
	if err := s.authenticate(ctx, token); err != nil {
		return failure(err, dst)
	}
	key, err := idempotencyKey(&rc.Request.Header)
	if err != nil {
		return failure(err, dst)
	}
	if bad != nil {
		return failure(bad, dst)
	}
	op := rt.op(args)
	if key == nil || !rt.writes {
		res, err := s.teller.Run(ctx, op)
		if err != nil {
			return failure(err, dst)
		}
		return reply{status: fasthttp.StatusOK, body: rt.encode(dst, args, res.A, res.B)}
	}
	a, err := s.teller.RunKeyed(ctx, op, newKeyed(token, key, rt, args, dst))
	switch {
	case err != nil:
		return failure(err, dst)
	case a.Err != nil: // a refusal, kept under the key
		r := failure(a.Err, dst)
		r.body = a.Body
		return r
	}
	return reply{status: a.Status, body: a.Body, replayed: a.Replayed}
}

// op is the teller's operation of the route's parameters.
func (rt *route) op(args [3]int64) teller.Op {
	switch rt.kind {
	case teller.Transfer:
		return teller.Op{Kind: rt.kind, A: args[0], B: args[1], Amount: args[2]}
	case teller.Balance:
		return teller.Op{Kind: rt.kind, A: args[0]}
	}
	return teller.Op{Kind: rt.kind, A: args[0], Amount: args[1]}
}

// encodeMovement: {"conta":C,"valor":V,"saldo":NEW}.
func encodeMovement(dst []byte, args [3]int64, saldo, _ int64) []byte {
	return appendMovement(dst, args[0], args[1], saldo)
}

// encodeBalance: {"conta":C,"saldo":N}.
func encodeBalance(dst []byte, args [3]int64, saldo, _ int64) []byte {
	dst = append(dst, `{"conta":`...)
	dst = strconv.AppendInt(dst, args[0], 10)
	dst = append(dst, `,"saldo":`...)
	dst = strconv.AppendInt(dst, saldo, 10)
	return append(dst, '}')
}

// encodeTransfer: {"conta_orig":A,"conta_dest":B,"valor":V,"saldo_orig":X,"saldo_dest":Y}.
func encodeTransfer(dst []byte, args [3]int64, orig, dest int64) []byte {
	dst = append(dst, `{"conta_orig":`...)
	dst = strconv.AppendInt(dst, args[0], 10)
	dst = append(dst, `,"conta_dest":`...)
	dst = strconv.AppendInt(dst, args[1], 10)
	dst = append(dst, `,"valor":`...)
	dst = strconv.AppendInt(dst, args[2], 10)
	dst = append(dst, `,"saldo_orig":`...)
	dst = strconv.AppendInt(dst, orig, 10)
	dst = append(dst, `,"saldo_dest":`...)
	dst = strconv.AppendInt(dst, dest, 10)
	return append(dst, '}')
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

func appendMovement(dst []byte, conta, valor, saldo int64) []byte {
	dst = append(dst, `{"conta":`...)
	dst = strconv.AppendInt(dst, conta, 10)
	dst = append(dst, `,"valor":`...)
	dst = strconv.AppendInt(dst, valor, 10)
	dst = append(dst, `,"saldo":`...)
	dst = strconv.AppendInt(dst, saldo, 10)
	return append(dst, '}')
}

// classify maps an operation's error to the answer's status, code and
// message. Messages never name the data server's address or a credential.
func classify(err error) (status int, code teller.Code, msg string) {
	var reused *teller.KeyReusedError
	var unknown *teller.OutcomeUnknownError
	var notKept *teller.RefusalNotKeptError
	switch {
	case errors.As(err, &reused):
		return fasthttp.StatusUnprocessableEntity, teller.KeyReused,
			"this Idempotency-Key was used for another request (" + reused.Fingerprint + "); use a new key for a new request"
	case errors.Is(err, errBadKey), errors.Is(err, errRepeatedToken):
		return fasthttp.StatusBadRequest, teller.BadRequest, err.Error()
	case errors.Is(err, teller.ErrNoRecords):
		return fasthttp.StatusNotImplemented, teller.Unavailable,
			"this bank's data server keeps no idempotency records (it is not gobank's data server): send the request without an Idempotency-Key"
	case errors.As(err, &unknown):
		return fasthttp.StatusServiceUnavailable, teller.Unavailable, unknownMessage(unknown.Err)
	case errors.As(err, &notKept):
		return fasthttp.StatusServiceUnavailable, teller.Unavailable,
			"the outcome could not be recorded under the Idempotency-Key; nothing changed, try again"
	}
	for _, a := range errAnswers {
		if errors.Is(err, a.err) {
			return a.status, a.code, a.msg
		}
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnsupported) {
		msg := "data server unavailable"
		var de *dataclient.DataError
		if errors.As(err, &de) && de.Reason != "" {
			msg = de.Reason
		}
		return fasthttp.StatusServiceUnavailable, teller.Unavailable, msg + "; the operation was not applied or was rolled back"
	}
	return fasthttp.StatusInternalServerError, teller.Internal,
		"internal error; the operation may not have completed: read the balance, or repeat the request with the same Idempotency-Key, before trying again"
}

// errAnswer is how the business server answers a domain error.
type errAnswer struct {
	err    error
	status int
	code   teller.Code
	msg    string
}

// errAnswers is the business server's one table from its errors to its
// answers' status, error_code and message (classify handles the errors
// whose message depends on the error's details first). The Go client's
// side of the same boundary is package client's codes table. The first
// row that matches wins (ErrOriginalCredential wraps ErrCredentialRefused),
// and ErrUnavailable, whose message is the DataError's reason, comes last.
var errAnswers = []errAnswer{
	{ErrUnauthorized, fasthttp.StatusUnauthorized, teller.Unauthorized, "missing or unknown token"},
	{ErrOriginalCredential, fasthttp.StatusServiceUnavailable, teller.Unavailable,
		"the data server is of the original implementation and refused this business server's credential: " +
			"it accepts only its own client tokens, so the operator must start this business server with " +
			"BANK_SERVER_TOKEN set to one of them; nothing was applied"},
	{ErrCredentialRefused, fasthttp.StatusServiceUnavailable, teller.Unavailable,
		"the data server refused this business server's credential; the operator must fix its configuration"},
	{ErrStaleFence, fasthttp.StatusServiceUnavailable, teller.Unavailable,
		"the account's lock lease ran out before the operation finished; try again"},
	{ErrLocked, fasthttp.StatusForbidden, teller.LockedAccount, "account locked by another operation; nothing changed, try again"},
	{ErrNotFound, fasthttp.StatusNotFound, teller.NotFound, "no such account"},
	{ErrInvalidAccount, fasthttp.StatusNotFound, teller.InvalidAccount, "an account must be a positive integer"},
	{ErrInvalidValue, fasthttp.StatusNotFound, teller.InvalidValue, "valor must be a positive integer of at most 9223372036854775807"},
	{ErrOverflow, fasthttp.StatusNotFound, teller.Overflow, "the balance would exceed 9223372036854775807; nothing changed"},
	{ErrInsufficientFunds, fasthttp.StatusConflict, teller.InsufficientFunds, "insufficient funds; nothing changed"},
	{ErrSameAccount, fasthttp.StatusBadRequest, teller.SameAccount, "conta_orig and conta_dest must differ"},
}

// unknownMessage explains a commit whose answer was lost.
func unknownMessage(err error) string {
	reason := "the data server's answer was lost"
	var de *dataclient.DataError
	if errors.As(err, &de) && de.Reason != "" {
		reason = de.Reason
	}
	return reason + " while it was applying the operation, which may or may not have been applied: " +
		"repeat the request with the same Idempotency-Key to learn which (without one, read the balance before trying again)"
}

// parsePositive parses a path parameter as a positive integer that fits in
// int64: ASCII digits only, no sign, no spaces. wire.ParseInt is the
// project's one number parser; a '-' it accepts never yields a positive
// number.
func parsePositive(s string) (int64, bool) {
	n, ok := wire.ParseInt([]byte(s))
	return n, ok && n > 0
}

// clip copies at most 32 bytes of a rejected parameter for the log.
func clip(s string) string {
	if len(s) <= 32 {
		return string([]byte(s))
	}
	return string([]byte(s[:32])) + "..."
}

func clientIP(ctx *fasthttp.RequestCtx) string {
	return ctx.RemoteIP().String()
}
