// Package metrics is the servers' instrumentation: counters, gauges and
// histograms whose series are all resolved when a server starts, so that
// the hot path never looks a label up (an observation is one or two
// atomic adds), and an exposition of them in Prometheus' text format
// (version 0.0.4) served on /metrics.
//
// It is hand-written rather than built on client_golang: a client_golang
// histogram observation costs about as much as ours, but its registry,
// label vectors and protobuf-based exposition would add allocations to a
// scrape and a dependency to both servers for no gain.
package metrics

import (
	"bytes"
	"math"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// DefaultBuckets are latency bucket bounds, from 50 µs to 10 s.
var DefaultBuckets = []time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// Histogram counts durations into buckets (upper bounds inclusive, as
// Prometheus' le) and keeps their sum.
type Histogram struct {
	bounds []time.Duration
	counts []atomic.Uint64 // one per bound, then +Inf; not cumulative
	sum    atomic.Int64    // nanoseconds
}

// NewHistogram returns a histogram with bucket bounds (ascending); nil
// means DefaultBuckets.
func NewHistogram(bounds []time.Duration) *Histogram {
	if bounds == nil {
		bounds = DefaultBuckets
	}
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe records d.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Since records the time elapsed since start.
func (h *Histogram) Since(start time.Time) { h.Observe(time.Since(start)) }

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Registry holds metric families in registration order and writes them in
// the text exposition format. Registration is for start-up; Write may run
// concurrently with observations.
type Registry struct {
	mu       sync.Mutex
	families []*family
	byName   map[string]*family
}

// NewRegistry returns a registry holding only go_goroutines (read at each scrape).
func NewRegistry() *Registry {
	r := &Registry{byName: map[string]*family{}}
	r.GaugeFunc("go_goroutines", "Number of goroutines that currently exist.", "", func() float64 { return float64(runtime.NumGoroutine()) })
	return r
}

type family struct {
	name, help, typ string
	series          []series
}

type series struct {
	labels  string // `a="x",b="y"`, already escaped
	counter *Counter
	gauge   func() float64
	hist    *Histogram
	// skipZero leaves a counter that never moved out of the exposition,
	// for series that exist only to be resolved ahead of time.
	skipZero bool
}

func (r *Registry) family(name, help, typ string) *family {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.byName[name]
	if f == nil {
		f = &family{name: name, help: help, typ: typ}
		r.byName[name] = f
		r.families = append(r.families, f)
	}
	if f.typ != typ {
		panic("metrics: " + name + " registered as " + f.typ + " and " + typ)
	}
	return f
}

func (r *Registry) add(name, help, typ string, s series) {
	f := r.family(name, help, typ)
	r.mu.Lock()
	f.series = append(f.series, s)
	r.mu.Unlock()
}

// Labels formats label pairs (name, value, name, value...) for the
// exposition, escaping values.
func Labels(pairs ...string) string {
	var b []byte
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, pairs[i]...)
		b = append(b, '=', '"')
		for _, c := range []byte(pairs[i+1]) {
			switch c {
			case '\\':
				b = append(b, `\\`...)
			case '"':
				b = append(b, `\"`...)
			case '\n':
				b = append(b, `\n`...)
			default:
				b = append(b, c)
			}
		}
		b = append(b, '"')
	}
	return string(b)
}

// Counter registers and returns a counter series of family name.
func (r *Registry) Counter(name, help, labels string) *Counter {
	c := &Counter{}
	r.add(name, help, "counter", series{labels: labels, counter: c})
	return c
}

// sparseCounter registers a counter left out of the exposition while zero.
func (r *Registry) sparseCounter(name, help, labels string) *Counter {
	c := &Counter{}
	r.add(name, help, "counter", series{labels: labels, counter: c, skipZero: true})
	return c
}

// GaugeFunc registers a gauge whose value f returns at each scrape.
func (r *Registry) GaugeFunc(name, help, labels string, f func() float64) {
	r.add(name, help, "gauge", series{labels: labels, gauge: f})
}

// Histogram registers and returns a histogram series of family name
// (bounds: see NewHistogram).
func (r *Registry) Histogram(name, help, labels string, bounds []time.Duration) *Histogram {
	h := NewHistogram(bounds)
	r.add(name, help, "histogram", series{labels: labels, hist: h})
	return h
}

// AppendText appends the exposition of every family.
func (r *Registry) AppendText(b []byte) []byte {
	r.mu.Lock()
	families := append([]*family(nil), r.families...)
	r.mu.Unlock()
	for _, f := range families {
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, f.help...)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, f.typ...)
		b = append(b, '\n')
		for _, s := range f.series {
			switch {
			case s.counter != nil:
				v := s.counter.Value()
				if v == 0 && s.skipZero {
					continue
				}
				b = appendSample(b, f.name, "", s.labels, "", "")
				b = strconv.AppendUint(b, v, 10)
				b = append(b, '\n')
			case s.gauge != nil:
				b = appendSample(b, f.name, "", s.labels, "", "")
				b = appendFloat(b, s.gauge())
				b = append(b, '\n')
			case s.hist != nil:
				b = appendHistogram(b, f.name, s.labels, s.hist)
			}
		}
	}
	return b
}

