package liveview

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Gatherer returns the server's metric families: a client_golang
// registry (metrics.Registry.Prometheus) is one.
type Gatherer interface {
	Gather() ([]*dto.MetricFamily, error)
}

// reading is what one Gather gives, reduced to what the page plots.
type reading struct {
	at       time.Time
	requests map[string]float64 // requests answered, by route
	refusals map[string]float64 // by error code's name
	latency  buckets            // every data route but exposition and status
	lockWait buckets
	expiries float64
	actors   float64 // NaN when the family is missing
}

// buckets is a cumulative histogram: counts[i] observations <= bounds[i],
// the last bound +Inf.
type buckets struct {
	bounds []float64
	counts []float64
}

// add adds the histogram h into b (same bounds, as every series of one
// family has).
func (b *buckets) add(h *dto.Histogram) {
	if b.bounds == nil {
		for _, bk := range h.GetBucket() {
			b.bounds = append(b.bounds, bk.GetUpperBound())
		}
		if len(b.bounds) == 0 || !math.IsInf(b.bounds[len(b.bounds)-1], 1) {
			b.bounds = append(b.bounds, math.Inf(1))
		}
		b.counts = make([]float64, len(b.bounds))
	}
	bks := h.GetBucket()
	for i := range b.counts {
		switch {
		case i < len(bks) && bks[i].GetUpperBound() == b.bounds[i]:
			b.counts[i] += float64(bks[i].GetCumulativeCount())
		case math.IsInf(b.bounds[i], 1):
			b.counts[i] += float64(h.GetSampleCount())
		}
	}
}

// since returns b minus an earlier reading of the same histogram.
func (b buckets) since(prev buckets) buckets {
	if len(prev.counts) != len(b.counts) {
		return b
	}
	d := buckets{bounds: b.bounds, counts: make([]float64, len(b.counts))}
	for i := range b.counts {
		d.counts[i] = max(0, b.counts[i]-prev.counts[i])
	}
	return d
}

// total returns the number of observations.
func (b buckets) total() float64 {
	if len(b.counts) == 0 {
		return 0
	}
	return b.counts[len(b.counts)-1]
}

// quantile estimates quantile q as Prometheus' histogram_quantile does:
// linear within the bucket that holds it; the highest finite bound when it
// falls in +Inf. NaN when there are no observations.
func (b buckets) quantile(q float64) float64 {
	n := b.total()
	if n == 0 {
		return math.NaN()
	}
	rank := q * n
	lower, below := 0.0, 0.0
	for i, c := range b.counts {
		if c >= rank {
			if math.IsInf(b.bounds[i], 1) {
				return lower
			}
			if c == below {
				return b.bounds[i]
			}
			return lower + (b.bounds[i]-lower)*(rank-below)/(c-below)
		}
		lower, below = b.bounds[i], c
	}
	return lower
}

// routesLeftOut are routes whose latency is not the bank's: the
// exposition, the liveness probe and unmatched paths.
var routesLeftOut = map[string]bool{"/metrics": true, "/status": true, "unmatched": true}

