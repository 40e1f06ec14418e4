package liveview

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/wire"
)

func TestQuantile(t *testing.T) {
	b := buckets{bounds: []float64{0.001, 0.01, 0.1, math.Inf(1)}}
	for _, c := range []struct {
		name   string
		counts []float64
		q      float64
		want   float64
	}{
		{"empty", []float64{0, 0, 0, 0}, 0.5, math.NaN()},
		{"all in the first bucket: linear from 0", []float64{10, 10, 10, 10}, 0.5, 0.0005},
		{"in the second bucket", []float64{50, 100, 100, 100}, 0.99, 0.001 + 0.009*(99-50)/50.0},
		{"in +Inf: the highest finite bound", []float64{0, 0, 0, 4}, 0.5, 0.1},
		{"at a bucket's edge", []float64{50, 100, 100, 100}, 0.5, 0.001},
	} {
		b.counts = c.counts
		got := b.quantile(c.q)
		if math.IsNaN(c.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-c.want) > 1e-12) {
			t.Errorf("%s: quantile(%v) = %v, want %v", c.name, c.q, got, c.want)
		}
	}
}

// TestRateFromRegistry samples a real registry, as the data
// server's view does, and checks the rates and
// quantiles of one interval.
func TestRateFromRegistry(t *testing.T) {
	reg := metrics.NewRegistry()
	h := metrics.NewHTTP(reg, "gobank_data", func(c int) string { return teller.Code(c).String() })
	lock := reg.Histogram("gobank_data_lock_wait_seconds", "waits", "", nil)
	reg.GaugeFunc("gobank_data_accounts", "actors", "", func() float64 { return 10 })
	get := h.Route("/getSaldo")
	metricsRoute := h.Route("/metrics")
	g := reg.Prometheus()
	read0 := func(at time.Time) reading {
		fams, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		return read(fams, "gobank_data", at)
	}
	t0 := time.Unix(1000, 0)
	r0 := read0(t0)

	serve := func(rt *metrics.Route, body string, n int) {
		for range n {
			var ctx fasthttp.RequestCtx
			rt.Wrap(func(ctx *fasthttp.RequestCtx) {
				ctx.SetBodyString(body)
				if code, ok := wire.BodyCode([]byte(body)); ok {
					wire.SetRefusal(ctx, code) // as wire.WriteError does
				}
			})(&ctx)
		}
	}
	serve(get, `{"saldo":1}`, 30)
	serve(get, `{"error_code":-1,"error":"x"}`, 10)
	serve(metricsRoute, "", 5)
	for range 99 {
		lock.Observe(200 * time.Microsecond)
	}
	lock.Observe(3 * time.Second)
	p := rate(r0, read0(t0.Add(2*time.Second)))

	if got := p.requests["/getSaldo"]; got != 20 {
		t.Errorf("getSaldo: %v/s, want 20 (40 in 2 s)", got)
	}
	if got := p.refusals["LOCKED_ACCOUNT"]; got != 5 {
		t.Errorf("refusals of code -1: %v/s, want 5; all: %v", got, p.refusals)
	}
	if got := p.lockGrants; got != 50 {
		t.Errorf("lock grants: %v/s, want 50", got)
	}
	// 99 of 100 waits in (100 µs, 250 µs]: the p99 is that bucket's top.
	if got := p.lockP99; math.Abs(got-250e-6) > 1e-9 {
		t.Errorf("lock wait p99 = %v s, want 250 µs", got)
	}
	if p.actors != 10 {
		t.Errorf("actors = %v, want 10", p.actors)
	}
	if math.IsNaN(p.p50) || p.p50 > 0.01 {
		t.Errorf("request p50 = %v s, want a small number", p.p50)
	}
	s := columns([]point{p}, time.Second)
	if _, ok := s.Requests["metrics"]; ok {
		t.Error("the /metrics route is plotted with the bank's routes")
	}
	if len(s.Requests["getSaldo"]) != 1 || s.T[0] != 1002 {
		t.Errorf("columns: %+v", s)
	}
	// No observation: null, not NaN (which encoding/json refuses).
	empty := rate(r0, r0)
	b, err := json.Marshal(columns([]point{empty}, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"p99_ms":[null]`) {
		t.Errorf("an interval without requests: %s, want p99_ms null", b)
	}
}

func TestRing(t *testing.T) {
	r := newRing(3)
	for i := range 5 {
		r.add(point{at: time.Unix(int64(i), 0)})
	}
	var got []int64
	for _, p := range r.all() {
		got = append(got, p.at.Unix())
	}
	if len(got) != 3 || got[0] != 2 || got[2] != 4 {
		t.Errorf("ring of 3 after 5 points: %v, want [2 3 4]", got)
	}
}

func TestHostAllowed(t *testing.T) {
	for _, c := range []struct {
		host, allowed string
		want          bool
	}{
		{"127.0.0.1:5100", "", true},
		{"[::1]:5100", "", true},
		{"localhost:5100", "", true},
		{"LOCALHOST", "", true},
		{"10.1.2.3:80", "", true},
		{"evil.example:5100", "", false},        // a rebound name
		{"bank.local:5100", "bank.local", true}, // the name the view was asked to listen on
		{"", "", false},
	} {
		if got := hostAllowed(c.host, c.allowed); got != c.want {
			t.Errorf("hostAllowed(%q, %q) = %v, want %v", c.host, c.allowed, got, c.want)
		}
	}
}

// newView returns a view of real account actors, without metrics.
func newView(t *testing.T, accounts int) (*View, *actors.Bank) {
	t.Helper()
	b, err := actors.New(actors.Config{Accounts: accounts, InitialBalance: 100, Synchronous: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	v, err := New(Config{Accounts: b, Title: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v, b
}

func TestHottestFirst(t *testing.T) {
	v, b := newView(t, 6)
	for range 5 {
		_, _ = b.Do(4, actors.Request{Op: actors.OpRead})
	}
	for range 2 {
		_, _ = b.Do(2, actors.Request{Op: actors.OpRead})
	}
	v.sample(time.Now()) // the first sample after New's: a second of heat
	ids, _, _, active := v.hottest(4)
	if want := []int64{4, 2, 1, 3}; !equal(ids, want) || active != 2 {
		t.Errorf("hottest(4) = %v (%d active), want %v: the hot ones, then the lowest ids (2 active)", ids, active, want)
	}
	if ids, _, _, _ := v.hottest(1); !equal(ids, []int64{4}) {
		t.Errorf("hottest(1) = %v, want [4]", ids)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHandler(t *testing.T) {
	v, b := newView(t, 3)
	if _, err := b.Do(2, actors.Request{Op: actors.OpLock, Holder: "bs:5001", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(v.Handler(""))
	t.Cleanup(srv.Close)
	do := func(method, path, host string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	resp, body := do("GET", "/", "")
	if resp.StatusCode != 200 || !strings.Contains(body, "app.js") {
		t.Fatalf("GET /: %d %.200s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy %q", csp)
	}
	for _, f := range []string{"/app.js", "/style.css", "/vendor/uPlot.iife.min.js", "/vendor/uPlot.min.css"} {
		if resp, _ := do("GET", f, ""); resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", f, resp.StatusCode)
		}
	}

	resp, body = do("GET", "/api/accounts?limit=2", "")
	var got accountsJSON
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/accounts: %d %s (%v)", resp.StatusCode, body, err)
	}
	if got.Total != 3 || len(got.Accounts) != 2 || got.Title != "test" {
		t.Fatalf("/api/accounts?limit=2: %+v", got)
	}
	// Account 2 is the hot one once sampled; before that, ids in order.
	a := got.Accounts[1]
	if a.Conta != 2 || a.Saldo != 100 || a.Holder != "bs:5001" || a.Fence == 0 || a.LeaseMS <= 0 || a.LeaseMS > 60000 {
		t.Errorf("account 2 = %+v, want balance 100 held by bs:5001 with a fence and a lease", a)
	}

	for _, c := range []struct {
		method, path, host string
		status             int
	}{
		{"GET", "/api/accounts?limit=0", "", 400},
		{"GET", "/api/accounts?limit=100000", "", 400},
		{"GET", "/api/accounts?limit=x", "", 400},
		{"POST", "/api/accounts", "", 405},
		{"GET", "/api/nothing", "", 404},
		{"GET", "/", "rebound.example", http.StatusMisdirectedRequest},
		{"GET", "/api/series", "", 200},
	} {
		if resp, body := do(c.method, c.path, c.host); resp.StatusCode != c.status {
			t.Errorf("%s %s (Host %q): %d %.100s, want %d", c.method, c.path, c.host, resp.StatusCode, body, c.status)
		}
	}
}

func TestServeLoopback(t *testing.T) {
	b, err := actors.New(actors.Config{Accounts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := Serve(ctx, "127.0.0.1:0", Config{Accounts: b})
	if err != nil {
		t.Fatal(err)
	}
	if !IsLoopback(addr) {
		t.Errorf("IsLoopback(%q) = false", addr)
	}
	for _, a := range []string{"0.0.0.0:5100", "10.0.0.1:1", ":5100", "nonsense"} {
		if IsLoopback(a) {
			t.Errorf("IsLoopback(%q) = true", a)
		}
	}
	resp, err := http.Get("http://" + addr + "/api/series")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/series: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/api/series")
		if err != nil {
			break // closed with its context
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the view still answers 5 s after its context ended")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, bounded by the deadline
	}
}

// members is a fixed placement: account id on member (id-1) % len.
type members []string

func (m members) Members() []string     { return m }
func (m members) Address() string       { return m[0] }
func (m members) Owner(id int64) string { return m[(id-1)%int64(len(m))] }

// TestMembers shows a cluster's placement: each account's member, and how
// many accounts each member hosts.
func TestMembers(t *testing.T) {
	b, err := actors.New(actors.Config{Accounts: 5, InitialBalance: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	v, err := New(Config{Accounts: b, Placement: members{"10.0.0.1:7000", "10.0.0.2:7000"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	got := v.accounts(context.Background(), 5)
	if len(got.Members) != 2 || got.Members[0] != (memberJSON{"10.0.0.1:7000", 3, true}) || got.Members[1] != (memberJSON{"10.0.0.2:7000", 2, false}) {
		t.Errorf("members = %+v, want 10.0.0.1:7000 (self) hosting 3 and 10.0.0.2:7000 hosting 2", got.Members)
	}
	for _, a := range got.Accounts {
		if want := members([]string{"10.0.0.1:7000", "10.0.0.2:7000"}).Owner(a.Conta); a.Member != want {
			t.Errorf("account %d on %q, want %q", a.Conta, a.Member, want)
		}
	}
}
