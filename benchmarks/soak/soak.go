// Package soak is the harness of "bank soak": it runs a bank of its own
// (a durable data server, or N members of a cluster over a private
// PostgreSQL server, and two business servers, child processes of the bank
// command on free loopback ports) under the mixed workload of package
// loadgen in rounds, injects one fault per round (plan.go: the schedule
// a seed draws; faults.go: the injection) through fault-injecting proxies
// on every link, checks every round's history (package check), and
// watches the servers for leaks (samples.go). cmd/bank parses the command
// line into a Config and calls Run; "bank help soak" describes it all.
package soak

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bank/gobank/actors/store/pgserver"
	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/launch"
	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/http/faultnet"
	"github.com/bank/gobank/http/freeport"
)

// Config is a soak: a parsed "bank soak" command line (see "bank help
// soak" for what each setting does), and the program to run the servers
// with.
type Config struct {
	Duration       time.Duration
	Round          time.Duration
	Workers        int
	Accounts       int
	Nodes          int
	Seed           uint64
	Faults         []FaultKind
	FaultsArg      string // --faults as given, for the replay command
	Dir            string // "": a temporary directory
	Keep           bool   // keep the temporary directory
	RSSBound       SizeBound
	RSSArg         string // --max-rss-growth as given, for the replay command
	GoroutineBound int64

	// Exe is the program whose "dataserver" and "businessserver"
	// commands are the servers (the bank command).
	Exe string
	// ClientEnv names the client's settings in the environment (the
	// bank command's server, auth and token), which the servers do not
	// inherit.
	ClientEnv []string
}

// replayCommand is the command line that replays c's schedule.
func (c Config) replayCommand() string {
	return fmt.Sprintf("bank soak --seed %d --duration %v --round %v --workers %d --accounts %d --nodes %d --faults %s --max-rss-growth %s --max-goroutine-growth %d",
		c.Seed, c.Duration, c.Round, c.Workers, c.Accounts, c.Nodes, c.FaultsArg, c.RSSArg, c.GoroutineBound)
}

// Run runs the soak cfg describes, its report on stdout and its
// diagnostics on stderr, and reports whether every check and bound held.
// Cancelling ctx kills the servers; the soak then fails.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) bool {
	s := &soak{cfg: cfg, exe: cfg.Exe, stdout: stdout, stderr: stderr}
	return s.run(ctx)
}

// soakProc is one server of the soak: a role whose process may be
// replaced by restarts.
type soakProc struct {
	name     string // "data", "m1".."mN", "biz1", "biz2"
	data     bool   // a data server
	port     int
	url      string // direct, for the soak's own scrapes
	args     []string
	env      []string
	starts   int
	proc     *launch.Child
	expected bool // killed on purpose
	out      *os.File
}

func (p *soakProc) pid() int { return p.proc.Pid() }

type soak struct {
	cfg    Config
	exe    string
	stdout io.Writer
	stderr io.Writer
	dir    string
	token  string
	mu     sync.Mutex // guards the procs' proc fields against the cleanup
	procs  []*soakProc
	data   []*soakProc // the data server, or the members
	biz    [2]*soakProc
	client *http.Client
	plan   []PlannedFault

	// The proxies of the links: client -> biz[i]; biz[i] -> data[j];
	// data[j] -> PostgreSQL (cluster mode).
	cliLink  [2]*faultnet.Proxy
	dataLink [2][]*faultnet.Proxy
	pgLink   []*faultnet.Proxy
	postgres *pgserver.Server
}

func (s *soak) logf(format string, args ...any) {
	fmt.Fprintf(s.stderr, "bank soak: "+format+"\n", args...)
}

// replayHint prints the seed and the command that replays the schedule.
func (s *soak) replayHint() {
	fmt.Fprintf(s.stdout, "seed %d; replay the schedule with:\n  %s\n", s.cfg.Seed, s.cfg.replayCommand())
}

