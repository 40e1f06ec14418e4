package metrics_test

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/wire"
)

// scrape serves reg's Handler on loopback, GETs /metrics with the
// standard client and parses the answer with expfmt.
func scrape(t *testing.T, reg *metrics.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: reg.Handler()}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown() }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %s %q", resp.Status, ct)
	}
	fams, err := metrics.Parse(resp.Body, ct)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func TestExpositionParses(t *testing.T) {
	reg := metrics.NewRegistry()
	c := reg.Counter("x_total", "A counter.", metrics.Labels("a", `q"uo\te`))
	c.Add(3)
	h := reg.Histogram("x_seconds", "A histogram.", "", []time.Duration{time.Millisecond, time.Second})
	h.Observe(500 * time.Microsecond)
	h.Observe(2 * time.Second)
	reg.GaugeFunc("x_gauge", "A gauge.", "", func() float64 { return 7 })
	reg.CounterFunc("y_total", "A counter kept elsewhere.", metrics.Labels("k", "a"), func() float64 { return 5 })
	reg.CounterFunc("y_total", "A counter kept elsewhere.", metrics.Labels("k", "b"), func() float64 { return 6 })
	fams := scrape(t, reg)
	if m := fams["y_total"].GetMetric(); len(m) != 2 || m[0].GetCounter().GetValue() != 5 || m[1].GetCounter().GetValue() != 6 {
		t.Errorf("counter funcs = %v", m)
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
	if c.Value() != 3 || h.Count() != 2 {
		t.Errorf("Value = %d, Count = %d, want 3 and 2", c.Value(), h.Count())
	}
}

// TestStandardCollectors: the Go and process collectors are on every
// registry, and two registries are independent (none is the global one).
func TestStandardCollectors(t *testing.T) {
	a, b := metrics.NewRegistry(), metrics.NewRegistry()
	a.Counter("only_in_a_total", "A counter.", "").Inc()
	fams := scrape(t, b)
	for name, typ := range map[string]dto.MetricType{
		"go_goroutines":                 dto.MetricType_GAUGE,
		"go_gc_duration_seconds":        dto.MetricType_SUMMARY,
		"go_memstats_heap_alloc_bytes":  dto.MetricType_GAUGE,
		"process_cpu_seconds_total":     dto.MetricType_COUNTER,
		"process_resident_memory_bytes": dto.MetricType_GAUGE,
		"process_open_fds":              dto.MetricType_GAUGE,
	} {
		if f := fams[name]; f == nil || f.GetType() != typ {
			t.Errorf("%s: %v, want a %v", name, f, typ)
		}
	}
	if fams["only_in_a_total"] != nil {
		t.Error("a series of one registry shows in another's exposition")
	}
	if g := fams["go_goroutines"].GetMetric()[0].GetGauge().GetValue(); g < 2 {
		t.Errorf("go_goroutines = %v", g)
	}
}

// TestRouteSeries: a route's request counters appear once they move, its
// latency histogram from the start, and refusals are counted as the
// handler reports them.
func TestRouteSeries(t *testing.T) {
	reg := metrics.NewRegistry()
	h := metrics.NewHTTP(reg, "x", func(c int) string { return map[int]string{-6: "INSUFFICIENT_FUNDS"}[c] })
	refuse := h.Route("/saque").Wrap(func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(409)
		ctx.SetBodyString(`{"error_code":-6,"message":"no"}`)
		wire.SetRefusal(ctx, -6)
	})
	fams := scrape(t, reg)
	if f := fams["x_http_requests_total"]; f != nil {
		t.Errorf("request counters before any request: %v", f)
	}
	if f := fams["x_http_request_duration_seconds"]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM || len(f.GetMetric()) != 1 {
		t.Errorf("latency before any request: %v", f)
	}
	for range 2 {
		refuse(&fasthttp.RequestCtx{})
	}
	fams = scrape(t, reg)
	reqs := fams["x_http_requests_total"].GetMetric()
	if len(reqs) != 1 || reqs[0].GetCounter().GetValue() != 2 || label(reqs[0], "route") != "/saque" || label(reqs[0], "status") != "409" {
		t.Errorf("requests = %v, want one series of 2 at route /saque, status 409", reqs)
	}
	if n := fams["x_http_request_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); n != 2 {
		t.Errorf("latency count = %d", n)
	}
	var refused float64
	for _, m := range fams["x_refusals_total"].GetMetric() {
		if label(m, "code") == "INSUFFICIENT_FUNDS" {
			refused = m.GetCounter().GetValue()
		}
	}
	if refused != 2 {
		t.Errorf("INSUFFICIENT_FUNDS refusals = %v", refused)
	}
}

// TestRefusalReported: Wrap counts the code a handler reports through
// wire.WriteError, by its name, and nothing for a body it did not report
// (the metrics no longer read bodies).
func TestRefusalReported(t *testing.T) {
	reg := metrics.NewRegistry()
	h := metrics.NewHTTP(reg, "x", func(c int) string { return teller.Code(c).String() })
	locked := h.Route("/getLock").Wrap(func(ctx *fasthttp.RequestCtx) {
		wire.WriteError(ctx, fasthttp.StatusOK, teller.LockedAccount, "locked")
	})
	unreported := h.Route("/getSaldo").Wrap(func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyString(`{"error_code":-4}`)
	})
	locked(&fasthttp.RequestCtx{})
	unreported(&fasthttp.RequestCtx{})
	got := map[string]float64{}
	for _, m := range scrape(t, reg)["x_refusals_total"].GetMetric() {
		got[label(m, "code")] = m.GetCounter().GetValue()
	}
	if got["LOCKED_ACCOUNT"] != 1 || got["NOT_FOUND"] != 0 {
		t.Errorf("refusals = %v, want LOCKED_ACCOUNT 1 and NOT_FOUND 0", got)
	}
}

