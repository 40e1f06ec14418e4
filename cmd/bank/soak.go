package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/http/metrics"
)

const soakDescription = `Runs a bank of its own (a durable data server and two business servers,
child processes of this program on free loopback ports) under the mixed
workload of "bank bench" in rounds, injecting one fault per round, and
checks every round's recorded history for conservation and
linearizability. It also watches the servers for leaks: memory (VmRSS),
goroutines and live account actors.

The data server keeps its accounts in DIR/bank-data and answers every
tenth request 20ms late (GOBANK_TEST_SLOW=20ms); the business servers run
with --lock-ttl 1s --lock-wait 500ms --data-timeout 1s. The children get a
random BANK_SERVER_TOKEN and HOME=DIR. A restarted server gets the port it
had.

Each round runs the workload (loadgen, business target, 5 account groups,
a data-server snapshot every 200ms, history in DIR/round-N.jsonl) for
--round; a quarter into it one fault is injected, cycling through:
  1. kill -9 business server biz1, restart it on its port;
  2. kill -9 the data server, restart it on its port (same --data-dir);
  3. SIGSTOP business server biz2 for 1.5s (past its 1s lease), SIGCONT.
biz2 is never restarted, so it lives through the whole soak. After the
round, check.Bank and check.Linearizable (timeout 1m) judge the history:
a FAIL or an inconclusive verdict fails the soak. One line per round is
printed.

After the first round (warmed up) and after the last, each server's RSS
(VmRSS of /proc/PID/status), goroutines (go_goroutines of its /metrics) and
live actors (gobank_data_accounts, data server) are sampled. The soak fails
when, for a server that was not restarted in between, RSS grew by more than
--max-rss-growth (a size, 64MiB, or a percentage of the first sample, 50%)
or goroutines grew by more than --max-goroutine-growth; the live actors of
the data server must not exceed --accounts. A final table shows the samples.

Exit status: 0 every check and bound held; 1 a check failed, a bound was
exceeded, a server failed or the soak was interrupted (Ctrl-C kills the
servers); 2 the command line is wrong.`

// soakConfig is a parsed "bank soak" command line.
type soakConfig struct {
	duration  time.Duration
	round     time.Duration
	workers   int
	accounts  int
	dir       string
	keep      bool
	rssBound  sizeBound
	goroBound int64
}

// sizeBound bounds a growth: by bytes, or by a percentage of the start.
type sizeBound struct {
	bytes   int64
	percent float64 // used when > 0
}

func (b sizeBound) String() string {
	if b.percent > 0 {
		return strconv.FormatFloat(b.percent, 'f', -1, 64) + "%"
	}
	return formatBytes(b.bytes)
}

// exceeded reports whether growing from before to after exceeds b.
func (b sizeBound) exceeded(before, after int64) bool {
	growth := after - before
	if b.percent > 0 {
		return float64(growth) > float64(before)*b.percent/100
	}
	return growth > b.bytes
}

// goroutinesExceeded reports whether goroutines grew by more than max.
func goroutinesExceeded(max, before, after int64) bool { return after-before > max }

// parseSizeBound parses "64MiB", "512KiB", "1GiB", "1048576" or "50%".
func parseSizeBound(s string) (sizeBound, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return sizeBound{}, fmt.Errorf("%q: want a positive percentage", s)
		}
		return sizeBound{percent: v}, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if p, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = p, u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v <= 0 || v > math.MaxInt64/mult {
		return sizeBound{}, fmt.Errorf("%q: want a size such as 64MiB, or a percentage such as 50%%", s)
	}
	return sizeBound{bytes: v * mult}, nil
}

