package servercmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// SetupTracing builds the process's tracer provider from the standard
// OTEL_* environment variables, through the contrib autoexport package:
// OTEL_TRACES_EXPORTER=otlp (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_PROTOCOL, ...), console (JSON lines on stdout) or
// none; unset means none, tracing off. The resource is service (unless
// OTEL_SERVICE_NAME says otherwise), OTEL_RESOURCE_ATTRIBUTES and the
// SDK's own; OTEL_TRACES_SAMPLER and the OTEL_BSP_* batch settings are
// read by the SDK.
//
// It returns a nil provider when tracing is off. shutdown flushes the
// spans not yet exported and stops the exporter; it is never nil.
func SetupTracing(ctx context.Context, service string) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	exp, err := autoexport.NewSpanExporter(ctx, autoexport.WithFallbackSpanExporter(
		func(context.Context) (sdktrace.SpanExporter, error) { return nil, nil }))
	if err != nil {
		return nil, noop, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: %w", os.Getenv("OTEL_TRACES_EXPORTER"), err)
	}
	if exp == nil || autoexport.IsNoneSpanExporter(exp) {
		return nil, noop, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override
		resource.WithTelemetrySDK(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, noop, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	p := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return p, p.Shutdown, nil
}

// traceFlushTimeout bounds how long a stopping process waits for its last
// spans to be exported.
const traceFlushTimeout = 5 * time.Second

// FlushTracing runs shutdown (SetupTracing's) within traceFlushTimeout,
// even after ctx was cancelled (a stopping process still flushes).
func FlushTracing(ctx context.Context, shutdown func(context.Context) error) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), traceFlushTimeout)
	defer cancel()
	return shutdown(sctx)
}

// startTracing is SetupTracing for a server, naming the process service
// unless OTEL_SERVICE_NAME does. The stop function it returns (never nil)
// flushes the spans not yet exported: call it once the server has stopped.
func startTracing(ctx context.Context, service string, logger *slog.Logger) (trace.TracerProvider, func(), error) {
	tp, shutdown, err := SetupTracing(ctx, service)
	if err != nil {
		return nil, func() {}, err
	}
	if tp == nil {
		return nil, func() {}, nil
	}
	logger.Info("tracing on", "exporter", os.Getenv("OTEL_TRACES_EXPORTER"))
	return tp, func() {
		if err := FlushTracing(ctx, shutdown); err != nil {
			logger.Error("flushing the last spans", "err", err)
		}
	}, nil
}