func (s *soak) run(ctx context.Context) bool {
	dir := s.cfg.Dir
	temp := dir == ""
	var err error
	if temp {
		dir, err = os.MkdirTemp("", "bank-soak-")
	} else if dir, err = filepath.Abs(dir); err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		s.logf("--dir: %v", err)
		return false
	}
	s.dir = dir
	if temp && !s.cfg.Keep {
		defer os.RemoveAll(dir)
	}
	s.client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	s.token = hex.EncodeToString(tok[:])
	defer s.killAll()
	defer s.closeProxies()
	rounds := int(s.cfg.Duration / s.cfg.Round)
	s.plan = Plan(s.cfg.Seed, rounds, s.cfg.Round, s.cfg.Nodes, s.cfg.Faults)

	if err := s.setup(ctx); err != nil {
		s.logf("%v", err)
		return false
	}
	fmt.Fprintf(s.stdout, "bank soak: seed %d, %d rounds of %v, %d workers, %d accounts, %d data server(s), dir %s\n",
		s.cfg.Seed, rounds, s.cfg.Round, s.cfg.Workers, s.cfg.Accounts, s.cfg.Nodes, dir)
	fmt.Fprintf(s.stdout, "bounds: RSS growth <= %v, goroutine growth <= %d per server not restarted in between; data server live actors <= %d\n",
		s.cfg.RSSBound, s.cfg.GoroutineBound, s.cfg.Accounts)
	for _, p := range s.procs {
		fmt.Fprintf(s.stdout, "  %-4s %s (pid %d)\n", p.name, p.url, p.pid())
	}
	fmt.Fprintln(s.stdout, "links (fault-injecting proxies):")
	for _, p := range s.proxies() {
		fmt.Fprintf(s.stdout, "  %-10s %s -> %s\n", p.Name(), p.Addr(), p.Upstream())
	}
	fmt.Fprintln(s.stdout, "schedule:")
	for _, f := range s.plan {
		fmt.Fprintf(s.stdout, "  round %d: %v\n", f.Round, f)
	}

	failed := false
	var first, last []sample
	for r := 1; r <= rounds; r++ {
		ok, err := s.round(ctx, r)
		if err != nil {
			if ctx.Err() != nil {
				s.logf("interrupted; killing the servers")
				return false
			}
			s.logf("round %d: %v", r, err)
			fmt.Fprintf(s.stdout, "soak: FAIL in round %d (%v): %v\n", r, s.plan[r-1], err)
			s.replayHint()
			return false
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
		return false
	}
	if failed {
		fmt.Fprintln(s.stdout, "soak: FAIL")
		s.replayHint()
		return false
	}
	fmt.Fprintln(s.stdout, "soak: PASS")
	return true
}

