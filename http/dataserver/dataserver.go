// Package dataserver serves the bank's accounts over HTTP with the original
// bank's wire contract (package wire). It only decodes a request, forwards
// it to the account's actor and encodes the answer: the rules live in
// package account and the serialization in package actors.
package dataserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/actors/teller/inprocess"
	"github.com/bank/gobank/http/auth"
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/oplog"
	"github.com/bank/gobank/http/tracing"
	"github.com/bank/gobank/http/wire"
)

// Accounts is what the server needs of the account actors: actors.Bank
// and cluster.Bank offer it.
type Accounts = inprocess.Bank

// overdrafter is what the compatibility mode needs of Accounts: that a
// write asking for it may leave a balance negative.
type overdrafter interface{ Overdraft() bool }

// MaxIDLength bounds id_negoc: it is stored as a lock holder and logged.
const MaxIDLength = 256

// Lock defaults.
const (
	DefaultLockTTL     = 10 * time.Second
	DefaultMaxLockTTL  = 5 * time.Minute
	DefaultMaxLockWait = time.Minute
)

// Config configures a Server.
type Config struct {
	// Accounts serves the account operations. Required.
	Accounts Accounts
	// ClientTokens are the end users' tokens; they may call /autentica only.
	// Required.
	ClientTokens *auth.Tokens
	// ServerToken is the credential business servers present on the data
	// routes. Required unless AllowClientTokens.
	ServerToken string
	// AllowClientTokens is the compatibility mode, for business servers of
	// the original implementation: client tokens may use the data routes
	// too, and setSaldo stores any integer, negative ones included, as the
	// original did. Its business servers ignore a refused setSaldo and go on
	// to write the other account of a transfer, so refusing an overdraft
	// would create money. Any client can then set any balance: use it only
	// for compatibility. Accounts must allow overdrafts (an Overdraft()
	// method reporting true, as actors.Bank with Config.Overdraft).
	AllowClientTokens bool
	// Records keeps idempotency records for /commit and /idem; nil refuses
	// requests that name a key.
	Records Records
	// Log receives one line per operation; nil logs nothing.
	Log *oplog.Log
	// Logger receives server errors; nil discards them.
	Logger *slog.Logger
	// LockTTL is the lease of a lock grant whose request names no ttl: a
	// business server that dies holding a lock blocks the account this long
	// at most. Zero means DefaultLockTTL; negative means no lease.
	LockTTL time.Duration
	// MaxLockTTL bounds the ttl a request may ask for. Zero means
	// DefaultMaxLockTTL.
	MaxLockTTL time.Duration
	// MaxLockWait bounds the wait a getLock may ask for. Zero means
	// DefaultMaxLockWait.
	MaxLockWait time.Duration
	// Wrap, when set, wraps the handler that Serve uses (not Handler's
	// result): tests inject faults with it.
	Wrap func(fasthttp.RequestHandler) fasthttp.RequestHandler
	// Metrics is the registry /metrics serves, shared with the actors'
	// observer (NewObserver); nil: the server makes its own.
	Metrics *metrics.Registry
	// TracerProvider, when set, traces the data routes: a server span per
	// request (the child of its W3C traceparent) and a span per account
	// actor call; Apply gets the span's context. Nil: no spans, at no cost.
	TracerProvider trace.TracerProvider
}

// Server is the data server. Create it with New.
type Server struct {
	cfg          Config
	serverTokens *auth.Tokens // nil when there is no server credential
	server       *fasthttp.Server
	logger       *slog.Logger
	accts        *inprocess.Accounts // the routes of several accounts, and every account call
	m            *serverMetrics
	ids          interner     // id_negoc values of authorized callers
	tracer       trace.Tracer // nil: tracing off
}

