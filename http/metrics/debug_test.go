package metrics_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/http/metrics"
)

// TestServeDebug: the debug address serves the registry through promhttp
// and the profiler, and stops with its context.
func TestServeDebug(t *testing.T) {
	reg := metrics.NewRegistry()
	reg.Counter("x_total", "A counter.", "").Add(2)
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := metrics.ServeDebug(ctx, "127.0.0.1:0", reg, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	_, url, ok := strings.Cut(strings.TrimSpace(logs.String()), "listening on ")
	if !ok {
		t.Fatalf("no address logged: %s", logs.String())
	}
	url = strings.Trim(url, `"`)
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	fams, err := metrics.Parse(resp.Body, resp.Header.Get("Content-Type"))
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if fams["x_total"].GetMetric()[0].GetCounter().GetValue() != 2 || fams["go_goroutines"] == nil {
		t.Errorf("debug /metrics lacks x_total 2 or go_goroutines: %v", fams)
	}
	if resp, err := http.Get(url + "/debug/pprof/cmdline"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pprof: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url + "/metrics")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the debug server still answers after its context ended")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}
