package dataserver

import (
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/metrics"
)

// RouteMetrics serves the Prometheus exposition; it needs no token.
const RouteMetrics = "/metrics"

// Metric families of the data server beside the per-route ones of package
// metrics (gobank_data_http_requests_total, ..._http_request_duration_seconds,
// gobank_data_refusals_total).
const (
	metricLockWait = "gobank_data_lock_wait_seconds"
	metricLockHold = "gobank_data_lock_hold_seconds"
	metricExpiries = "gobank_data_lease_expiries_total"
	metricStore    = "gobank_data_store_commit_seconds"
	metricAccounts = "gobank_data_accounts"
	// The embedded store's condition (see store.Pebble).
	metricStoreErrors = "gobank_data_store_background_errors_total"
	metricDiskFull    = "gobank_data_store_disk_full"
)

// serverMetrics are the series the handlers update.
type serverMetrics struct {
	reg      *metrics.Registry
	http     *metrics.HTTP
	lockWait *metrics.Histogram
}

func newServerMetrics(reg *metrics.Registry, accounts Accounts) *serverMetrics {
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	m := &serverMetrics{
		reg:  reg,
		http: metrics.NewHTTP(reg, "gobank_data", func(c int) string { return teller.Code(c).String() }),
		lockWait: reg.Histogram(metricLockWait,
			"Time from a getLock's arrival to its grant (granted getLocks only).", "", nil),
	}
	if n, ok := accounts.(interface{ Len() int }); ok {
		reg.GaugeFunc(metricAccounts, "Live account actors.", "", func() float64 { return float64(n.Len()) })
	}
	return m
}

// NewObserver registers in reg the series the account actors update (lock
// hold times, lease expiries, store commit latency) and returns the
// observer to give actors.Config.
func NewObserver(reg *metrics.Registry) actors.Observer {
	return &observer{
		hold: reg.Histogram(metricLockHold,
			"Time a lock grant stayed in force, from grant to release, passing on or expiry.", "", nil),
		expiries: reg.Counter(metricExpiries, "Lock grants ended by their lease running out.", ""),
		store: reg.Histogram(metricStore,
			"Time of one durable store commit (a setSaldo's or a /commit's batch).", "", nil),
	}
}

// NewStoreErrors registers in reg the counter of the store's failed
// background jobs (flushes, compactions), for store.CountBackgroundErrors.
func NewStoreErrors(reg *metrics.Registry) *metrics.Counter {
	return reg.Counter(metricStoreErrors,
		"Background jobs of the store (flushes, compactions) that failed; the store retries them with backoff.", "")
}

// RegisterDiskFull registers in reg the gauge that is 1 while full says
// the store's disk is full (writes are refused with 503), 0 otherwise.
func RegisterDiskFull(reg *metrics.Registry, full func() bool) {
	reg.GaugeFunc(metricDiskFull, "1 while the store's disk is too full for it: writes are refused (503).", "",
		func() float64 {
			if full() {
				return 1
			}
			return 0
		})
}

type observer struct {
	hold     *metrics.Histogram
	expiries *metrics.Counter
	store    *metrics.Histogram
}

func (o *observer) LockHeld(d time.Duration)    { o.hold.Observe(d) }
func (o *observer) LeaseExpired()               { o.expiries.Inc() }
func (o *observer) StoreCommit(d time.Duration) { o.store.Observe(d) }

// Metrics returns the registry the server's metrics are kept in.
func (s *Server) Metrics() *metrics.Registry { return s.m.reg }
