package actors

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors/account"
)

// tracerScope is the instrumentation scope of the bank's tracers (package
// tracing's Scope, which this package cannot import).
const tracerScope = "github.com/bank/gobank"

// startSpan starts the span of one account's phase of Apply.
func (b *Bank) startSpan(ctx context.Context, name string, id int64, fence uint64) trace.Span {
	_, span := b.tracer.Start(ctx, name, trace.WithAttributes(
		attribute.Int64("gobank.conta", id), attribute.Int64("gobank.fence", int64(fence))))
	return span
}

// startStoreSpan starts the span of Apply's durable store commit of n
// balances (and an idempotency record when withRecord; never its key).
func (b *Bank) startStoreSpan(ctx context.Context, n int, withRecord bool) trace.Span {
	_, span := b.tracer.Start(ctx, "store.commit", trace.WithAttributes(
		attribute.Int("gobank.accounts", n), attribute.Bool("gobank.idempotent", withRecord)))
	return span
}

// endSpan ends span, marking it as failed with err's name (see ErrorName),
// unless err is a refusal by the account's rules.
func endSpan(span trace.Span, err error) {
	if err != nil {
		name := ErrorName(err)
		span.SetAttributes(attribute.String("gobank.error_code", name))
		if !Refusal(err) {
			span.SetStatus(codes.Error, name)
		}
	}
	span.End()
}

// ErrorName names an error of the bank for a span or a metric: the name of
// the sentinel it wraps, never its text (a store's error may name a path
// or a database).
func ErrorName(err error) string {
	for _, e := range []struct {
		err  error
		name string
	}{
		{ErrNotFound, "NOT_FOUND"}, {account.ErrLocked, "LOCKED_ACCOUNT"}, {account.ErrStaleFence, "STALE_FENCE"},
		{account.ErrBusy, "BUSY"}, {account.ErrNegativeBalance, "NEGATIVE_BALANCE"}, {ErrStore, "STORE"},
		{ErrTimeout, "TIMEOUT"}, {ErrClosed, "CLOSED"}, {ErrInternal, "INTERNAL"}, {ErrNoFence, "NO_FENCE"},
		{context.Canceled, "CANCELED"}, {context.DeadlineExceeded, "DEADLINE_EXCEEDED"},
	} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	return "ERROR"
}

// Refusal reports whether err is a refusal by the account's rules (no such
// account, locked, stale fence, busy, negative balance) rather than a
// failure.
func Refusal(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, account.ErrLocked) || errors.Is(err, account.ErrStaleFence) ||
		errors.Is(err, account.ErrBusy) || errors.Is(err, account.ErrNegativeBalance)
}
