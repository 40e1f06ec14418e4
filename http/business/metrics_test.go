package business_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/metrics"
)

// scrape reads url's /metrics over HTTP, without a token, and parses it
// with Prometheus' expfmt (metrics.Parse).
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	r := do(t, http.MethodGet, url+"/metrics", "")
	if r.status != http.StatusOK || !strings.HasPrefix(r.contentType, "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %q", r.status, r.contentType)
	}
	fams, err := metrics.Parse(strings.NewReader(r.body), r.contentType)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, r.body)
	}
	return fams
}

// sample returns the value of family name's series with the labels
// (name, value pairs): a counter's or gauge's value, a histogram's count.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

func TestMetrics(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	biz := startBusiness(t, data, businesstest.Options{})
	const transfer = "/transferencia/{conta_orig}/{conta_dest}/{valor}"

	d0, b0 := scrape(t, data.URL), scrape(t, biz.URL)
	if got := sample(d0, "gobank_data_accounts"); got != 10 {
		t.Errorf("gobank_data_accounts = %v, want 10", got)
	}
	for _, name := range []string{"gobank_data_http_requests_total", "gobank_data_http_request_duration_seconds",
		"gobank_data_refusals_total", "gobank_data_lock_wait_seconds", "gobank_data_lock_hold_seconds",
		"gobank_data_lease_expiries_total", "gobank_data_store_commit_seconds"} {
		if d0[name] == nil {
			t.Errorf("data server: no %s", name)
		}
	}
	for _, name := range []string{"gobank_business_http_request_duration_seconds", "gobank_business_refusals_total",
		"gobank_business_data_call_duration_seconds"} {
		if b0[name] == nil {
			t.Errorf("business server: no %s", name)
		}
	}

	if r := get(t, biz.URL+"/transferencia/1/2/10"); r.status != http.StatusOK {
		t.Fatalf("transfer: %d %s", r.status, r.body)
	}
	wantError(t, get(t, biz.URL+"/saque/1/1000000"), http.StatusConflict, -6)
	// A refusal of the data server's own, and a lease that runs out.
	if r := do(t, http.MethodGet, data.URL+"/getSaldo?conta=99", data.ServerToken); !strings.Contains(r.body, `"error_code":-4`) {
		t.Fatalf("getSaldo of no account: %s", r.body)
	}
	if r := do(t, http.MethodGet, data.URL+"/getLock?id_negoc=x&conta=5&ttl=20ms", data.ServerToken); r.status != http.StatusOK {
		t.Fatalf("getLock: %d %s", r.status, r.body)
	}
	var d1, b1 map[string]*dto.MetricFamily
	deadline := time.Now().Add(5 * time.Second)
	for {
		d1, b1 = scrape(t, data.URL), scrape(t, biz.URL)
		if sample(d1, "gobank_data_lease_expiries_total") >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	moved := func(name string, before, after map[string]*dto.MetricFamily, min float64, labels ...string) {
		t.Helper()
		if d := sample(after, name, labels...) - sample(before, name, labels...); d < min {
			t.Errorf("%s%q moved by %v, want >= %v", name, labels, d, min)
		}
	}
	moved("gobank_business_http_requests_total", b0, b1, 1, "route", transfer, "status", "200")
	moved("gobank_business_http_requests_total", b0, b1, 1, "route", "/saque/{conta}/{valor}", "status", "409")
	moved("gobank_business_http_request_duration_seconds", b0, b1, 1, "route", transfer)
	moved("gobank_business_refusals_total", b0, b1, 1, "code", "INSUFFICIENT_FUNDS")
	moved("gobank_business_data_call_duration_seconds", b0, b1, 2, "route", "/getLocks") // the transfer's, the withdrawal's (ModeWait names its operations)
	moved("gobank_business_data_call_duration_seconds", b0, b1, 1, "route", "/commit")
	moved("gobank_data_http_requests_total", d0, d1, 1, "route", "/getLock", "status", "200") // this test's own
	moved("gobank_data_http_requests_total", d0, d1, 2, "route", "/getLocks", "status", "200")
	moved("gobank_data_refusals_total", d0, d1, 1, "code", "NOT_FOUND")
	moved("gobank_data_lock_wait_seconds", d0, d1, 3)
	moved("gobank_data_lock_hold_seconds", d0, d1, 4) // three released, one expired
	moved("gobank_data_lease_expiries_total", d0, d1, 1)
	moved("gobank_data_store_commit_seconds", d0, d1, 1)
	if d := sample(b1, "gobank_business_refusals_total", "code", "LOCKED_ACCOUNT") - sample(b0, "gobank_business_refusals_total", "code", "LOCKED_ACCOUNT"); d != 0 {
		t.Errorf("LOCKED_ACCOUNT refusals moved by %v, want 0", d)
	}

	// Every series of README's table, with its type and label names, on
	// the server that documents it; and the Go and process collectors'.
	for _, c := range []struct {
		server string
		name   string
		typ    dto.MetricType
		labels []string
	}{
		{"data", "gobank_data_http_requests_total", dto.MetricType_COUNTER, []string{"route", "status"}},
		{"data", "gobank_data_http_request_duration_seconds", dto.MetricType_HISTOGRAM, []string{"route"}},
		{"data", "gobank_data_refusals_total", dto.MetricType_COUNTER, []string{"code"}},
		{"data", "gobank_data_lock_wait_seconds", dto.MetricType_HISTOGRAM, nil},
		{"data", "gobank_data_lock_hold_seconds", dto.MetricType_HISTOGRAM, nil},
		{"data", "gobank_data_lease_expiries_total", dto.MetricType_COUNTER, nil},
		{"data", "gobank_data_store_commit_seconds", dto.MetricType_HISTOGRAM, nil},
		{"data", "gobank_data_accounts", dto.MetricType_GAUGE, nil},
		{"business", "gobank_business_http_requests_total", dto.MetricType_COUNTER, []string{"route", "status"}},
		{"business", "gobank_business_http_request_duration_seconds", dto.MetricType_HISTOGRAM, []string{"route"}},
		{"business", "gobank_business_refusals_total", dto.MetricType_COUNTER, []string{"code"}},
		{"business", "gobank_business_data_call_duration_seconds", dto.MetricType_HISTOGRAM, []string{"route"}},
		{"data", "go_goroutines", dto.MetricType_GAUGE, nil},
		{"business", "go_goroutines", dto.MetricType_GAUGE, nil},
		{"data", "go_memstats_heap_alloc_bytes", dto.MetricType_GAUGE, nil},
		{"business", "go_gc_duration_seconds", dto.MetricType_SUMMARY, nil},
		{"data", "process_cpu_seconds_total", dto.MetricType_COUNTER, nil},
		{"business", "process_resident_memory_bytes", dto.MetricType_GAUGE, nil},
	} {
		fams := d1
		if c.server == "business" {
			fams = b1
		}
		f := fams[c.name]
		if f == nil {
			t.Errorf("%s server: no %s", c.server, c.name)
			continue
		}
		if f.GetType() != c.typ {
			t.Errorf("%s: %v, want %v", c.name, f.GetType(), c.typ)
		}
		for _, m := range f.GetMetric() {
			var names []string
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
			}
			if !slices.Equal(names, c.labels) {
				t.Errorf("%s: labels %q, want %q", c.name, names, c.labels)
				break
			}
		}
	}

	h := d1["gobank_data_http_request_duration_seconds"].GetMetric()
	for _, m := range h {
		if n := len(m.GetHistogram().GetBucket()); n < 10 {
			t.Errorf("latency histogram with %d buckets", n)
		}
	}
}
