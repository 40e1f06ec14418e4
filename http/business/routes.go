package business

import (
	"context"
	"errors"
	"runtime/debug"
	"strconv"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/oplog"
	"github.com/bank/gobank/http/wire"
)

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
	r.POST(RouteBatch, s.serveBatch) // POST only: the body is the batch
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
	s.answer(ctx, rt.name, entry, span, &r)
}

// answer finishes an operation route's request, whatever the route: it
// ends the span (nil: tracing off), writes the log line entry (with the
// refusal's name last, REPLAYED for an outcome answered again), logs a
// failure (5xx) for the operator, and writes r as the answer, reporting
// its error_code for the metrics.
func (s *Server) answer(ctx *fasthttp.RequestCtx, name string, entry *oplog.Entry, span trace.Span, r *reply) {
	if span != nil {
		s.endSpan(span, r)
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
		s.logger.Warn("operation failed", "route", name, "client", ctx.RemoteIP().String(), "err", r.err)
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
	defer s.recoverOp(rt.name, dst, &r)
	ctx, cancel := context.WithTimeout(parent, s.cfg.RequestTimeout)
	defer cancel()
	token, err := s.admit(ctx, rc)
	if err != nil {
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
	case a.Err != nil: // a refusal, kept under the key: Refusal encoded its body
		_, code, _ := classify(a.Err)
		return reply{status: a.Status, code: code, body: a.Body, err: a.Err}
	}
	return reply{status: a.Status, body: a.Body, replayed: a.Replayed}
}

// recoverOp, deferred by an operation, answers its panic with errPanic
// (in dst) and logs it. The operation's own defers have released its
// locks (and, without /commit, rolled back its writes) by then.
func (s *Server) recoverOp(name string, dst []byte, r *reply) {
	if p := recover(); p != nil {
		s.logger.Error("panic in operation", "route", name, "panic", p, "stack", string(debug.Stack()))
		*r = failure(errPanic, dst)
	}
}

// admit checks a request's token: given once (a repeated one is refused
// before the data server sees either), and accepted (see authenticate).
func (s *Server) admit(ctx context.Context, rc *fasthttp.RequestCtx) ([]byte, error) {
	token, ok := wire.Token(&rc.Request.Header)
	if !ok {
		return nil, errRepeatedToken
	}
	if err := s.authenticate(ctx, token); err != nil {
		return nil, err
	}
	return token, nil
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

func appendMovement(dst []byte, conta, valor, saldo int64) []byte {
	dst = append(dst, `{"conta":`...)
	dst = strconv.AppendInt(dst, conta, 10)
	dst = append(dst, `,"valor":`...)
	dst = strconv.AppendInt(dst, valor, 10)
	dst = append(dst, `,"saldo":`...)
	dst = strconv.AppendInt(dst, saldo, 10)
	return append(dst, '}')
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