func formatBytes(n int64) string {
	switch {
	case n < 0:
		return "-" + formatBytes(-n)
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

func newSoakFlagSet(c *soakConfig, rss *string) *flag.FlagSet {
	fs := newFlagSet("soak")
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "total load time, split in rounds")
	fs.DurationVar(&c.round, "round", 30*time.Second, "length of a round (at least 3s): one fault and one check each")
	fs.IntVar(&c.workers, "workers", 16, "load generator workers")
	fs.IntVar(&c.accounts, "accounts", 10, "accounts of the bank (at least 5: one group of the workload each)")
	fs.StringVar(&c.dir, "dir", "", "where the data, logs and histories go (default: a temporary directory, removed afterwards unless --keep)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory")
	fs.StringVar(rss, "max-rss-growth", "64MiB", "fail if a server's RSS grows by more than this between the first round and the end: a size (64MiB) or a percentage (50%)")
	fs.Int64Var(&c.goroBound, "max-goroutine-growth", 200, "fail if a server's goroutines grow by more than this between the first round and the end")
	return fs
}

func soakUsage() string {
	var c soakConfig
	var rss string
	fs := newSoakFlagSet(&c, &rss)
	return fmt.Sprintf("usage: bank soak [flags]\n\n%s\n\nflags:\n%s\nexamples:\n  bank soak --duration 2m --round 20s\n  bank soak --duration 1h --max-rss-growth 25%% --dir /tmp/soak\n",
		soakDescription, describeFlags(fs))
}

func parseSoak(args []string) (soakConfig, error) {
	var c soakConfig
	var rss string
	fs := newSoakFlagSet(&c, &rss)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return c, err
	}
	if len(pos) > 0 {
		return c, usagef("soak takes no arguments, got %q", pos)
	}
	if c.round < 3*time.Second {
		return c, usagef("--round %v: at least 3s", c.round)
	}
	if c.duration < c.round {
		return c, usagef("--duration %v: at least one --round (%v)", c.duration, c.round)
	}
	if c.workers < 1 {
		return c, usagef("--workers %d: at least 1", c.workers)
	}
	if c.accounts < 5 {
		return c, usagef("--accounts %d: at least 5", c.accounts)
	}
	if c.goroBound < 0 {
		return c, usagef("--max-goroutine-growth %d: negative", c.goroBound)
	}
	if c.rssBound, err = parseSizeBound(rss); err != nil {
		return c, usagef("--max-rss-growth %v", err)
	}
	return c, nil
}

func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseSoak(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, soakUsage())
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "bank soak: %v\nrun \"bank help soak\" for usage\n", err)
		return exitUsage
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "bank soak: cannot find this program to run the servers: %v\n", err)
		return exitFail
	}
	s := &soak{cfg: cfg, exe: exe, stdout: stdout, stderr: stderr}
	return s.run(ctx)
}

// soakProc is one server of the soak: a role whose process may be
// replaced by restarts.
type soakProc struct {
	name     string // "data", "biz1", "biz2"
	port     int
	url      string
	args     []string
	env      []string
	starts   int
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
	expected bool // killed on purpose
	out      *os.File
}

func (p *soakProc) pid() int { return p.cmd.Process.Pid }

// sample is one measurement of a server.
type sample struct {
	pid        int
	rss        int64 // bytes; -1 unknown
	goroutines int64 // -1 unknown
	actors     int64 // -1 unknown or not applicable
}

type soak struct {
	cfg    soakConfig
	exe    string
	stdout io.Writer
	stderr io.Writer
	dir    string
	token  string
	mu     sync.Mutex // guards the procs' cmd fields against the cleanup
	procs  []*soakProc
	data   *soakProc
	biz    [2]*soakProc
	client *http.Client
}

func (s *soak) logf(format string, args ...any) {
	fmt.Fprintf(s.stderr, "bank soak: "+format+"\n", args...)
}

func (s *soak) run(ctx context.Context) (code int) {
	dir := s.cfg.dir
	temp := dir == ""
	var err error
	if temp {
		dir, err = os.MkdirTemp("", "bank-soak-")
	} else if dir, err = filepath.Abs(dir); err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		s.logf("--dir: %v", err)
		return exitFail
	}
	s.dir = dir
	if temp && !s.cfg.keep {
		defer os.RemoveAll(dir)
	}
	s.client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	s.token = hex.EncodeToString(tok[:])
	defer s.killAll()

	ports, err := soakFreePorts(3)
	if err != nil {
		s.logf("finding free ports: %v", err)
		return exitFail
	}
	env := soakEnv(dir, s.token)
	s.data = &soakProc{name: "data", port: ports[0],
		args: []string{"dataserver", "--host", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
			"--data-dir", filepath.Join(dir, "bank-data"), "--log", filepath.Join(dir, "data_server.log"),
			"--accounts", strconv.Itoa(s.cfg.accounts)},
		env: append(append([]string{}, env...), "GOBANK_TEST_SLOW=20ms")}
	s.data.url = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	for i := range s.biz {
		name := "biz" + strconv.Itoa(i+1)
		p := &soakProc{name: name, port: ports[i+1], env: env,
			args: []string{"businessserver", s.data.url, strconv.Itoa(ports[i+1]), "--host", "127.0.0.1", "--id", name,
				"--log", filepath.Join(dir, name+"_server.log"),
				"--lock-ttl", "1s", "--lock-wait", "500ms", "--data-timeout", "1s"}}
		p.url = "http://127.0.0.1:" + strconv.Itoa(ports[i+1])
		s.biz[i] = p
	}
	s.procs = []*soakProc{s.data, s.biz[0], s.biz[1]}
	for _, p := range s.procs {
		if err := s.startProc(ctx, p); err != nil {
			s.logf("%v", err)
			return exitFail
		}
	}
	rounds := int(s.cfg.duration / s.cfg.round)
	fmt.Fprintf(s.stdout, "bank soak: %d rounds of %v, %d workers, %d accounts, dir %s\n", rounds, s.cfg.round, s.cfg.workers, s.cfg.accounts, dir)
	fmt.Fprintf(s.stdout, "bounds: RSS growth <= %v, goroutine growth <= %d per server not restarted in between; data server live actors <= %d\n",
		s.cfg.rssBound, s.cfg.goroBound, s.cfg.accounts)
	for _, p := range s.procs {
		fmt.Fprintf(s.stdout, "  %-4s %s (pid %d)\n", p.name, p.url, p.pid())
	}

	failed := false
	var first, last []sample
	for r := 1; r <= rounds; r++ {
		ok, err := s.round(ctx, r)
		if err != nil {
			if ctx.Err() != nil {
				s.logf("interrupted; killing the servers")
				return exitFail
			}
			s.logf("round %d: %v", r, err)
			return exitFail
		}
		if !ok {
			failed = true
		}
		if r == 1 {
			first = s.sampleAll(ctx)
			fmt.Fprintln(s.stdout, "start (after round 1, warmed up):")
			s.printSamples(first)
		}
	}
	last = s.sampleAll(ctx)
	fmt.Fprintln(s.stdout, "end:")
	s.printSamples(last)
	if !s.report(first, last) {
		failed = true
	}
	if ctx.Err() != nil {
		s.logf("interrupted")
		return exitFail
	}
	if failed {
		fmt.Fprintln(s.stdout, "soak: FAIL")
		return exitFail
	}
	fmt.Fprintln(s.stdout, "soak: PASS")
	return exitOK
}

