package soak

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bank/gobank/http/metrics"
)

// TestSoakScrape: soak reads a server's unlabelled gauges and counters
// from a real /metrics on loopback, and leaves labelled series out.
func TestSoakScrape(t *testing.T) {
	reg := metrics.NewRegistry()
	reg.GaugeFunc("gobank_data_accounts", "Live account actors.", "", func() float64 { return 7 })
	reg.Counter("gobank_data_lease_expiries_total", "Expiries.", "").Add(3)
	reg.Counter("gobank_data_refusals_total", "Refusals.", metrics.Labels("code", "NOT_FOUND")).Inc()
	srv := httptest.NewServer(reg.HTTPHandler())
	defer srv.Close()
	s := &soak{client: srv.Client(), stderr: io.Discard}
	m, err := s.scrape(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if m["gobank_data_accounts"] != 7 || m["gobank_data_lease_expiries_total"] != 3 || m["go_goroutines"] < 1 {
		t.Errorf("scraped %v", m)
	}
	if _, ok := m["gobank_data_refusals_total"]; ok {
		t.Error("a labelled series read as unlabelled")
	}
	srv.Config.Handler = http.NotFoundHandler()
	if _, err := s.scrape(context.Background(), srv.URL); err == nil {
		t.Error("a 404 scraped without an error")
	}
}
