package client

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/http/tracing"
)

// opParams names the arguments of each operation, for span attributes.
var opParams = map[string][]string{
	"deposito": {"conta", "valor"}, "saque": {"conta", "valor"}, "saldo": {"conta"},
	"transferencia": {"conta_orig", "conta_dest", "valor"},
}

// startSpan starts an operation's client span (only with tracing on): its
// arguments, and whether it carries an Idempotency-Key, never the key nor
// the token.
func (c *Client) startSpan(ctx context.Context, route string, args []int64, key string) (context.Context, trace.Span) {
	attrs := make([]attribute.KeyValue, 0, 4)
	for i, p := range opParams[route] {
		if i < len(args) {
			attrs = append(attrs, attribute.Int64("gobank."+p, args[i]))
		}
	}
	attrs = append(attrs, attribute.Bool("gobank.idempotent", key != ""))
	return c.tracer.Start(ctx, "client "+route, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endSpan records an operation's outcome, after attempts HTTP attempts,
// and ends its span. An *Error's status and code name are recorded, not
// its message.
func endSpan(span trace.Span, attempts int, err error) {
	span.SetAttributes(attribute.Int("gobank.attempts", attempts))
	var e *Error
	switch {
	case err == nil:
	case errors.As(err, &e):
		if e.Status != 0 {
			span.SetAttributes(semconv.HTTPResponseStatusCode(e.Status))
		}
		span.SetAttributes(tracing.KeyErrorCode.String(e.Code.String()))
		if e.Status == 0 || e.Status >= 500 {
			span.SetStatus(codes.Error, e.Code.String())
		}
	default:
		span.SetStatus(codes.Error, "canceled")
	}
	span.End()
}
