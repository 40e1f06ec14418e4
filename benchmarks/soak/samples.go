package soak

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/bank/gobank/http/metrics"
)

// sample is one measurement of a server.
type sample struct {
	pid        int
	rss        int64 // bytes; -1 unknown
	goroutines int64 // -1 unknown
	actors     int64 // -1 unknown or not applicable
}

func (s *soak) sampleAll(ctx context.Context) []sample {
	out := make([]sample, len(s.procs))
	for i, p := range s.procs {
		sm := sample{pid: p.pid(), rss: readRSS(p.pid()), goroutines: -1, actors: -1}
		if m, err := s.scrape(ctx, p.url); err == nil {
			if v, ok := m["go_goroutines"]; ok {
				sm.goroutines = int64(v)
			}
			if v, ok := m["gobank_data_accounts"]; ok {
				sm.actors = int64(v)
			}
		} else {
			s.logf("scraping %s: %v", p.name, err)
		}
		out[i] = sm
	}
	return out
}

// scrape reads the unlabelled counters and gauges of url's /metrics,
// parsed by expfmt (metrics.Parse).
func (s *soak) scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics answered %s", resp.Status)
	}
	fams, err := metrics.Parse(resp.Body, resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	return unlabelled(fams), nil
}

// unlabelled returns the value of each family of one series without
// labels: a gauge's, counter's or untyped sample's.
func unlabelled(fams map[string]*dto.MetricFamily) map[string]float64 {
	m := map[string]float64{}
	for name, f := range fams {
		if len(f.GetMetric()) != 1 || len(f.GetMetric()[0].GetLabel()) != 0 {
			continue
		}
		switch s := f.GetMetric()[0]; f.GetType() {
		case dto.MetricType_GAUGE:
			m[name] = s.GetGauge().GetValue()
		case dto.MetricType_COUNTER:
			m[name] = s.GetCounter().GetValue()
		case dto.MetricType_UNTYPED:
			m[name] = s.GetUntyped().GetValue()
		}
	}
	return m
}

// readRSS returns VmRSS of pid in bytes, or -1.
func readRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				return -1
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return -1
			}
			return n << 10 // kB
		}
	}
	return -1
}

func showInt(v int64) string {
	if v < 0 {
		return "n/a"
	}
	return strconv.FormatInt(v, 10)
}

func showRSS(v int64) string {
	if v < 0 {
		return "n/a"
	}
	return formatBytes(v)
}

func (s *soak) printSamples(ss []sample) {
	for i, sm := range ss {
		actors := "-"
		if s.procs[i].data {
			actors = showInt(sm.actors)
		}
		fmt.Fprintf(s.stdout, "  %-4s pid %-7d RSS %-9s goroutines %-5s actors %s\n", s.procs[i].name, sm.pid, showRSS(sm.rss), showInt(sm.goroutines), actors)
	}
}

// report prints the final table and reports whether every bound held.
func (s *soak) report(first, last []sample) bool {
	ok := true
	fmt.Fprintln(s.stdout, "memory table (start: after round 1; end: after the last round):")
	fmt.Fprintf(s.stdout, "  %-6s %-17s %-10s %-10s %-11s %-6s %-6s %-7s %-11s %s\n",
		"server", "pids", "RSS start", "RSS end", "RSS growth", "gor.", "gor.", "gor.", "actors", "verdict")
	fmt.Fprintf(s.stdout, "  %-6s %-17s %-10s %-10s %-11s %-6s %-6s %-7s %-11s\n",
		"", "start->end", "", "", "", "start", "end", "growth", "start->end")
	for i, p := range s.procs {
		a, b := first[i], last[i]
		var why []string
		restarted := a.pid != b.pid
		if !restarted {
			if a.rss >= 0 && b.rss >= 0 && s.cfg.RSSBound.exceeded(a.rss, b.rss) {
				why = append(why, "RSS growth > "+s.cfg.RSSBound.String())
			}
			if a.goroutines >= 0 && b.goroutines >= 0 && goroutinesExceeded(s.cfg.GoroutineBound, a.goroutines, b.goroutines) {
				why = append(why, "goroutine growth > "+strconv.FormatInt(s.cfg.GoroutineBound, 10))
			}
			if b.goroutines < 0 {
				why = append(why, "no goroutine count")
			}
		}
		actors := "-"
		if p.data {
			actors = showInt(a.actors) + "->" + showInt(b.actors)
			if b.actors < 0 || b.actors > int64(s.cfg.Accounts) {
				why = append(why, "live actors > accounts")
			}
		}
		verdict := "PASS"
		switch {
		case len(why) > 0:
			verdict = "FAIL: " + strings.Join(why, ", ")
			ok = false
		case restarted:
			verdict = "PASS (restarted in between: growth not bounded)"
		}
		rssGrowth, goroGrowth := "n/a", "n/a"
		if a.rss >= 0 && b.rss >= 0 {
			rssGrowth = formatBytes(b.rss - a.rss)
			if !strings.HasPrefix(rssGrowth, "-") {
				rssGrowth = "+" + rssGrowth
			}
		}
		if a.goroutines >= 0 && b.goroutines >= 0 {
			goroGrowth = fmt.Sprintf("%+d", b.goroutines-a.goroutines)
		}
		fmt.Fprintf(s.stdout, "  %-6s %-17s %-10s %-10s %-11s %-6s %-6s %-7s %-11s %s\n",
			p.name, fmt.Sprintf("%d->%d", a.pid, b.pid), showRSS(a.rss), showRSS(b.rss), rssGrowth,
			showInt(a.goroutines), showInt(b.goroutines), goroGrowth, actors, verdict)
	}
	return ok
}
