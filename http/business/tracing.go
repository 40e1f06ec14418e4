package business

import (
	"context"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/http/tracing"
	"github.com/bank/gobank/http/wire"
)

// keyIdempotent says whether an operation came with an Idempotency-Key;
// the key itself is never recorded.
const keyIdempotent = attribute.Key("gobank.idempotent")

// startSpan starts the server span of an operation route (only called with
// tracing on): the child of the request's traceparent, named after the
// route, with the parsed parameters as attributes (a parameter that did
// not parse is left out: it is whatever the client sent).
func (s *Server) startSpan(rc *fasthttp.RequestCtx, rt *route, args [3]int64, bad error) (context.Context, trace.Span) {
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, semconv.HTTPRequestMethodKey.String(string(rc.Method())), semconv.HTTPRoute(rt.path))
	if bad == nil {
		for i, p := range rt.params {
			attrs = append(attrs, attribute.Int64("gobank."+p, args[i]))
		}
	}
	attrs = append(attrs, keyIdempotent.Bool(len(rc.Request.Header.Peek(wire.HeaderIdempotencyKey)) > 0))
	return tracing.StartServer(context.Background(), s.tracer, &rc.Request.Header, "business "+rt.name, attrs...)
}

// endSpan records an operation's answer on its span and ends it. The
// error's text is not recorded (it may name the data server's address):
// the refusal's code name says what happened.
func (s *Server) endSpan(span trace.Span, r *reply) {
	if r.replayed {
		span.SetAttributes(attribute.Bool("gobank.replayed", true))
	}
	code := ""
	if r.code != 0 {
		code = r.code.String()
	}
	tracing.EndHTTP(span, r.status, code, "")
}

// startBatchSpan starts the server span of a batch (only called with
// tracing on); serveBatch adds the number of transfers once the body is
// decoded. No transfer's accounts or amounts are recorded.
func (s *Server) startBatchSpan(rc *fasthttp.RequestCtx) (context.Context, trace.Span) {
	return tracing.StartServer(context.Background(), s.tracer, &rc.Request.Header, "business "+batchName,
		semconv.HTTPRequestMethodKey.String(string(rc.Method())), semconv.HTTPRoute(RouteBatch),
		keyIdempotent.Bool(len(rc.Request.Header.Peek(wire.HeaderIdempotencyKey)) > 0))
}