// New checks cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Accounts == nil {
		return nil, errors.New("dataserver: no accounts")
	}
	if cfg.ClientTokens.Len() == 0 {
		return nil, errors.New("dataserver: no client tokens")
	}
	if cfg.ServerToken == "" && !cfg.AllowClientTokens {
		return nil, errors.New("dataserver: no server credential, and client tokens may not use the data routes")
	}
	if o, ok := cfg.Accounts.(overdrafter); cfg.AllowClientTokens && (!ok || !o.Overdraft()) {
		return nil, errors.New("dataserver: the compatibility mode (client tokens on the data routes) needs accounts " +
			"that may go negative, as the original's setSaldo let them: without it the original's business servers create money")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LockTTL == 0 {
		cfg.LockTTL = DefaultLockTTL
	}
	if cfg.MaxLockTTL == 0 {
		cfg.MaxLockTTL = DefaultMaxLockTTL
	}
	if cfg.MaxLockWait == 0 {
		cfg.MaxLockWait = DefaultMaxLockWait
	}
	if cfg.MaxLockTTL < 0 || cfg.MaxLockWait < 0 || cfg.LockTTL > cfg.MaxLockTTL {
		return nil, fmt.Errorf("dataserver: lock ttl %v, max ttl %v, max wait %v: want 0 <= ttl <= max ttl, max wait >= 0",
			cfg.LockTTL, cfg.MaxLockTTL, cfg.MaxLockWait)
	}
	s := &Server{cfg: cfg, logger: logger, m: newServerMetrics(cfg.Metrics, cfg.Accounts), tracer: tracing.Tracer(cfg.TracerProvider)}
	accts, err := inprocess.New(inprocess.Config{Bank: cfg.Accounts, Records: cfg.Records,
		TracerProvider: cfg.TracerProvider, LockWait: s.m.lockWait.Observe})
	if err != nil {
		return nil, fmt.Errorf("dataserver: %w", err)
	}
	s.accts = accts
	if cfg.ServerToken != "" {
		tokens, err := auth.NewTokens(cfg.ServerToken)
		if err != nil {
			return nil, fmt.Errorf("dataserver: server credential: %w", err)
		}
		s.serverTokens = tokens
	}
	h := s.Handler()
	if cfg.Wrap != nil {
		h = cfg.Wrap(h)
	}
	// Bodies carry the outcome of an idempotent request (/commit, /idem),
	// or a batch's lists of accounts (/getLocks, /commit).
	s.server = wire.NewServer("gobank-dataserver", h, wire.MaxDataBody, logger)
	return s, nil
}

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.server.Serve(ln) }

// Shutdown stops accepting connections and waits, until ctx ends, for the
// requests in flight to finish.
func (s *Server) Shutdown(ctx context.Context) error { return s.server.ShutdownWithContext(ctx) }

// route describes one data route.
type route struct {
	name      string // as logged
	op        actors.Op
	needID    bool // the caller's id matters: it is a lock holder
	needValue bool
}

var (
	getSaldo = route{name: "getSaldo", op: actors.OpRead}
	setSaldo = route{name: "setSaldo", op: actors.OpWrite, needID: true, needValue: true}
	getLock  = route{name: "getLock", op: actors.OpLock, needID: true}
	unLock   = route{name: "unLock", op: actors.OpUnlock, needID: true}
)

// Handler returns the routing handler, for tests and embedding.
func (s *Server) Handler() fasthttp.RequestHandler {
	r := metrics.Instrument(wire.NewRouter(s.logger), s.m.http)
	r.GET(RouteMetrics, s.m.reg.Handler())
	for _, method := range []string{fasthttp.MethodGet, fasthttp.MethodPost} {
		r.Handle(method, wire.RouteStatus, s.status)
		r.Handle(method, wire.RouteAutentica, s.autentica)
		r.Handle(method, wire.RouteGetSaldo, s.data(getSaldo))
		r.Handle(method, wire.RouteSetSaldo, s.data(setSaldo))
		r.Handle(method, wire.RouteGetLock, s.data(getLock))
		r.Handle(method, wire.RouteSetLock, s.data(unLock))
		r.Handle(method, wire.RouteUnLock, s.data(unLock))
		r.Handle(method, wire.RouteGetLocks, s.getLocks)
		r.Handle(method, wire.RouteCommit, s.commit)
		r.Handle(method, wire.RouteIdem, s.idem)
		r.Handle(method, wire.RouteSnapshot, s.snapshot)
	}
	if s.tracer != nil {
		return s.traced(r.Handler)
	}
	return r.Handler
}

func (s *Server) status(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("data server: ok\n")
}

// credential says what the request's token allows.
type credential int

const (
	none     credential = iota // missing or unknown
	client                     // a client token: /autentica only
	server                     // the server credential: every route
	repeated                   // the header given more than once: refused (400), never looked up
)

func (s *Server) credential(ctx *fasthttp.RequestCtx) credential {
	tok, ok := wire.Token(&ctx.Request.Header)
	switch {
	case !ok:
		return repeated
	case s.serverTokens.Contains(tok):
		return server
	case s.cfg.ClientTokens.Contains(tok):
		return client
	}
	return none
}

func (s *Server) autentica(ctx *fasthttp.RequestCtx) {
	id, ok := s.callerID(ctx, false)
	if !ok {
		return
	}
	// Logged as the original did: "ID, autentica, True" or "False". A
	// repeated token is no answer to "who is this": it is a bad request,
	// logged as one, like every other refusal.
	switch s.credential(ctx) {
	case repeated:
		s.answer(ctx, s.cfg.Log.Entry(id, "autentica"), fasthttp.StatusBadRequest, teller.BadRequest, wire.MsgRepeatedToken)
		return
	case none:
		s.cfg.Log.Entry(id, "autentica").Bool(false).Done()
		wire.WriteError(ctx, fasthttp.StatusUnauthorized, teller.Unauthorized, "missing or unknown token")
		return
	}
	s.cfg.Log.Entry(id, "autentica").Bool(true).Done()
	wire.WriteJSON(ctx, emptyObject)
}

