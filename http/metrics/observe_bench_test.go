package metrics_test

import (
	"testing"
	"time"

	"github.com/bank/gobank/http/metrics"
)

// BenchmarkObserve is one histogram observation and one counter
// increment, the metrics part of Wrap alone, from one caller and from
// parallel callers on shared series.
func BenchmarkObserve(b *testing.B) {
	reg := metrics.NewRegistry()
	h := reg.Histogram("x_seconds", "A histogram.", metrics.Labels("route", "/getSaldo"), nil)
	c := reg.Counter("x_total", "A counter.", metrics.Labels("route", "/getSaldo", "status", "200"))
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.Observe(3 * time.Millisecond)
			c.Inc()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.Observe(3 * time.Millisecond)
				c.Inc()
			}
		})
	})
}
