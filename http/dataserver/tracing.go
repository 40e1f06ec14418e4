package dataserver

import (
	"context"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/http/tracing"
	"github.com/bank/gobank/http/wire"
)

// spanNames names the server span of each traced route. Other paths
// (/status, /metrics, unknown ones) get none: a span name never comes from
// what a client sent.
var spanNames = func() map[string]string {
	m := make(map[string]string)
	for _, r := range []string{wire.RouteAutentica, wire.RouteGetSaldo, wire.RouteSetSaldo, wire.RouteGetLock,
		wire.RouteSetLock, wire.RouteUnLock, wire.RouteGetLocks, wire.RouteCommit, wire.RouteIdem, wire.RouteSnapshot} {
		m[r] = "data " + r
	}
	return m
}()

// spanKey keeps a traced request's context (with its server span) in the
// request's user values, for the handlers' actor calls.
type spanKey struct{}

// traced wraps the router (only with tracing on) in a server span per
// request to a traced route. The span's parent is the request's W3C
// traceparent; its context, derived from the fasthttp.RequestCtx, is
// stored in the request for spanContext.
func (s *Server) traced(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(rc *fasthttp.RequestCtx) {
		name, ok := spanNames[string(rc.Path())]
		if !ok {
			next(rc)
			return
		}
		ctx, span := tracing.StartServer(rc, s.tracer, &rc.Request.Header, name,
			semconv.HTTPRequestMethodKey.String(string(rc.Method())), semconv.HTTPRoute(name[len("data "):]))
		rc.SetUserValue(spanKey{}, ctx)
		next(rc)
		refused := ""
		if code, ok := wire.Refusal(rc); ok {
			refused = code.String()
		}
		tracing.EndHTTP(span, rc.Response.StatusCode(), refused, refused)
	}
}

// spanContext returns the context of rc's server span, or rc itself when
// the request is not traced.
func (s *Server) spanContext(rc *fasthttp.RequestCtx) context.Context {
	if s.tracer != nil {
		if ctx, ok := rc.UserValue(spanKey{}).(context.Context); ok {
			return ctx
		}
	}
	return rc
}

// do calls account conta's actor, within a span when tracing is on.
func (s *Server) do(rc *fasthttp.RequestCtx, conta int64, req actors.Request) (actors.Reply, error) {
	if s.tracer == nil {
		return s.cfg.Accounts.Do(conta, req)
	}
	return s.doTraced(rc, conta, req)
}

// accountSpans names the span of each account operation.
var accountSpans = map[actors.Op]string{
	actors.OpRead: "account.read", actors.OpWrite: "account.write",
	actors.OpLock: "account.lock", actors.OpUnlock: "account.unlock",
}

// doTraced is do in a child span of rc's server span: an account lock's
// span lasts from the request to the grant, so it shows the wait in the
// account's queue.
func (s *Server) doTraced(rc *fasthttp.RequestCtx, conta int64, req actors.Request) (actors.Reply, error) {
	ctx := s.spanContext(rc)
	if !trace.SpanFromContext(ctx).IsRecording() {
		return s.cfg.Accounts.Do(conta, req)
	}
	attrs := []attribute.KeyValue{tracing.KeyConta.Int64(conta)}
	if req.Fence != 0 {
		attrs = append(attrs, tracing.KeyFence.Int64(int64(req.Fence)))
	}
	if req.Op == actors.OpLock {
		attrs = append(attrs, attribute.Int64("gobank.wait_ms", req.Wait.Milliseconds()),
			attribute.Int64("gobank.ttl_ms", req.TTL.Milliseconds()))
	}
	_, span := s.tracer.Start(ctx, accountSpans[req.Op], trace.WithAttributes(attrs...))
	reply, err := s.cfg.Accounts.Do(conta, req)
	if req.Op == actors.OpLock && err == nil {
		span.SetAttributes(tracing.KeyFence.Int64(int64(reply.Fence)))
	}
	if err != nil {
		span.SetAttributes(tracing.KeyErrorCode.String(actors.ErrorName(err)))
		if !actors.Refusal(err) {
			span.SetStatus(codes.Error, actors.ErrorName(err))
		}
	}
	span.End()
	return reply, err
}
