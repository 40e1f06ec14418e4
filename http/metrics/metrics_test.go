package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/http/metrics"
)

func TestExpositionParses(t *testing.T) {
	reg := metrics.NewRegistry()
	c := reg.Counter("x_total", "A counter.", metrics.Labels("a", `q"uo\te`))
	c.Add(3)
	h := reg.Histogram("x_seconds", "A histogram.", "", []time.Duration{time.Millisecond, time.Second})
	h.Observe(500 * time.Microsecond)
	h.Observe(2 * time.Second)
	reg.GaugeFunc("x_gauge", "A gauge.", "", func() float64 { return 7 })
	text := string(reg.AppendText(nil))
	// Since prometheus/common v0.66 the zero TextParser panics: say which
	// metric names are valid (ours are all legacy names).
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if got := fams["x_total"].GetMetric()[0].GetCounter().GetValue(); got != 3 {
		t.Errorf("counter = %v", got)
	}
	if got := fams["x_total"].GetMetric()[0].GetLabel()[0].GetValue(); got != `q"uo\te` {
		t.Errorf("label = %q", got)
	}
	hist := fams["x_seconds"].GetMetric()[0].GetHistogram()
	if hist.GetSampleCount() != 2 || len(hist.GetBucket()) != 3 || hist.GetBucket()[0].GetCumulativeCount() != 1 ||
		hist.GetBucket()[1].GetCumulativeCount() != 1 {
		t.Errorf("histogram = %v", hist)
	}
	if s := hist.GetSampleSum(); s < 2.0005-1e-9 || s > 2.0005+1e-9 {
		t.Errorf("sum = %v", s)
	}
	if got := fams["x_gauge"].GetMetric()[0].GetGauge().GetValue(); got != 7 {
		t.Errorf("gauge = %v", got)
	}
}

func TestObserveAllocatesNothing(t *testing.T) {
	reg := metrics.NewRegistry()
	h := reg.Histogram("x_seconds", "A histogram.", "", nil)
	c := reg.Counter("x_total", "A counter.", "")
	if n := testing.AllocsPerRun(100, func() { h.Observe(time.Millisecond); c.Inc() }); n != 0 {
		t.Errorf("%v allocations per observation", n)
	}
}

// BenchmarkWrap is what instrumenting a route costs per request: the
// same handler bare and wrapped, from parallel callers (the series are
// shared, as on a server).
func BenchmarkWrap(b *testing.B) {
	body := []byte(`{"saldo":1000}`)
	bare := func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }
	h := metrics.NewHTTP(metrics.NewRegistry(), "x", func(int) string { return "CODE" })
	for _, c := range []struct {
		name    string
		handler fasthttp.RequestHandler
	}{{"bare", bare}, {"instrumented", h.Route("/getSaldo").Wrap(bare)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				for pb.Next() {
					ctx.Response.Reset()
					c.handler(&ctx)
				}
			})
		})
	}
}