// TestWrapAllocs: a refusal reported and counted allocates nothing once
// the request's buffers are warm (fasthttp reuses them across requests).
func TestWrapAllocs(t *testing.T) {
	h := metrics.NewHTTP(metrics.NewRegistry(), "x", func(c int) string { return teller.Code(c).String() })
	handler := h.Route("/getLock").Wrap(func(ctx *fasthttp.RequestCtx) {
		wire.WriteError(ctx, fasthttp.StatusOK, teller.LockedAccount, "account locked by another id_negoc")
	})
	var ctx fasthttp.RequestCtx
	allocs := testing.AllocsPerRun(100, func() {
		ctx.Response.Reset()
		ctx.ResetUserValues()
		handler(&ctx)
		if c, ok := wire.Refusal(&ctx); !ok || c != teller.LockedAccount {
			t.Fatalf("Refusal = %v, %v", c, ok)
		}
	})
	if allocs != 0 {
		t.Errorf("a reported refusal allocates %v times per request, want 0", allocs)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestMisuse(t *testing.T) {
	for _, c := range []struct {
		name string
		f    func(*metrics.Registry)
	}{
		{"hand-written labels", func(r *metrics.Registry) { r.Counter("x_total", "c", `a="b"`) }},
		{"odd label pairs", func(r *metrics.Registry) { r.Counter("x_total", "c", metrics.Labels("a")) }},
		{"other label names", func(r *metrics.Registry) {
			r.Counter("x_total", "c", metrics.Labels("a", "1"))
			r.Counter("x_total", "c", metrics.Labels("b", "1"))
		}},
		{"other type", func(r *metrics.Registry) {
			r.Counter("x", "c", "")
			r.Histogram("x", "h", "", nil)
		}},
		{"other buckets", func(r *metrics.Registry) {
			r.Histogram("x", "h", metrics.Labels("a", "1"), nil)
			r.Histogram("x", "h", metrics.Labels("a", "2"), []time.Duration{time.Second})
		}},
		{"a collector's name", func(r *metrics.Registry) { r.GaugeFunc("go_goroutines", "g", "", func() float64 { return 0 }) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			c.f(metrics.NewRegistry())
		})
	}
}

func TestAppendText(t *testing.T) {
	reg := metrics.NewRegistry()
	reg.Counter("x_total", "A counter.", "").Add(5)
	text := reg.AppendText([]byte("prefix\n"))
	if !bytes.HasPrefix(text, []byte("prefix\n")) || !bytes.Contains(text, []byte("\nx_total 5\n")) ||
		!bytes.Contains(text, []byte("\n# TYPE go_goroutines gauge\n")) {
		t.Errorf("AppendText:\n%s", text)
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
// same handler bare and wrapped, answering and refusing (the code counted
// as the handler reports it), from parallel callers (the series are
// shared, as on a server).
func BenchmarkWrap(b *testing.B) {
	body := []byte(`{"saldo":1000}`)
	bare := func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }
	refused := func(ctx *fasthttp.RequestCtx) {
		wire.WriteError(ctx, fasthttp.StatusOK, teller.LockedAccount, "account locked by another id_negoc")
	}
	h := metrics.NewHTTP(metrics.NewRegistry(), "x", func(int) string { return "CODE" })
	for _, c := range []struct {
		name    string
		handler fasthttp.RequestHandler
	}{{"bare", bare}, {"instrumented", h.Route("/getSaldo").Wrap(bare)},
		{"refused/bare", refused}, {"refused/instrumented", h.Route("/getLock").Wrap(refused)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				for pb.Next() {
					ctx.Response.Reset()
					ctx.ResetUserValues() // as fasthttp does between requests
					c.handler(&ctx)
				}
			})
		})
	}
}

// BenchmarkScrape is what one /metrics costs, through promhttp bare and
// through fasthttpadaptor as the servers serve it (a data server's
// families: 20 routes).
func BenchmarkScrape(b *testing.B) {
	reg := metrics.NewRegistry()
	h := metrics.NewHTTP(reg, "x", func(int) string { return "CODE" })
	for i := range 20 {
		h.Route("/r" + string(rune('a'+i))).Wrap(func(*fasthttp.RequestCtx) {})(&fasthttp.RequestCtx{})
	}
	b.Run("promhttp", func(b *testing.B) {
		hh := reg.HTTPHandler()
		req, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
		b.ReportAllocs()
		for b.Loop() {
			hh.ServeHTTP(discard{h: http.Header{}}, req)
		}
	})
	b.Run("fasthttpadaptor", func(b *testing.B) {
		fh := reg.Handler()
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/metrics")
		b.ReportAllocs()
		for b.Loop() {
			ctx.Response.Reset()
			fh(&ctx)
		}
	})
}

type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}