// callerID returns id_negoc, answering 400 itself when it is repeated,
// too long, or missing where required. Where it may be missing, the
// caller's IP address stands for it, as in the original (it logged
// request.remote_addr).
func (s *Server) callerID(ctx *fasthttp.RequestCtx, required bool) (string, bool) {
	v, n := single(ctx.QueryArgs(), wire.ParamIDNegoc)
	switch {
	case n > 1:
		wire.WriteError(ctx, fasthttp.StatusBadRequest, teller.BadRequest, "id_negoc given more than once")
		return "", false
	case len(v) > MaxIDLength:
		wire.WriteError(ctx, fasthttp.StatusBadRequest, teller.BadRequest, "id_negoc longer than 256 bytes")
		return "", false
	case len(v) == 0 && required:
		wire.WriteError(ctx, fasthttp.StatusBadRequest, teller.BadRequest, "missing id_negoc: it names the lock holder")
		return "", false
	case len(v) == 0:
		return remoteIP(ctx), true
	}
	return s.ids.get(v), true
}

// remoteIP returns the caller's IP address, without the port, as Flask's
// request.remote_addr gave it to the original.
func remoteIP(ctx *fasthttp.RequestCtx) string {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ctx.RemoteAddr().String()
}

func (s *Server) data(rt route) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) { s.serveData(ctx, rt) }
}

// authorized answers 401 or 403 itself, and logs the refusal, unless the
// request's credential may call data route name.
func (s *Server) authorized(ctx *fasthttp.RequestCtx, id, name string) bool {
	switch cred := s.credential(ctx); {
	case cred == repeated:
		s.answer(ctx, s.cfg.Log.Entry(id, name), fasthttp.StatusBadRequest, teller.BadRequest, wire.MsgRepeatedToken)
		return false
	case cred == none:
		s.answer(ctx, s.cfg.Log.Entry(id, name), fasthttp.StatusUnauthorized, teller.Unauthorized, "missing or unknown token")
		return false
	case cred == client && !s.cfg.AllowClientTokens:
		s.answer(ctx, s.cfg.Log.Entry(id, name), fasthttp.StatusForbidden, teller.Unauthorized,
			"a client token may only call /autentica; data routes need the server credential")
		return false
	}
	return true
}

func (s *Server) serveData(ctx *fasthttp.RequestCtx, rt route) {
	id, ok := s.callerID(ctx, rt.needID)
	if !ok || !s.authorized(ctx, id, rt.name) {
		return
	}
	s.ids.remember(id)

	args := ctx.QueryArgs()
	raw, n := single(args, wire.ParamConta)
	if n > 1 {
		wire.WriteError(ctx, fasthttp.StatusBadRequest, teller.BadRequest, "conta given more than once")
		return
	}
	conta, ok := wire.ParseInt(raw)
	if !ok {
		s.refuse(ctx, s.cfg.Log.Entry(id, rt.name), teller.InvalidAccount, "missing or non-numeric conta")
		return
	}
	entry := s.cfg.Log.Entry(id, rt.name).Int(conta)
	// The original's setSaldo stored any integer; its business servers
	// depend on that (AllowClientTokens).
	req := actors.Request{Op: rt.op, Holder: id, Overdraft: s.cfg.AllowClientTokens}
	if msg := s.lockParams(args, &req); msg != "" {
		s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, msg)
		return
	}
	if rt.needValue {
		raw, n := single(args, wire.ParamValor)
		if n > 1 {
			s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, "valor given more than once")
			return
		}
		if req.Value, ok = wire.ParseInt(raw); !ok {
			s.refuse(ctx, entry, teller.InvalidValue, "missing valor, or not an integer within 64 bits")
			return
		}
		entry.Int(req.Value)
	}

	var start time.Time
	if rt.op == actors.OpLock {
		start = time.Now()
	}
	reply, err := s.do(ctx, conta, req)
	switch {
	case err == nil:
		if rt.op == actors.OpLock {
			s.m.lockWait.Since(start)
		}
	default:
		s.reject(ctx, entry, rt.name, err, "")
		return
	}
	switch rt.op {
	case actors.OpRead:
		entry.Int(reply.Balance).Done()
		var a [72]byte
		buf := append(a[:0], `{"saldo":`...)
		buf = strconv.AppendInt(buf, reply.Balance, 10)
		// The contract's answer is {"saldo":N}; the version, asked for,
		// lets an optimistic transaction validate its read.
		if _, n := single(args, wire.ParamWithVersion); n > 0 {
			buf = append(buf, `,"version":`...)
			buf = strconv.AppendUint(buf, reply.Version, 10)
		}
		wire.WriteJSON(ctx, append(buf, '}'))
	case actors.OpLock:
		entry.Done()
		wire.WriteJSON(ctx, appendGrant(make([]byte, 0, 128), reply))
	default:
		entry.Done()
		wire.WriteJSON(ctx, emptyObject)
	}
}

