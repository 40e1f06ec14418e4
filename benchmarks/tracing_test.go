package benchmarks

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// BenchmarkTracing is a business transfer over loopback (transferPath) with tracing off (the
// default: no tracer provider) and on (every request sampled, spans
// batched to an exporter that drops them), in one run: what the spans and
// traceparent headers of both servers cost per transfer.
func BenchmarkTracing(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "tracing=off"
		var tp *sdktrace.TracerProvider
		if on {
			name = "tracing=on"
			tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
				sdktrace.WithSampler(sdktrace.AlwaysSample()))
		}
		b.Run(name, func(b *testing.B) {
			dsOpt := dataservertest.Options{Accounts: durabilityAccounts, InitialBalance: 1 << 40}
			bizOpt := businesstest.Options{}
			if tp != nil {
				dsOpt.TracerProvider, bizOpt.TracerProvider = tp, tp
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			}
			ds := dataservertest.Start(b, dsOpt)
			biz := businesstest.Start(b, ds, bizOpt)
			hammer(b, biz.Addr, "ba0f", transferPath, ok200)
		})
	}
}