var soakFaults = []string{
	"kill -9 + restart biz1",
	"kill -9 + restart data",
	"SIGSTOP biz2 1.5s + SIGCONT",
}

// round runs round r: the load, its fault, the checks. ok is false when a
// check failed; err is set when the soak cannot go on.
func (s *soak) round(ctx context.Context, r int) (ok bool, err error) {
	histPath := filepath.Join(s.dir, "round-"+strconv.Itoa(r)+".jsonl")
	hist, err := os.Create(histPath)
	if err != nil {
		return false, err
	}
	w := bufio.NewWriter(hist)
	cfg := loadgen.Config{
		Servers:       []string{s.biz[0].url, s.biz[1].url},
		Workers:       s.cfg.workers,
		Duration:      s.cfg.round,
		Mix:           map[string]int{"transferencia": 60, "deposito": 15, "saque": 15, "saldo": 10},
		AmountMin:     1,
		AmountMax:     50,
		Accounts:      s.cfg.accounts,
		Seed:          uint64(r),
		Timeout:       2 * time.Second,
		Settle:        10 * time.Second,
		History:       w,
		SnapshotEvery: 200 * time.Millisecond,
		DataServer:    s.data.url,
		ServerToken:   s.token,
		Groups:        5,
	}
	type result struct {
		rep *loadgen.Report
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		rep, err := loadgen.Run(ctx, cfg, nil)
		done <- result{rep, err}
	}()
	fault := soakFaults[(r-1)%len(soakFaults)]
	faultErr := s.inject(ctx, (r-1)%len(soakFaults), s.cfg.round/4)
	res := <-done
	elapsed := time.Since(start)
	if err := w.Flush(); err != nil {
		res.err = errors.Join(res.err, err)
	}
	if err := hist.Close(); err != nil {
		res.err = errors.Join(res.err, err)
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if faultErr != nil {
		return false, fmt.Errorf("fault %q: %w", fault, faultErr)
	}
	if res.err != nil {
		return false, fmt.Errorf("load: %w", res.err)
	}
	for _, p := range s.procs {
		if isClosed(p.done) {
			return false, fmt.Errorf("%s (pid %d) exited on its own: %v", p.name, p.pid(), exitText(p.err))
		}
	}
	rep := res.rep
	ok = true
	// The load generator's own check (the sum before and after against
	// acknowledged deposits and withdrawals, bounded by unknown outcomes)
	// must agree with check.Bank, which judges every snapshot.
	cons := "conservation PASS"
	if rep.Conservation != nil && !rep.Conservation.OK {
		cons = "conservation FAIL: " + rep.Conservation.Reason
		ok = false
	}
	h, err := check.ReadFile(histPath)
	if err != nil {
		return false, err
	}
	bank := check.Bank(h)
	lin := check.Linearizable(h, check.LinearOptions{Timeout: time.Minute, Visualization: histPath + ".html"})
	fmt.Fprintf(s.stdout, "round %d/%d %5.1fs ops %d ok %d unknown %d  fault: %s  bank %s (%d entries, %v)  linearizable %s (%v)  %s\n",
		r, int(s.cfg.duration/s.cfg.round), elapsed.Seconds(), rep.Requests, rep.OK, rep.Unknown, fault,
		bank.Verdict(), bank.Checked, bank.Duration.Round(time.Millisecond), lin.Verdict(), lin.Duration.Round(time.Millisecond), cons)
	for _, c := range []check.Result{bank, lin} {
		if !c.OK {
			ok = false
			fmt.Fprintf(s.stdout, "  %s %s: %s; %d violations, first: %v (history %s)\n", c.Name, c.Verdict(), c.Note, len(c.Violations), firstViolation(c), histPath)
		}
	}
	return ok, nil
}

func firstViolation(r check.Result) string {
	if len(r.Violations) == 0 {
		return "-"
	}
	return r.Violations[0].Message
}

// inject waits until after into the round, then injects fault i.
func (s *soak) inject(ctx context.Context, i int, after time.Duration) error {
	t := time.NewTimer(after) // the fault's schedule, not a synchronization
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-t.C:
	}
	switch i {
	case 0:
		return s.restart(ctx, s.biz[0])
	case 1:
		return s.restart(ctx, s.data)
	default:
		p := s.biz[1]
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			return err
		}
		pause := time.NewTimer(1500 * time.Millisecond)
		defer pause.Stop()
		select {
		case <-ctx.Done():
		case <-pause.C:
		}
		return p.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// restart kills p with SIGKILL and starts it again on its port.
func (s *soak) restart(ctx context.Context, p *soakProc) error {
	s.mu.Lock()
	p.expected = true
	s.mu.Unlock()
	if err := p.cmd.Process.Kill(); err != nil && !isClosed(p.done) {
		return err
	}
	<-p.done
	return s.startProc(ctx, p)
}

// startProc starts p's process and waits until it answers /status.
func (s *soak) startProc(ctx context.Context, p *soakProc) error {
	p.starts++
	out, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("%s-%d.out", p.name, p.starts)))
	if err != nil {
		return err
	}
	listening := make(chan struct{})
	var once sync.Once
	lw := &lineWriter{mu: new(sync.Mutex), w: out, onLine: func(line []byte) {
		if strings.Contains(string(line), "listening on http") {
			once.Do(func() { close(listening) })
		}
	}}
	cmd := exec.Command(s.exe, p.args...)
	cmd.Dir = s.dir
	cmd.Env = p.env
	cmd.Stdout = lw
	cmd.Stderr = lw
	cmd.SysProcAttr = childSysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	p.cmd, p.done, p.out, p.expected = cmd, done, out, false
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		lw.flush()
		out.Close()
		s.mu.Lock()
		p.err = err
		s.mu.Unlock()
		close(done)
	}()
	if err := waitStatus(ctx, p.url, time.Now().Add(30*time.Second), listening, done); err != nil {
		return fmt.Errorf("%s (pid %d) not ready: %v (output in %s)", p.name, cmd.Process.Pid, err, out.Name())
	}
	return nil
}