func appendSample(b []byte, name, suffix, labels, extraName, extraValue string) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if labels != "" || extraName != "" {
		b = append(b, '{')
		b = append(b, labels...)
		if extraName != "" {
			if labels != "" {
				b = append(b, ',')
			}
			b = append(b, extraName...)
			b = append(b, `="`...)
			b = append(b, extraValue...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, ' ')
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func appendHistogram(b []byte, name, labels string, h *Histogram) []byte {
	// Read the buckets once; the count is their sum, so that the
	// exposition is consistent even while observations go on.
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		le := "+Inf"
		if i < len(h.bounds) {
			le = strconv.FormatFloat(h.bounds[i].Seconds(), 'g', -1, 64)
		}
		b = appendSample(b, name, "_bucket", labels, "le", le)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	b = appendSample(b, name, "_sum", labels, "", "")
	b = appendFloat(b, time.Duration(h.sum.Load()).Seconds())
	b = append(b, '\n')
	b = appendSample(b, name, "_count", labels, "", "")
	b = strconv.AppendUint(b, cum, 10)
	return append(b, '\n')
}

// ContentType is the exposition's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves the registry's exposition.
func (r *Registry) Handler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType(ContentType)
		ctx.SetBody(r.AppendText(make([]byte, 0, 16<<10)))
	}
}

// statuses are the HTTP statuses the servers answer; any other is counted
// as "other".
var statuses = [...]int{200, 400, 401, 403, 404, 405, 409, 413, 422, 431, 500, 501, 503}

func statusIndex(code int) int {
	switch code {
	case 200:
		return 0
	case 400:
		return 1
	case 401:
		return 2
	case 403:
		return 3
	case 404:
		return 4
	case 405:
		return 5
	case 409:
		return 6
	case 413:
		return 7
	case 422:
		return 8
	case 431:
		return 9
	case 500:
		return 10
	case 501:
		return 11
	case 503:
		return 12
	}
	return len(statuses)
}

// minCode is the lowest error code of the contract (wire.KeyReused); codes
// run from -1 down to it.
const minCode = -13

// HTTP instruments a server's routes: requests by route and status,
// latency per route, and refusals by error code (read from the answer's
// body, {"error_code":N,...}, so that handlers need no calls of their own).
type HTTP struct {
	reg      *Registry
	prefix   string
	refusals [-minCode + 2]*Counter // by -code; the last: unknown codes
	mu       sync.Mutex
	routes   map[string]*Route
}

// NewHTTP registers the families of server prefix (e.g. "gobank_data") in
// reg. codeName names an error code (wire.Code.String).
func NewHTTP(reg *Registry, prefix string, codeName func(code int) string) *HTTP {
	h := &HTTP{reg: reg, prefix: prefix, routes: map[string]*Route{}}
	for i := range h.refusals {
		name := "UNKNOWN_ERROR"
		if i >= 1 && i <= -minCode {
			name = codeName(-i)
		}
		if i == 0 {
			continue
		}
		h.refusals[i] = reg.Counter(prefix+"_refusals_total",
			"Answers carrying an error_code, by the code's name (domain refusals and protocol errors alike).",
			Labels("code", name))
	}
	h.refusals[0] = h.refusals[len(h.refusals)-1]
	return h
}

// Registry returns the registry h registers in.
func (h *HTTP) Registry() *Registry { return h.reg }

// Refusals returns the counter of error code code.
func (h *HTTP) Refusals(code int) *Counter {
	if code < minCode || code >= 0 {
		return h.refusals[len(h.refusals)-1]
	}
	return h.refusals[-code]
}

// Route holds one route's series.
type Route struct {
	h        *HTTP
	statuses [len(statuses) + 1]*Counter
	latency  *Histogram
}

// Route returns the series of route name (e.g. "/getSaldo"), registering
// them on first use. Call it at start-up, not per request.
func (h *HTTP) Route(name string) *Route {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rt := h.routes[name]; rt != nil {
		return rt
	}
	rt := &Route{h: h}
	h.routes[name] = rt
	for i := range rt.statuses {
		code := "other"
		if i < len(statuses) {
			code = strconv.Itoa(statuses[i])
		}
		rt.statuses[i] = h.reg.sparseCounter(h.prefix+"_http_requests_total",
			"Requests answered, by route and HTTP status.", Labels("route", name, "status", code))
	}
	rt.latency = h.reg.Histogram(h.prefix+"_http_request_duration_seconds",
		"Time from the request's routing to its answer, by route.", Labels("route", name), nil)
	return rt
}

// Wrap returns next instrumented as rt.
func (rt *Route) Wrap(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Now()
		next(ctx)
		rt.latency.Since(start)
		rt.statuses[statusIndex(ctx.Response.StatusCode())].Inc()
		if code, ok := errorCode(ctx.Response.Body()); ok {
			rt.h.Refusals(code).Inc()
		}
	}
}

var errorPrefix = []byte(`{"error_code":`)

// errorCode reads N from a body that starts {"error_code":N.
func errorCode(body []byte) (int, bool) {
	if !bytes.HasPrefix(body, errorPrefix) {
		return 0, false
	}
	body = body[len(errorPrefix):]
	neg := len(body) > 0 && body[0] == '-'
	if neg {
		body = body[1:]
	}
	n, digits := 0, 0
	for _, c := range body {
		if c < '0' || c > '9' || digits > 6 {
			break
		}
		n = n*10 + int(c-'0')
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// Names returns the names of the families registered, sorted; for tests.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.families))
	for _, f := range r.families {
		names = append(names, f.name)
	}
	sort.Strings(names)
	return names
}