// read reduces the families of server prefix (e.g. "gobank_data").
func read(fams []*dto.MetricFamily, prefix string, at time.Time) reading {
	r := reading{at: at, requests: map[string]float64{}, refusals: map[string]float64{}, actors: math.NaN()}
	for _, f := range fams {
		switch f.GetName() {
		case prefix + "_http_requests_total":
			for _, m := range f.GetMetric() {
				r.requests[label(m, "route")] += m.GetCounter().GetValue()
			}
		case prefix + "_refusals_total":
			for _, m := range f.GetMetric() {
				r.refusals[label(m, "code")] += m.GetCounter().GetValue()
			}
		case prefix + "_http_request_duration_seconds":
			for _, m := range f.GetMetric() {
				if !routesLeftOut[label(m, "route")] {
					r.latency.add(m.GetHistogram())
				}
			}
		case prefix + "_lock_wait_seconds":
			for _, m := range f.GetMetric() {
				r.lockWait.add(m.GetHistogram())
			}
		case prefix + "_lease_expiries_total":
			for _, m := range f.GetMetric() {
				r.expiries += m.GetCounter().GetValue()
			}
		case prefix + "_accounts":
			for _, m := range f.GetMetric() {
				r.actors = m.GetGauge().GetValue()
			}
		}
	}
	return r
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// point is one second of the time series: rates over the interval since
// the previous reading, and quantiles of what was observed in it.
type point struct {
	at         time.Time
	requests   map[string]float64 // per second, by route
	refusals   map[string]float64 // per second, by code
	p50, p99   float64            // request latency, seconds; NaN: no request
	lockGrants float64            // granted getLocks per second
	lockP99    float64            // their wait, seconds; NaN: none
	expiries   float64            // per second
	actors     float64
}

// rate returns the point between two readings.
func rate(prev, cur reading) point {
	dt := cur.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		dt = 1
	}
	p := point{at: cur.at, requests: map[string]float64{}, refusals: map[string]float64{}, actors: cur.actors}
	for k, v := range cur.requests {
		if d := v - prev.requests[k]; d > 0 {
			p.requests[k] = d / dt
		}
	}
	for k, v := range cur.refusals {
		if d := v - prev.refusals[k]; d > 0 {
			p.refusals[k] = d / dt
		}
	}
	lat := cur.latency.since(prev.latency)
	p.p50, p.p99 = lat.quantile(0.5), lat.quantile(0.99)
	lw := cur.lockWait.since(prev.lockWait)
	p.lockGrants = lw.total() / dt
	p.lockP99 = lw.quantile(0.99)
	p.expiries = max(0, cur.expiries-prev.expiries) / dt
	return p
}

// ring keeps the last points, oldest first once full.
type ring struct {
	points []point
	next   int
	full   bool
}

func newRing(n int) *ring { return &ring{points: make([]point, n)} }

func (r *ring) add(p point) {
	r.points[r.next] = p
	r.next++
	if r.next == len(r.points) {
		r.next, r.full = 0, true
	}
}

// all returns the points, oldest first.
func (r *ring) all() []point {
	if !r.full {
		return slices.Clone(r.points[:r.next])
	}
	return append(slices.Clone(r.points[r.next:]), r.points[:r.next]...)
}

// num is a number for JSON: NaN and infinities are null.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 6, 64), nil
}

// seriesJSON is /api/series: columns aligned on t (Unix seconds).
type seriesJSON struct {
	IntervalMS int64            `json:"interval_ms"`
	T          []int64          `json:"t"`
	Requests   map[string][]num `json:"requests"` // per second, by route
	Refusals   map[string][]num `json:"refusals"` // per second, by code
	P50MS      []num            `json:"p50_ms"`
	P99MS      []num            `json:"p99_ms"`
	LockGrants []num            `json:"lock_grants"` // per second
	LockP99MS  []num            `json:"lock_wait_p99_ms"`
	Expiries   []num            `json:"lease_expiries"` // per second
	Actors     []num            `json:"actors"`
}

// columns lays points out for the page. A route or code appears once it
// has moved within the window; before that its values are 0.
func columns(pts []point, interval time.Duration) seriesJSON {
	s := seriesJSON{IntervalMS: interval.Milliseconds(), T: make([]int64, len(pts)),
		Requests: map[string][]num{}, Refusals: map[string][]num{},
		P50MS: make([]num, len(pts)), P99MS: make([]num, len(pts)), LockGrants: make([]num, len(pts)),
		LockP99MS: make([]num, len(pts)), Expiries: make([]num, len(pts)), Actors: make([]num, len(pts))}
	col := func(m map[string][]num, k string) []num {
		c, ok := m[k]
		if !ok {
			c = make([]num, len(pts))
			m[k] = c
		}
		return c
	}
	for i, p := range pts {
		s.T[i] = p.at.Unix()
		for k, v := range p.requests {
			if !routesLeftOut[k] {
				col(s.Requests, strings.TrimPrefix(k, "/"))[i] = num(v)
			}
		}
		for k, v := range p.refusals {
			col(s.Refusals, k)[i] = num(v)
		}
		s.P50MS[i], s.P99MS[i] = num(p.p50*1e3), num(p.p99*1e3)
		s.LockGrants[i], s.LockP99MS[i] = num(p.lockGrants), num(p.lockP99*1e3)
		s.Expiries[i], s.Actors[i] = num(p.expiries), num(p.actors)
	}
	return s
}