// killAll kills every server still running.
func (s *soak) killAll() {
	for _, p := range s.procs {
		if p.cmd == nil || isClosed(p.done) {
			continue
		}
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
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
		if s.procs[i] == s.data {
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
			if a.rss >= 0 && b.rss >= 0 && s.cfg.rssBound.exceeded(a.rss, b.rss) {
				why = append(why, "RSS growth > "+s.cfg.rssBound.String())
			}
			if a.goroutines >= 0 && b.goroutines >= 0 && goroutinesExceeded(s.cfg.goroBound, a.goroutines, b.goroutines) {
				why = append(why, "goroutine growth > "+strconv.FormatInt(s.cfg.goroBound, 10))
			}
			if b.goroutines < 0 {
				why = append(why, "no goroutine count")
			}
		}
		actors := "-"
		if p == s.data {
			actors = showInt(a.actors) + "->" + showInt(b.actors)
			if b.actors < 0 || b.actors > int64(s.cfg.accounts) {
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

// soakEnv is the children's environment: this one without server or
// client settings, with the soak's credential and HOME.
func soakEnv(dir, token string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "BANK_SERVER_TOKEN", envServer, envAuth, envToken, "HOME", "XDG_CONFIG_HOME", "GOBANK_TEST_SLOW":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "BANK_SERVER_TOKEN="+token, "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, ".config"))
}

// soakFreePorts returns n distinct loopback ports that were free a moment
// ago.
func soakFreePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
