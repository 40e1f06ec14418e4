package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/http/freeport"
)

// TestOpenLoopMeasuresQueueing drives a server that serves one request at
// a time, 20ms each (50/s), at 100/s with at most 4 requests in flight.
// Requests queue behind each other, so latencies climb well past the
// service time, and the half of the schedule that cannot be sent is
// counted as dropped.
func TestOpenLoopMeasuresQueueing(t *testing.T) {
	const service = 20 * time.Millisecond
	var mu sync.Mutex
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		defer mu.Unlock()
		time.Sleep(service) // the service time being measured, not synchronization
		ctx.SetBodyString(`{"conta":1,"saldo":1}`)
	})
	rep, err := Run(t.Context(), Config{
		Servers:     []string{url},
		Rate:        100,
		Duration:    time.Second,
		MaxInflight: 4,
		Mix:         map[string]int{"saldo": 1},
		NoCheck:     true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "open" {
		t.Errorf("mode %q, want open", rep.Mode)
	}
	if got := rep.Requests + rep.Dropped; got != 100 {
		t.Errorf("requests %d + dropped %d = %d, want the 100 scheduled", rep.Requests, rep.Dropped, got)
	}
	if rep.Dropped == 0 || rep.Ops["saldo"].Dropped != rep.Dropped {
		t.Errorf("dropped %d (saldo: %d); want > 0 and all of them saldo", rep.Dropped, rep.Ops["saldo"].Dropped)
	}
	if rep.OK != rep.Requests {
		t.Errorf("ok %d of %d: %v", rep.OK, rep.Requests, rep.Outcomes)
	}
	if min := service.Microseconds(); rep.Latency.P50 < min {
		t.Errorf("p50 %dus below the service time", rep.Latency.P50)
	}
	if queued := 2 * service.Microseconds(); rep.Latency.P99 < queued {
		t.Errorf("p99 %dus: want >= %dus, the queueing behind other requests", rep.Latency.P99, queued)
	}
}

// TestOpenLoopLatencyIncludesStall drives a server that answers at once,
// except that from its 40th request on it stalls every request for 400ms
// (one stall, timed from when it begins). In the open loop, requests keep
// being sent on schedule during the stall, and each one's latency runs
// from its intended send time to the end of the stall: about rate×(D-x)
// requests must show a latency of at least x. A closed loop with one
// worker is the coordinated omission this avoids: it waits out the stall
// on a single request and reports one slow latency, which is the row that
// shows this test can tell the two apart.
func TestOpenLoopLatencyIncludesStall(t *testing.T) {
	const (
		stall   = 400 * time.Millisecond
		rate    = 200 // per second
		trigger = 40  // the request that begins the stall
	)
	for _, tc := range []struct {
		name string
		cfg  Config
		// Bounds on the number of latencies of at least stall/2 and
		// stall/4: rate×stall/2 = 40 and rate×3stall/4 = 60 are expected
		// in the open loop.
		minHalf, maxHalf, minQuarter int64
	}{
		{"open loop", Config{Rate: rate, MaxInflight: 1000}, 28, 1 << 30, 42},
		{"closed loop, one worker", Config{Workers: 1}, 1, 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				n    atomic.Int64
				once sync.Once
				gate = make(chan struct{})
			)
			url := serve(t, func(ctx *fasthttp.RequestCtx) {
				if n.Add(1) >= trigger {
					// The stall is what is measured: its length is a timer,
					// and every request that comes during it waits for it.
					once.Do(func() { time.AfterFunc(stall, func() { close(gate) }) })
					<-gate
				}
				ctx.SetBodyString(`{"conta":1,"saldo":1}`)
			})
			cfg := tc.cfg
			cfg.Servers = []string{url}
			cfg.Duration = time.Second
			cfg.Mix = map[string]int{"saldo": 1}
			cfg.NoCheck = true
			rep, err := Run(t.Context(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK != rep.Requests || rep.Dropped != 0 {
				t.Fatalf("ok %d of %d, dropped %d: %v", rep.OK, rep.Requests, rep.Dropped, rep.Outcomes)
			}
			if cfg.Rate > 0 && rep.Requests != rate {
				t.Errorf("requests %d, want the %d scheduled", rep.Requests, rate)
			}
			half := atLeast(rep, (stall / 2).Microseconds())
			quarter := atLeast(rep, (stall / 4).Microseconds())
			if half < tc.minHalf || half > tc.maxHalf {
				t.Errorf("%d latencies >= %v, want %d..%d", half, stall/2, tc.minHalf, tc.maxHalf)
			}
			if quarter < tc.minQuarter {
				t.Errorf("%d latencies >= %v, want >= %d", quarter, stall/4, tc.minQuarter)
			}
			if got := rep.Histogram.Max(); got < (stall * 9 / 10).Microseconds() {
				t.Errorf("max latency %dus, want about the stall (%v)", got, stall)
			}
			if cfg.Rate > 0 && rep.Latency.P90 < (stall/4).Microseconds() {
				t.Errorf("p90 %dus: the stall spans 40%% of the schedule, so p90 must show it", rep.Latency.P90)
			}
		})
	}
}

// atLeast counts the latencies of rep of at least us microseconds (to the
// histogram's precision).
func atLeast(rep *Report, us int64) int64 {
	var n int64
	for _, b := range rep.Histogram.Distribution() {
		if b.From >= us {
			n += b.Count
		}
	}
	return n
}

// TestLatencyFromIntendedTime sends an operation whose intended time is
// 100ms in the past to an instant server: the recorded latency must
// include those 100ms.
func TestLatencyFromIntendedTime(t *testing.T) {
	url := serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"conta":1,"saldo":1}`) })
	tg, err := newTarget(url, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l := &loop{cfg: Config{}, targets: []*target{tg}, start: time.Now().Add(-100 * time.Millisecond)}
	ex := newExecutor(l.targets, "ba0f", time.Second, "x")
	defer ex.release()
	rec := newRecorder()
	l.sendScheduled(0, ex, rec, planned{op: opSaldo, a: 1, intended: 0})
	if rec.outcomes[okOutcome] != 1 {
		t.Fatalf("outcomes %v", rec.outcomes)
	}
	if got := rec.hist.Max(); got < 100_000 {
		t.Errorf("latency %dus, want >= 100000us (from the intended time)", got)
	}
}

func TestConservationPassesOnRealBank(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"closed loop", Config{Workers: 8, Duration: 500 * time.Millisecond, Dist: Dist{Kind: DistZipf, S: 0.99}}},
		{"open loop", Config{Rate: 400, Duration: 500 * time.Millisecond, MaxInflight: 64}},
		{"request budget", Config{Workers: 4, Requests: 200, Dist: Dist{Kind: DistHot, HotK: 2, HotP: 0.8}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, urls := startBank(t)
			cfg := tc.cfg
			cfg.Servers = urls
			rep, err := Run(t.Context(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := rep.Conservation
			if c == nil || !c.OK {
				t.Fatalf("conservation %+v; outcomes %v", c, rep.Outcomes)
			}
			if c.Before != 10*1000 {
				t.Errorf("before %d, want 10000", c.Before)
			}
			if c.UnknownDeposit == 0 && c.UnknownWithdraw == 0 && c.After != c.Before+c.Deposited-c.Withdrawn {
				t.Errorf("after %d != %d + %d - %d", c.After, c.Before, c.Deposited, c.Withdrawn)
			}
			balances, _ := data.Balances(t)
			var sum int64
			for _, b := range balances {
				sum += b
			}
			if sum != c.After {
				t.Errorf("the data server holds %d, the check read %d", sum, c.After)
			}
			if rep.OK == 0 || c.Deposited == 0 || rep.Outcomes["ok"] != rep.OK {
				t.Errorf("ok %d, deposited %d, outcomes %v: the run did nothing useful", rep.OK, c.Deposited, rep.Outcomes)
			}
			if cfg.Requests > 0 && rep.Requests != cfg.Requests {
				t.Errorf("requests %d, want exactly %d", rep.Requests, cfg.Requests)
			}
			var perOp int64
			for _, s := range rep.Ops {
				perOp += s.Requests
			}
			if perOp != rep.Requests || rep.Histogram.TotalCount() != rep.Requests {
				t.Errorf("per-op %d, histogram %d, requests %d: the counts disagree", perOp, rep.Histogram.TotalCount(), rep.Requests)
			}
		})
	}
}

func TestConservationCatchesBrokenBanks(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bank       func() *fakeBank
		mix        string
		unknown5xx bool
		amount     [2]int64
		wantOK     bool
		wantReason string
	}{
		{
			name: "correct fake passes", bank: func() *fakeBank { return newFakeBank(10, 1000) },
			mix: DefaultBusinessMix, wantOK: true, wantReason: "after == before",
		},
		{
			name: "deposit credited twice", bank: func() *fakeBank { f := newFakeBank(10, 1000); f.depositFactor = 2; return f },
			mix: "deposito=1,saldo=1", wantReason: "money created",
		},
		{
			name: "transfer credits without debiting", bank: func() *fakeBank { f := newFakeBank(10, 1000); f.transferMints = true; return f },
			mix: "transferencia=1", wantReason: "money created",
		},
		{
			name: "withdrawal overdraws", bank: func() *fakeBank { f := newFakeBank(10, 10); f.allowNegative = true; return f },
			mix: "saque=1", amount: [2]int64{50, 100}, wantReason: "negative balance",
		},
		{
			name: "applied deposit answered 502 without body is unknown, within bounds",
			bank: func() *fakeBank { f := newFakeBank(10, 1000); f.depositStatus = 502; return f },
			mix:  "deposito=1,saque=1", wantOK: true, wantReason: "within the range",
		},
		{
			name: "applied deposit answered 503 'not applied' is caught",
			bank: func() *fakeBank { f := newFakeBank(10, 1000); f.depositStatus = 503; f.depositBody = true; return f },
			mix:  "deposito=1", wantReason: "money created",
		},
		{
			name: "same, with --unknown-5xx, is within bounds",
			bank: func() *fakeBank { f := newFakeBank(10, 1000); f.depositStatus = 503; f.depositBody = true; return f },
			mix:  "deposito=1", unknown5xx: true, wantOK: true, wantReason: "within the range",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bank := tc.bank()
			before := bank.sum()
			mix, err := ParseMix(tc.mix)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Run(t.Context(), Config{
				Servers:    []string{serve(t, bank.handle)},
				Workers:    4,
				Duration:   300 * time.Millisecond,
				Mix:        mix,
				AmountMin:  tc.amount[0],
				AmountMax:  tc.amount[1],
				Unknown5xx: tc.unknown5xx,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := rep.Conservation
			if c == nil || c.OK != tc.wantOK || !strings.Contains(c.Reason, tc.wantReason) {
				t.Fatalf("conservation %+v; want ok=%v, reason containing %q", c, tc.wantOK, tc.wantReason)
			}
			if c.Before != before || c.After != bank.sum() {
				t.Errorf("before %d after %d; the bank held %d then %d", c.Before, c.After, before, bank.sum())
			}
			var table strings.Builder
			if err := rep.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			verdict := map[bool]string{true: "conservation: PASS", false: "conservation: FAIL"}[tc.wantOK]
			if !strings.Contains(table.String(), verdict) {
				t.Errorf("table lacks %q:\n%s", verdict, table.String())
			}
		})
	}
}

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		c      Conservation
		ok     bool
		reason string
	}{
		{"exact", Conservation{Before: 100, Deposited: 30, Withdrawn: 20, After: 110}, true, "after == before"},
		{"one too many", Conservation{Before: 100, Deposited: 30, Withdrawn: 20, After: 111}, false, "money created: the balances sum to 1 more"},
		{"one too few", Conservation{Before: 100, Deposited: 30, Withdrawn: 20, After: 109}, false, "money destroyed: the balances sum to 1 less"},
		{"unknown deposit landed", Conservation{Before: 100, Deposited: 30, UnknownDeposit: 5, After: 135}, true, "within the range"},
		{"unknown deposit not landed", Conservation{Before: 100, Deposited: 30, UnknownDeposit: 5, After: 130}, true, "within the range"},
		{"beyond unknown deposits", Conservation{Before: 100, Deposited: 30, UnknownDeposit: 5, After: 136}, false, "money created"},
		{"unknown withdrawal landed", Conservation{Before: 100, Withdrawn: 10, UnknownWithdraw: 7, After: 83}, true, "within the range"},
		{"beyond unknown withdrawals", Conservation{Before: 100, Withdrawn: 10, UnknownWithdraw: 7, After: 82}, false, "money destroyed"},
		{"negative", Conservation{Before: 100, After: 100, NegativeAccounts: []int64{3}}, false, "negative balance in account(s) 3"},
	} {
		c := tc.c
		c.judge()
		if c.OK != tc.ok || !strings.Contains(c.Reason, tc.reason) {
			t.Errorf("%s: ok=%v reason %q; want ok=%v, reason containing %q", tc.name, c.OK, c.Reason, tc.ok, tc.reason)
		}
		if c.MinAfter != c.Before+c.Deposited-c.Withdrawn-c.UnknownWithdraw || c.MaxAfter != c.Before+c.Deposited-c.Withdrawn+c.UnknownDeposit {
			t.Errorf("%s: bounds [%d, %d]", tc.name, c.MinAfter, c.MaxAfter)
		}
	}
}

func TestDataTarget(t *testing.T) {
	data, _ := startBank(t)
	rep, err := Run(t.Context(), Config{
		Target:   TargetData,
		Servers:  []string{data.URL},
		Token:    data.ServerToken,
		Workers:  4,
		Duration: 300 * time.Millisecond,
		Dist:     Dist{Kind: DistHot, HotK: 1, HotP: 0.5},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Conservation != nil {
		t.Errorf("conservation checked on the data target: %+v", rep.Conservation)
	}
	for _, name := range []string{"getSaldo", "lock", "setSaldo"} {
		if rep.Ops[name].OK == 0 {
			t.Errorf("%s: no success; outcomes %v", name, rep.Outcomes)
		}
	}
	for label := range rep.Outcomes {
		if label != "ok" && label != "200 LOCKED_ACCOUNT" {
			t.Errorf("unexpected outcome %q (%d)", label, rep.Outcomes[label])
		}
	}
	balances, holders := data.Balances(t)
	for i := range balances {
		if balances[i] != 1000 || holders[i] != "" {
			t.Errorf("account %d: balance %d, holder %q; want 1000 and free", i+1, balances[i], holders[i])
		}
	}

	// Without the credential, every operation is refused, and says so.
	rep, err = Run(t.Context(), Config{Target: TargetData, Servers: []string{data.URL}, Token: "ba0f",
		Workers: 1, Requests: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcomes["403 UNAUTHORIZED"] != 5 {
		t.Errorf("client token on the data routes: outcomes %v", rep.Outcomes)
	}
}

func TestOutcomes(t *testing.T) {
	for _, tc := range []struct {
		o          outcome
		label      string
		unknown    bool
		unknown5xx bool
	}{
		{okOutcome, "ok", false, false},
		{outcome{kind: kindHTTP, status: 403, code: -1, hasCode: true}, "403 LOCKED_ACCOUNT", false, false},
		{outcome{kind: kindHTTP, status: 409, code: -6, hasCode: true}, "409 INSUFFICIENT_FUNDS", false, false},
		{outcome{kind: kindHTTP, status: 200, code: -1, hasCode: true}, "200 LOCKED_ACCOUNT", false, false},
		{outcome{kind: kindHTTP, status: 503, code: -9, hasCode: true, notApplied: true}, "503 UNAVAILABLE", false, true},
		{outcome{kind: kindHTTP, status: 503, code: -9, hasCode: true}, "503 UNAVAILABLE", true, true},
		{outcome{kind: kindHTTP, status: 500, code: -42, hasCode: true, notApplied: true}, "500 error_code -42", false, true},
		{outcome{kind: kindHTTP, status: 502}, "502", true, true},
		{outcome{kind: kindHTTP, status: 404}, "404", false, false},
		{outcome{kind: kindTimeout}, "timeout", true, true},
		{outcome{kind: kindConnError}, "conn_error", true, true},
		{outcome{kind: kindDialError}, "dial_error", false, false},
		{outcome{kind: kindNoFreeConn}, "no_free_conn", false, false},
	} {
		if got := tc.o.label(); got != tc.label {
			t.Errorf("%+v: label %q, want %q", tc.o, got, tc.label)
		}
		if got := tc.o.unknown(false); got != tc.unknown {
			t.Errorf("%s: unknown = %v, want %v", tc.label, got, tc.unknown)
		}
		if got := tc.o.unknown(true); got != tc.unknown5xx {
			t.Errorf("%s: unknown (5xx unknown) = %v, want %v", tc.label, got, tc.unknown5xx)
		}
	}
}

func TestBodyParsing(t *testing.T) {
	for _, tc := range []struct {
		body    string
		code    int64
		hasCode bool
		saldo   int64
	}{
		{`{"error_code":-1,"error":"x"}`, -1, true, -99},
		{`{"error_code" : -6 , "error":"x"}`, -6, true, -99},
		{`{"saldo":1000}`, 0, false, 1000},
		{`{"conta":3,"saldo":-5}`, 0, false, -5},
		{`{"fence":7,"saldo":12,"ttl_ms":100}`, 0, false, 12},
		{`{"saldo_orig":4}`, 0, false, -99},
		{`{"error_code":"x"}`, 0, false, -99},
		{``, 0, false, -99},
	} {
		code, has := errorCode([]byte(tc.body))
		if code != tc.code || has != tc.hasCode {
			t.Errorf("errorCode(%s) = %d, %v; want %d, %v", tc.body, code, has, tc.code, tc.hasCode)
		}
		if got := fieldInt([]byte(tc.body), `"saldo"`, -99); got != tc.saldo {
			t.Errorf("saldo of %s = %d, want %d", tc.body, got, tc.saldo)
		}
	}
}

func TestTransportOutcomes(t *testing.T) {
	hang := make(chan struct{})
	slow := serve(t, func(ctx *fasthttp.RequestCtx) { <-hang })
	t.Cleanup(func() { close(hang) }) // before serve's shutdown, which waits for handlers

	// A port nobody listens on: nothing was sent, so the outcome is known.
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	closedPort := "http://" + addr

	// A server that reads the request and hangs up: it may have acted.
	hangup, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hangup.Close() })
	go func() {
		for {
			c, err := hangup.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			_ = c.Close()
		}
	}()

	for _, tc := range []struct {
		name    string
		url     string
		want    string
		unknown bool
	}{
		{"timeout", slow, "timeout", true},
		{"connection refused", closedPort, "dial_error", false},
		{"hang-up", "http://" + hangup.Addr().String(), "conn_error", true},
	} {
		rep, err := Run(t.Context(), Config{Servers: []string{tc.url}, Workers: 1, Requests: 2,
			Mix: map[string]int{"deposito": 1}, Timeout: 100 * time.Millisecond, NoCheck: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantUnknown := map[bool]int64{true: 2, false: 0}[tc.unknown]
		if rep.Outcomes[tc.want] != 2 || rep.Unknown != wantUnknown {
			t.Errorf("%s: outcomes %v, unknown %d; want 2 %s, unknown %d", tc.name, rep.Outcomes, rep.Unknown, tc.want, wantUnknown)
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no servers", Config{}, "no servers"},
		{"bad URL", Config{Servers: []string{"ftp://x"}}, "scheme"},
		{"data without credential", Config{Target: TargetData, Servers: []string{"http://127.0.0.1:1"}}, "server credential"},
		{"bad target", Config{Target: "cache", Servers: []string{"http://127.0.0.1:1"}}, "want business or data"},
		{"negative rate", Config{Servers: []string{"http://127.0.0.1:1"}, Rate: -1}, "rate"},
		{"hot set too big", Config{Servers: []string{"http://127.0.0.1:1"}, Dist: Dist{Kind: DistHot, HotK: 10, HotP: 1}}, "K must be in"},
		{"negative batch", Config{Servers: []string{"http://127.0.0.1:1"}, Batch: -1}, "want 1 to 8190"},
		{"batch too large", Config{Servers: []string{"http://127.0.0.1:1"}, Batch: MaxBatch + 1}, "want 1 to 8190"},
		{"batch with a history", Config{Servers: []string{"http://127.0.0.1:1"}, Batch: 2, History: io.Discard}, "cannot record batches"},
		{"batch of the data target", Config{Target: TargetData, Token: "t", Servers: []string{"http://127.0.0.1:1"}, Batch: 2}, "business target"},
		{"batch without transfers", Config{Servers: []string{"http://127.0.0.1:1"}, Batch: 2, Mix: map[string]int{"saldo": 1}}, "no transferencia"},
	} {
		_, err := Run(t.Context(), tc.cfg, nil)
		if err == nil || !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want a usage error containing %q", tc.name, err, tc.want)
		}
	}
	// A bank that does not have the accounts: the run is refused before it
	// starts, naming the account.
	_, urls := startBank(t)
	_, err := Run(t.Context(), Config{Servers: urls, Accounts: 11, Duration: time.Second}, nil)
	if err == nil || errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "account 11: 404 NOT_FOUND") {
		t.Errorf("accounts beyond the bank: err = %v", err)
	}
	// Cancelled before the start.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Run(ctx, Config{Servers: urls}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

// TestProgressLine runs with a fast progress interval, so the progress
// goroutine reads the counters while workers write them (under -race), and
// checks that a non-terminal gets one plain line per interval.
func TestProgressLine(t *testing.T) {
	url := serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"conta":1,"saldo":1}`) })
	for _, cfg := range []Config{
		{Workers: 4, Duration: 200 * time.Millisecond},
		{Rate: 500, Duration: 200 * time.Millisecond, MaxInflight: 8},
	} {
		var progress strings.Builder
		cfg.Servers = []string{url}
		cfg.Mix = map[string]int{"saldo": 1}
		cfg.NoCheck = true
		cfg.ProgressInterval = 10 * time.Millisecond
		rep, err := Run(t.Context(), cfg, &progress)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(progress.String(), "\n"), "\n")
		if len(lines) < 3 || strings.Contains(progress.String(), "\r") {
			t.Fatalf("%s loop: progress %q", rep.Mode, progress.String())
		}
		last := lines[len(lines)-1]
		if want := fmt.Sprintf("  %d requests  ", rep.Requests); !strings.Contains(last, want) || !strings.Contains(last, "req/s") {
			t.Errorf("%s loop: last progress line %q lacks %q", rep.Mode, last, want)
		}
	}
}
