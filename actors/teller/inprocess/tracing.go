package inprocess

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors"
)

// tracerScope is the instrumentation scope of the bank's tracers (package
// http/tracing's Scope, which this layer does not import).
const tracerScope = "github.com/bank/gobank"

// Span attributes, as package http/tracing names them.
const (
	keyConta     = attribute.Key("gobank.conta")
	keyFence     = attribute.Key("gobank.fence")
	keyErrorCode = attribute.Key("gobank.error_code")
)

// accountSpans names the span of each account operation.
var accountSpans = map[actors.Op]string{
	actors.OpRead: "account.read", actors.OpWrite: "account.write",
	actors.OpLock: "account.lock", actors.OpUnlock: "account.unlock",
}

// traced is one account call in a child span of ctx's, when that one is
// recording: a lock's span lasts from the request to the grant, so it
// shows the wait in the account's queue. abandon makes the call end with
// ctx.
func (a *Accounts) traced(ctx context.Context, id int64, req actors.Request, abandon bool) (actors.Reply, error) {
	call := func() (actors.Reply, error) {
		if abandon {
			return a.ctxDo(ctx, id, req)
		}
		return a.bank.Do(id, req)
	}
	if !trace.SpanFromContext(ctx).IsRecording() {
		return call()
	}
	attrs := []attribute.KeyValue{keyConta.Int64(id)}
	if req.Fence != 0 {
		attrs = append(attrs, keyFence.Int64(int64(req.Fence)))
	}
	if req.Op == actors.OpLock {
		attrs = append(attrs, attribute.Int64("gobank.wait_ms", req.Wait.Milliseconds()),
			attribute.Int64("gobank.ttl_ms", req.TTL.Milliseconds()))
	}
	_, span := a.tracer.Start(ctx, accountSpans[req.Op], trace.WithAttributes(attrs...))
	reply, err := call()
	if req.Op == actors.OpLock && err == nil {
		span.SetAttributes(keyFence.Int64(int64(reply.Fence)))
	}
	if err != nil {
		span.SetAttributes(keyErrorCode.String(actors.ErrorName(err)))
		if !actors.Refusal(err) {
			span.SetStatus(codes.Error, actors.ErrorName(err))
		}
	}
	span.End()
	return reply, err
}
