package dataclient

import (
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/wire"
)

// callRoutes are the data routes a Client calls.
var callRoutes = [...]string{wire.RouteAutentica, wire.RouteGetLock, wire.RouteUnLock, wire.RouteGetSaldo,
	wire.RouteSetSaldo, wire.RouteCommit, wire.RouteIdem, wire.RouteGetLocks}

// callMetrics holds a Client's latency histograms, one per data route,
// resolved when the client is built.
type callMetrics struct {
	byRoute [len(callRoutes) + 1]*metrics.Histogram // the last: any other route
}

func newCallMetrics(reg *metrics.Registry) *callMetrics {
	m := &callMetrics{}
	for i := range m.byRoute {
		name := "other"
		if i < len(callRoutes) {
			name = callRoutes[i]
		}
		m.byRoute[i] = reg.Histogram("gobank_business_data_call_duration_seconds",
			"Latency of calls to the data server, by data route (failed calls included).",
			metrics.Labels("route", name), nil)
	}
	return m
}

// route returns route's histogram without a lookup: route is one of the
// wire.Route constants.
func (m *callMetrics) route(route string) *metrics.Histogram {
	switch route {
	case wire.RouteAutentica:
		return m.byRoute[0]
	case wire.RouteGetLock:
		return m.byRoute[1]
	case wire.RouteUnLock:
		return m.byRoute[2]
	case wire.RouteGetSaldo:
		return m.byRoute[3]
	case wire.RouteSetSaldo:
		return m.byRoute[4]
	case wire.RouteCommit:
		return m.byRoute[5]
	case wire.RouteIdem:
		return m.byRoute[6]
	case wire.RouteGetLocks:
		return m.byRoute[7]
	}
	return m.byRoute[len(callRoutes)]
}
