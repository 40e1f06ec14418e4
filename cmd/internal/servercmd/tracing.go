package servercmd

import (
	"context"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/http/tracing"
)

// traceFlushTimeout bounds how long a stopping server waits for its last
// spans to be exported.
const traceFlushTimeout = 5 * time.Second

// startTracing sets up tracing from the OTEL_* environment (see
// tracing.Setup), naming the process service unless OTEL_SERVICE_NAME
// does. It returns a nil provider when tracing is off, and a stop function
// (never nil) that flushes the spans not yet exported: call it once the
// server has stopped.
func startTracing(ctx context.Context, service string, logger *slog.Logger) (trace.TracerProvider, func(), error) {
	tp, shutdown, err := tracing.Setup(ctx, service)
	if err != nil {
		return nil, func() {}, err
	}
	if tp == nil {
		return nil, func() {}, nil
	}
	logger.Info("tracing on", "exporter", os.Getenv("OTEL_TRACES_EXPORTER"))
	return tp, func() {
		sctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			logger.Error("flushing the last spans", "err", err)
		}
	}, nil
}
