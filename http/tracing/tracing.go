// Package tracing carries OpenTelemetry traces across the bank's HTTP hops:
// a W3C traceparent carrier over fasthttp's headers and the span helpers
// the servers and clients share. It depends on OpenTelemetry's API only;
// the commands build the SDK's provider from the OTEL_* environment
// (cmd/internal/servercmd.SetupTracing).
//
// Tracing is off unless a caller passes a trace.TracerProvider. Every user of
// this package checks once, when it is built, whether it has a tracer, and
// skips all span and header work otherwise: with tracing off the hot path
// costs and allocates what it did without it.
//
// What a span may carry: routes, account numbers, amounts, fences, HTTP
// statuses and error code names. Never a token, a credential, an
// Idempotency-Key, an id_negoc's query string or a URL with a query: the
// helpers here take no headers but traceparent and tracestate, and
// callers add attributes by name.
package tracing

import (
	"context"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of every tracer the bank makes.
const Scope = "github.com/bank/gobank"

// Propagator is the one propagator of the bank's hops: W3C Trace Context
// (traceparent, tracestate) only. Baggage is not propagated: it carries
// whatever a caller puts in it, and nothing a client sends may end up
// forwarded to the data server or recorded.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Tracer returns the bank's tracer of tp, or nil when tp is nil (tracing
// off): callers keep the nil and test it instead of calling a no-op tracer.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(Scope)
}

// header is what Carrier needs of fasthttp's request and response headers.
type header interface {
	Peek(key string) []byte
	Set(key, value string)
	VisitAll(f func(key, value []byte))
}

// Carrier is a propagation.TextMapCarrier over a fasthttp request or
// response header. Get copies the value it returns, so nothing of the
// header outlives the handler that owns it.
type Carrier struct{ h header }

var _ propagation.TextMapCarrier = Carrier{}

// RequestCarrier returns a Carrier over a request's header.
func RequestCarrier(h *fasthttp.RequestHeader) Carrier { return Carrier{h} }

// ResponseCarrier returns a Carrier over a response's header.
func ResponseCarrier(h *fasthttp.ResponseHeader) Carrier { return Carrier{h} }

// Get returns the value of key, or "".
func (c Carrier) Get(key string) string { return string(c.h.Peek(key)) }

// Set sets key to value, replacing any value it had.
func (c Carrier) Set(key, value string) { c.h.Set(key, value) }

// Keys returns the header's keys.
func (c Carrier) Keys() []string {
	var keys []string
	c.h.VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}

// StartServer starts the span of a request served, the child of the
// traceparent h carries (a root span when it carries none), with ctx as
// the parent context otherwise.
func StartServer(ctx context.Context, tr trace.Tracer, h *fasthttp.RequestHeader, name string,
	attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx = Propagator.Extract(ctx, RequestCarrier(h))
	return tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
}

// StartClient starts the span of a call to another server, a child of
// ctx's span, and sets req's traceparent to it.
func StartClient(ctx context.Context, tr trace.Tracer, h *fasthttp.RequestHeader, name string,
	attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	Propagator.Inject(ctx, RequestCarrier(h))
	return ctx, span
}

// Attribute keys of the bank's spans, beside OpenTelemetry's semantic
// conventions for HTTP.
const (
	KeyConta     = attribute.Key("gobank.conta")      // an account
	KeyValor     = attribute.Key("gobank.valor")      // an amount or a new balance
	KeyErrorCode = attribute.Key("gobank.error_code") // a refusal's code name, e.g. LOCKED_ACCOUNT
	KeyFence     = attribute.Key("gobank.fence")      // a lock grant's fence
)

// EndHTTP records an answer's status (and, when code is not empty, the
// refusal's code name) on span, marks a 5xx answer or a transport failure
// (status 0 with reason) as an error, and ends the span. reason must be
// safe to show: it names no address and no credential.
func EndHTTP(span trace.Span, status int, code, reason string) {
	if status != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
	if code != "" {
		span.SetAttributes(KeyErrorCode.String(code))
	}
	if status == 0 || status >= 500 {
		if reason == "" {
			reason = code
		}
		span.SetStatus(codes.Error, reason)
	}
	span.End()
}

// Disconnected returns a context without ctx's deadline and cancellation
// that keeps ctx's span as the parent of spans started from it, for work
// that outlives the request (releasing locks after it failed); with no span
// in ctx it is context.Background(), which costs nothing.
func Disconnected(ctx context.Context) context.Context {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return context.Background()
	}
	return trace.ContextWithSpanContext(context.Background(), sc)
}
