package dataserver

import (
	"context"

	"github.com/valyala/fasthttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

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

// callContext is the context of inprocess calls for rc: its span's, but
// not ended by the server's shutdown (a fasthttp.RequestCtx's Done), so
// that requests in flight finish as they would have.
func (s *Server) callContext(rc *fasthttp.RequestCtx) context.Context {
	return context.WithoutCancel(s.spanContext(rc))
}

// do calls account conta's actor, within a span when tracing is on
// (inprocess.Accounts.Do).
func (s *Server) do(rc *fasthttp.RequestCtx, conta int64, req actors.Request) (actors.Reply, error) {
	return s.accts.Do(s.spanContext(rc), conta, req)
}