// appendGrant encodes a lock grant. The original answered {}; its clients
// read error_code only, so the extra fields are safe for them, and they
// spare a fencing client a read: the balance cannot change while it holds
// the lock.
func appendGrant(buf []byte, r actors.Reply) []byte {
	buf = append(buf, `{"fence":`...)
	buf = strconv.AppendUint(buf, r.Fence, 10)
	buf = append(buf, `,"saldo":`...)
	buf = strconv.AppendInt(buf, r.Balance, 10)
	if !r.Expires.IsZero() {
		buf = append(buf, `,"expires_at":"`...)
		buf = r.Expires.UTC().AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, `","ttl_ms":`...)
		buf = strconv.AppendInt(buf, time.Until(r.Expires).Milliseconds(), 10)
	}
	return append(buf, '}')
}

// lockParams reads wait, ttl, unsynced and fence into req, applying the lease
// default, and returns why they are unacceptable ("" when they are fine).
func (s *Server) lockParams(args *fasthttp.Args, req *actors.Request) string {
	if raw, n := single(args, wire.ParamFence); n > 1 {
		return "fence given more than once"
	} else if n == 1 {
		f, ok := wire.ParseInt(raw)
		if !ok || f <= 0 {
			return "fence: want a positive integer from a lock grant"
		}
		req.Fence = uint64(f)
	}
	if req.Op != actors.OpLock {
		return ""
	}
	switch v, n := single(args, wire.ParamUnsynced); {
	case n > 1:
		return wire.ParamUnsynced + " given more than once"
	case n == 1:
		req.BeforeDurable = string(v) == "1" || string(v) == "true"
	}
	req.TTL = s.cfg.LockTTL
	for _, p := range []struct {
		name string
		dst  *time.Duration
		max  time.Duration
	}{{wire.ParamTTL, &req.TTL, s.cfg.MaxLockTTL}, {wire.ParamWait, &req.Wait, s.cfg.MaxLockWait}} {
		raw, n := single(args, p.name)
		if n == 0 {
			continue
		}
		d, err := time.ParseDuration(string(raw))
		switch {
		case n > 1:
			return p.name + " given more than once"
		case err != nil || d <= 0:
			return p.name + ": want a positive Go duration such as 500ms or 2s"
		case d > p.max:
			return p.name + ": longer than this server allows (" + p.max.String() + ")"
		}
		*p.dst = d
	}
	return ""
}

// refuse answers a domain error the contract's way, 200 with error_code,
// and logs it with the code's name as the last parameter.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, entry *oplog.Entry, code teller.Code, msg string) {
	s.answer(ctx, entry, fasthttp.StatusOK, code, msg)
}

// answer logs the operation with code's name as its last parameter and
// answers {"error_code":code,"error":msg} with status.
func (s *Server) answer(ctx *fasthttp.RequestCtx, entry *oplog.Entry, status int, code teller.Code, msg string) {
	entry.Str(code.String()).Done()
	wire.WriteError(ctx, status, code, msg)
}

// params returns the parameters of /getLocks and /commit: the query's,
// or, for a POST whose body is a form (application/x-www-form-urlencoded),
// the body's, since a batch's lists of accounts are far too long for a
// request line. id_negoc stays in the query, and with a form body nothing
// else may be there: a parameter is read from one place only. It answers
// the request itself and returns false when that rule is broken.
func (s *Server) params(ctx *fasthttp.RequestCtx, entry *oplog.Entry) (*fasthttp.Args, bool) {
	if !ctx.IsPost() || !bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte(wire.FormType)) {
		return ctx.QueryArgs(), true
	}
	for k := range ctx.QueryArgs().All() {
		if string(k) != wire.ParamIDNegoc {
			s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest,
				"with a form body, every parameter but id_negoc goes in the body, not the query")
			return nil, false
		}
	}
	return ctx.PostArgs(), true
}

// single returns the value of key and how many times key occurs.
func single(args *fasthttp.Args, key string) (value []byte, n int) {
	for k, v := range args.All() {
		if string(k) == key {
			value = v
			n++
		}
	}
	return value, n
}

var emptyObject = []byte("{}")