// setup starts PostgreSQL (cluster mode), the proxies and the servers.
func (s *soak) setup(ctx context.Context) error {
	n := s.cfg.Nodes
	// Ports: data servers' HTTP, business servers', and in cluster mode
	// each member's cluster and management ports.
	ports, err := freeport.Ports(n + 2 + 2*n)
	if err != nil {
		return fmt.Errorf("finding free ports: %w", err)
	}
	loop := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	env := soakEnv(s.dir, s.token, s.cfg.ClientEnv)
	var dsn *url.URL
	if n > 1 {
		if dsn, err = s.startPostgres(ctx); err != nil {
			return err
		}
	}
	var peers []string
	for i := range n {
		peers = append(peers, loop(ports[n+2+n+i]))
	}
	for i := range n {
		p := &soakProc{name: "data", data: true, port: ports[i]}
		p.url = "http://" + loop(ports[i])
		p.args = []string{"dataserver", "--host", "127.0.0.1", "--port", strconv.Itoa(ports[i]),
			"--accounts", strconv.Itoa(s.cfg.Accounts)}
		p.env = append(append([]string{}, env...), "GOBANK_TEST_SLOW=20ms")
		if n == 1 {
			p.args = append(p.args, "--data-dir", filepath.Join(s.dir, "bank-data"), "--log", filepath.Join(s.dir, "data_server.log"))
		} else {
			p.name = "m" + strconv.Itoa(i+1)
			pg, err := faultnet.New(p.name+"->pg", dsn.Host)
			if err != nil {
				return err
			}
			s.pgLink = append(s.pgLink, pg)
			mine := *dsn
			mine.Host = pg.Addr()
			p.env = append(p.env, envPostgresDSN+"="+mine.String())
			_, manage, _ := strings.Cut(peers[i], ":")
			p.args = append(p.args, "--log", filepath.Join(s.dir, p.name+"_data_server.log"),
				"--cluster-addr", loop(ports[n+2+i]), "--cluster-manage-port", manage,
				"--cluster-peers", strings.Join(peers, ","), "--cluster-pin-timeout", "2s")
		}
		s.data = append(s.data, p)
	}
	for i := range s.biz {
		name := "biz" + strconv.Itoa(i+1)
		// Business server i starts with member i mod n and fails over to
		// the next ones, each through a link of its own.
		var urls []string
		for j := range n {
			m := s.data[(i+j)%n]
			l, err := faultnet.New(name+"->"+m.name, loop(m.port))
			if err != nil {
				return err
			}
			s.dataLink[i] = append(s.dataLink[i], l)
			urls = append(urls, l.URL())
		}
		p := &soakProc{name: name, port: ports[n+i], env: env,
			args: []string{"businessserver", strings.Join(urls, ","), strconv.Itoa(ports[n+i]), "--host", "127.0.0.1", "--id", name,
				"--log", filepath.Join(s.dir, name+"_server.log"),
				"--lock-ttl", soakLease.String(), "--lock-wait", "500ms", "--data-timeout", "2500ms"}}
		p.url = "http://" + loop(ports[n+i])
		c, err := faultnet.New("client->"+name, loop(ports[n+i]))
		if err != nil {
			return err
		}
		s.cliLink[i] = c
		s.biz[i] = p
	}
	s.procs = append(append([]*soakProc{}, s.data...), s.biz[0], s.biz[1])
	// The first data server first: with no BANK_SERVER_TOKEN it would
	// create the credential file; the members must all be up and see each
	// other before the business servers move accounts onto them.
	for _, p := range s.data {
		if err := s.startProc(ctx, p); err != nil {
			return err
		}
	}
	if n > 1 {
		for _, p := range s.data {
			if err := s.waitMembers(ctx, p); err != nil {
				return err
			}
		}
	}
	for _, p := range s.biz {
		if err := s.startProc(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// startPostgres starts the members' private PostgreSQL server in
// DIR/postgres and returns its DSN.
func (s *soak) startPostgres(ctx context.Context) (*url.URL, error) {
	pg, err := pgserver.Start(ctx, filepath.Join(s.dir, "postgres"), slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		if errors.Is(err, pgserver.ErrNotInstalled) {
			return nil, fmt.Errorf("--nodes %d needs PostgreSQL for the store the members share: %w", s.cfg.Nodes, err)
		}
		return nil, fmt.Errorf("starting PostgreSQL in %s: %w", filepath.Join(s.dir, "postgres"), err)
	}
	s.postgres = pg
	return url.Parse(pg.DSN())
}

// waitMembers waits until member p sees every member of the cluster.
func (s *soak) waitMembers(ctx context.Context, p *soakProc) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := s.scrape(ctx, p.url)
		if err == nil && m["gobank_cluster_members"] == float64(s.cfg.Nodes) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s does not see %d members after 30s (last: %v, %v)", p.name, s.cfg.Nodes, m["gobank_cluster_members"], err)
		}
		select { // polling a condition with a deadline
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *soak) proxies() []*faultnet.Proxy {
	out := []*faultnet.Proxy{}
	for i := range s.biz {
		if s.cliLink[i] != nil {
			out = append(out, s.cliLink[i])
		}
		out = append(out, s.dataLink[i]...)
	}
	return append(out, s.pgLink...)
}

func (s *soak) closeProxies() {
	for _, p := range s.proxies() {
		_ = p.Close()
	}
	if s.postgres != nil {
		if err := s.postgres.Stop(); err != nil {
			s.logf("stopping PostgreSQL: %v", err)
		}
	}
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
		Servers:       []string{s.cliLink[0].URL(), s.cliLink[1].URL()},
		Workers:       s.cfg.Workers,
		Duration:      s.cfg.Round,
		Mix:           map[string]int{"transferencia": 60, "deposito": 15, "saque": 15, "saldo": 10},
		AmountMin:     1,
		AmountMax:     50,
		Accounts:      s.cfg.Accounts,
		Seed:          s.cfg.Seed ^ uint64(r)<<32,
		Timeout:       5 * time.Second,
		Settle:        10 * time.Second,
		History:       w,
		SnapshotEvery: 200 * time.Millisecond,
		DataServer:    s.data[0].url,
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
	fault := s.plan[r-1]
	FaultErr := s.inject(ctx, fault)
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
	if FaultErr != nil {
		return false, fmt.Errorf("fault %v: %w", fault, FaultErr)
	}
	if res.err != nil {
		return false, fmt.Errorf("load: %w", res.err)
	}
	for _, p := range s.procs {
		if p.proc.Exited() {
			return false, fmt.Errorf("%s (pid %d) exited on its own: %v", p.name, p.pid(), launch.ExitText(p.proc.Err()))
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
		r, len(s.plan), elapsed.Seconds(), rep.Requests, rep.OK, rep.Unknown, fault.Kind,
		bank.Verdict(), bank.Checked, bank.Duration.Round(time.Millisecond), lin.Verdict(), lin.Duration.Round(time.Millisecond), cons)
	for _, c := range []check.Result{bank, lin} {
		if !c.OK {
			ok = false
			fmt.Fprintf(s.stdout, "  %s %s: %s; %d violations, first: %v (history %s)\n", c.Name, c.Verdict(), c.Note, len(c.Violations), firstViolation(c), histPath)
		}
	}
	if !ok {
		fmt.Fprintf(s.stdout, "  round %d FAILED under fault %v (seed %d)\n", r, fault, s.cfg.Seed)
	}
	return ok, nil
}

func firstViolation(r check.Result) string {
	if len(r.Violations) == 0 {
		return "-"
	}
	return r.Violations[0].Message
}

// proc returns the server named name.
func (s *soak) proc(name string) *soakProc {
	for _, p := range s.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// startProc starts p's process and waits until it answers /status.
func (s *soak) startProc(ctx context.Context, p *soakProc) error {
	p.starts++
	out, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("%s-%d.out", p.name, p.starts)))
	if err != nil {
		return err
	}
	cmd := exec.Command(s.exe, p.args...)
	cmd.Dir = s.dir
	cmd.Env = p.env
	proc, err := launch.Start(cmd, out, nil, "")
	if err != nil {
		out.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	s.mu.Lock()
	p.proc, p.out, p.expected = proc, out, false
	s.mu.Unlock()
	go func() {
		<-proc.Done
		out.Close()
	}()
	if err := proc.WaitStatus(ctx, p.url, time.Now().Add(30*time.Second)); err != nil {
		// The output's directory may be gone by the time anyone reads the
		// error (a test's): its end says why the process did not start.
		return fmt.Errorf("%s (pid %d) not ready: %v; the end of its output (%s):\n%s", p.name, proc.Pid(), err, out.Name(), fileTail(out.Name(), 2<<10))
	}
	return nil
}

// fileTail returns the last n bytes of the file named, or why it cannot.
func fileTail(name string, n int64) string {
	f, err := os.Open(name)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		if _, err := f.Seek(fi.Size()-n, io.SeekStart); err != nil {
			return err.Error()
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, n))
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// killAll kills every server still running.
func (s *soak) killAll() {
	for _, p := range s.procs {
		if p.proc == nil || p.proc.Exited() {
			continue
		}
		_ = p.proc.Cmd.Process.Signal(syscall.SIGCONT)
		_ = p.proc.Cmd.Process.Kill()
		<-p.proc.Done
	}
}

// envPostgresDSN names the members' shared store (see "bank help
// dataserver").
const envPostgresDSN = "BANK_POSTGRES_DSN"

// soakEnv is the children's environment: this one without server or
// client settings, with the soak's credential and HOME.
func soakEnv(dir, token string, clientEnv []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "BANK_SERVER_TOKEN", envPostgresDSN, "HOME", "XDG_CONFIG_HOME", "GOBANK_TEST_SLOW":
			continue
		}
		if slices.Contains(clientEnv, k) {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "BANK_SERVER_TOKEN="+token, "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, ".config"))
}
