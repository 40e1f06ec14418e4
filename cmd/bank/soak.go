package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/bank/gobank/actors/store/pgserver"
	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/launch"
	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/http/faultnet"
	"github.com/bank/gobank/http/freeport"
	"github.com/bank/gobank/http/metrics"
)

const soakDescription = `Runs a bank of its own (a durable data server and two business servers,
child processes of this program on free loopback ports; with --nodes N, N
data-server members of a cluster over a private PostgreSQL server) under
the mixed workload of "bank bench" in rounds, injecting one fault per
round, and checks every round's recorded history for conservation and
linearizability. It also watches the servers for leaks: memory (VmRSS),
goroutines and live account actors.

Every link goes through a fault-injecting proxy on 127.0.0.1 (toxiproxy,
embedded): client -> business server, business server -> data server (one
per pair), and with --nodes member -> PostgreSQL (one per member). The
load generator talks to the business servers through their proxies; its
snapshots read the first data server directly.

The data servers answer every tenth request 20ms late
(GOBANK_TEST_SLOW=20ms); the single data server keeps its accounts in
DIR/bank-data. The business servers run with --lock-ttl 1s --lock-wait
500ms --data-timeout 2500ms. The children get a random BANK_SERVER_TOKEN
and HOME=DIR. A restarted server gets the ports it had.

--seed picks the fault schedule: the fault of each round, its target, when
it starts (between 1/8 and 1/3 into the round), how long it lasts (it is
healed by 3/4 of the round) and its parameters. The same seed and flags
give the same schedule, printed before the first round. The faults
(--faults all, process, net, or a comma-separated list of):
  kill-biz      kill -9 business server biz1, restart it on its port
  kill-data     kill -9 the data server (a random member), restart it
  stop-biz      SIGSTOP biz2 past its lease, then SIGCONT
  slow-data     business -> data latency with jitter, both ways
  late-writes   business -> data answers delayed past the lease: the
                business server's writes reach the data server after its
                lease ran out, and must be refused (fences)
  part-data     business -/- data partition past the lease (silence)
  drop-answers  business -> data connections closed n bytes into their
                answers: the answer cut is lost after the data server
                applied its request (a getLocks, or a commit)
  cut-requests  business -> data connections closed after n bytes of
                requests (400-4000): in the middle of one
  reset-client  client -> business connections reset once the answer
                comes (the operation was applied, the client cannot know)
  slow-client   client -> business latency, bandwidth limit and slicing
  part-client   client -/- business partition
  part-pg       member -/- PostgreSQL partition        (--nodes > 1)
  slow-pg       member -> PostgreSQL latency           (--nodes > 1)
  reset-pg      member -> PostgreSQL connections reset (--nodes > 1)
biz2 is never restarted, so it lives through the whole soak.

Each round runs the workload (loadgen, business target, 5 account groups,
a data-server snapshot every 200ms, request timeout 5s, history in
DIR/round-N.jsonl) for --round; after the round, check.Bank and
check.Linearizable (timeout 1m) judge the history and the load generator
checks conservation: a FAIL or an inconclusive verdict fails the soak,
which then prints the seed and the command that replays its schedule.
One line per round is printed.

After the first round (warmed up) and after the last, each server's RSS
(VmRSS of /proc/PID/status), goroutines (go_goroutines of its /metrics) and
live actors (gobank_data_accounts, data servers) are sampled. The soak
fails when, for a server that was not restarted in between, RSS grew by
more than --max-rss-growth (a size, 64MiB, or a percentage of the first
sample, 50%) or goroutines grew by more than --max-goroutine-growth; the
live actors of a data server must not exceed --accounts. A final table
shows the samples.

Exit status: 0 every check and bound held; 1 a check failed, a bound was
exceeded, a server failed or the soak was interrupted (Ctrl-C kills the
servers); 2 the command line is wrong.`

// soakConfig is a parsed "bank soak" command line.
type soakConfig struct {
	duration  time.Duration
	round     time.Duration
	workers   int
	accounts  int
	nodes     int
	seed      uint64
	faults    []faultKind
	faultsArg string
	dir       string
	keep      bool
	rssBound  sizeBound
	rssArg    string
	goroBound int64
}

// replayCommand is the command line that replays c's schedule.
func (c soakConfig) replayCommand() string {
	return fmt.Sprintf("bank soak --seed %d --duration %v --round %v --workers %d --accounts %d --nodes %d --faults %s --max-rss-growth %s --max-goroutine-growth %d",
		c.seed, c.duration, c.round, c.workers, c.accounts, c.nodes, c.faultsArg, c.rssArg, c.goroBound)
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

func newSoakFlagSet(c *soakConfig, seed *string) *flag.FlagSet {
	fs := newFlagSet("soak")
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "total load time, split in rounds")
	fs.DurationVar(&c.round, "round", 30*time.Second, "length of a round (at least 6s): one fault and one check each")
	fs.IntVar(&c.workers, "workers", 16, "load generator workers")
	fs.IntVar(&c.accounts, "accounts", 10, "accounts of the bank (at least 5: one group of the workload each)")
	fs.IntVar(&c.nodes, "nodes", 1, "data servers: more than 1 runs a cluster of members over a private PostgreSQL server (needs PostgreSQL's server programs)")
	fs.StringVar(seed, "seed", "", "the fault schedule's seed, a number (default: a random one, printed)")
	fs.StringVar(&c.faultsArg, "faults", "all", "the faults to draw from: all, process, net, or a comma-separated list of kinds (see above)")
	fs.StringVar(&c.dir, "dir", "", "where the data, logs and histories go (default: a temporary directory, removed afterwards unless --keep)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory")
	fs.StringVar(&c.rssArg, "max-rss-growth", "64MiB", "fail if a server's RSS grows by more than this between the first round and the end: a size (64MiB) or a percentage (50%)")
	fs.Int64Var(&c.goroBound, "max-goroutine-growth", 200, "fail if a server's goroutines grow by more than this between the first round and the end")
	return fs
}

func soakUsage() string {
	var c soakConfig
	var seed string
	fs := newSoakFlagSet(&c, &seed)
	return fmt.Sprintf("usage: bank soak [flags]\n\n%s\n\nflags:\n%s\nexamples:\n  bank soak --duration 2m --round 20s\n  bank soak --seed 42 --duration 10m --faults net\n  bank soak --nodes 3 --duration 5m --round 15s\n  bank soak --duration 1h --max-rss-growth 25%% --dir /tmp/soak\n",
		soakDescription, describeFlags(fs))
}

func parseSoak(args []string) (soakConfig, error) {
	var c soakConfig
	var seed string
	fs := newSoakFlagSet(&c, &seed)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return c, err
	}
	if len(pos) > 0 {
		return c, usagef("soak takes no arguments, got %q", pos)
	}
	if c.round < 6*time.Second {
		return c, usagef("--round %v: at least 6s", c.round)
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
	if c.nodes < 1 || c.nodes > 9 {
		return c, usagef("--nodes %d: want 1 to 9", c.nodes)
	}
	if c.goroBound < 0 {
		return c, usagef("--max-goroutine-growth %d: negative", c.goroBound)
	}
	if c.rssBound, err = parseSizeBound(c.rssArg); err != nil {
		return c, usagef("--max-rss-growth %v", err)
	}
	if c.faults, err = parseFaultSet(c.faultsArg, c.nodes); err != nil {
		return c, usagef("--faults %v", err)
	}
	if seed == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.seed = binary.LittleEndian.Uint64(b[:]) >> 1 // printable as a positive int64 too
	} else if c.seed, err = strconv.ParseUint(seed, 10, 64); err != nil {
		return c, usagef("--seed %q: want a number from 0 to %d", seed, uint64(math.MaxUint64))
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
	data   []*soakProc // the data server, or the members
	biz    [2]*soakProc
	client *http.Client
	plan   []plannedFault

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
	fmt.Fprintf(s.stdout, "seed %d; replay the schedule with:\n  %s\n", s.cfg.seed, s.cfg.replayCommand())
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
	defer s.closeProxies()
	rounds := int(s.cfg.duration / s.cfg.round)
	s.plan = planSoak(s.cfg.seed, rounds, s.cfg.round, s.cfg.nodes, s.cfg.faults)

	if err := s.setup(ctx); err != nil {
		s.logf("%v", err)
		return exitFail
	}
	fmt.Fprintf(s.stdout, "bank soak: seed %d, %d rounds of %v, %d workers, %d accounts, %d data server(s), dir %s\n",
		s.cfg.seed, rounds, s.cfg.round, s.cfg.workers, s.cfg.accounts, s.cfg.nodes, dir)
	fmt.Fprintf(s.stdout, "bounds: RSS growth <= %v, goroutine growth <= %d per server not restarted in between; data server live actors <= %d\n",
		s.cfg.rssBound, s.cfg.goroBound, s.cfg.accounts)
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
				return exitFail
			}
			s.logf("round %d: %v", r, err)
			fmt.Fprintf(s.stdout, "soak: FAIL in round %d (%v): %v\n", r, s.plan[r-1], err)
			s.replayHint()
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
		s.replayHint()
		return exitFail
	}
	fmt.Fprintln(s.stdout, "soak: PASS")
	return exitOK
}

// setup starts PostgreSQL (cluster mode), the proxies and the servers.
func (s *soak) setup(ctx context.Context) error {
	n := s.cfg.nodes
	// Ports: data servers' HTTP, business servers', and in cluster mode
	// each member's cluster and management ports.
	ports, err := freeport.Ports(n + 2 + 2*n)
	if err != nil {
		return fmt.Errorf("finding free ports: %w", err)
	}
	loop := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	env := soakEnv(s.dir, s.token)
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
			"--accounts", strconv.Itoa(s.cfg.accounts)}
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
			return nil, fmt.Errorf("--nodes %d needs PostgreSQL for the store the members share: %w", s.cfg.nodes, err)
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
		if err == nil && m["gobank_cluster_members"] == float64(s.cfg.nodes) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s does not see %d members after 30s (last: %v, %v)", p.name, s.cfg.nodes, m["gobank_cluster_members"], err)
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
		Workers:       s.cfg.workers,
		Duration:      s.cfg.round,
		Mix:           map[string]int{"transferencia": 60, "deposito": 15, "saque": 15, "saldo": 10},
		AmountMin:     1,
		AmountMax:     50,
		Accounts:      s.cfg.accounts,
		Seed:          s.cfg.seed ^ uint64(r)<<32,
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
	faultErr := s.inject(ctx, fault)
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
		return false, fmt.Errorf("fault %v: %w", fault, faultErr)
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
		fmt.Fprintf(s.stdout, "  round %d FAILED under fault %v (seed %d)\n", r, fault, s.cfg.seed)
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

// wait waits d (the schedule's timing, not a synchronization), or until
// ctx is done.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// inject waits until f.At into the round, then injects f, and heals it
// f.For later.
func (s *soak) inject(ctx context.Context, f plannedFault) error {
	wait(ctx, f.At)
	if ctx.Err() != nil {
		return nil
	}
	target := s.proc(f.Target)
	if target == nil {
		return fmt.Errorf("no server %q", f.Target)
	}
	switch f.Kind {
	case faultKillBiz, faultKillData:
		return s.restart(ctx, target)
	case faultStopBiz:
		if err := target.proc.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			return err
		}
		wait(ctx, f.For)
		return target.proc.Cmd.Process.Signal(syscall.SIGCONT)
	}
	var links []*faultnet.Proxy
	var add func(p *faultnet.Proxy) error
	switch f.Kind {
	case faultSlowData, faultLateWrites, faultPartData, faultDropAns, faultCutReq:
		// The business server's link to the data server it uses first.
		links = s.dataLink[s.bizIndex(target)][:1]
	case faultResetCli, faultSlowCli, faultPartCli:
		links = []*faultnet.Proxy{s.cliLink[s.bizIndex(target)]}
	case faultPartPG, faultSlowPG, faultResetPG:
		for i, m := range s.data {
			if m == target {
				links = []*faultnet.Proxy{s.pgLink[i]}
			}
		}
	}
	switch f.Kind {
	case faultSlowData, faultSlowPG:
		add = func(p *faultnet.Proxy) error { return p.Latency(faultnet.Both, f.Latency, f.Jitter) }
	case faultLateWrites:
		add = func(p *faultnet.Proxy) error { return p.Latency(faultnet.Down, f.Latency, f.Jitter) }
	case faultPartData, faultPartCli, faultPartPG:
		add = (*faultnet.Proxy).Partition
	case faultDropAns:
		// Each connection's answers stop after f.Bytes, in the middle of
		// one: an answer of getLocks as well as of a commit the data
		// server applied.
		add = func(p *faultnet.Proxy) error { return p.LimitData(faultnet.Down, f.Bytes) }
	case faultCutReq:
		add = func(p *faultnet.Proxy) error { return p.LimitData(faultnet.Up, f.Bytes) }
	case faultResetCli:
		add = func(p *faultnet.Proxy) error { return p.ResetPeer(faultnet.Down, 0) }
	case faultResetPG:
		add = func(p *faultnet.Proxy) error { return p.ResetPeer(faultnet.Both, 0) }
	case faultSlowCli:
		add = func(p *faultnet.Proxy) error {
			return errors.Join(p.Latency(faultnet.Both, f.Latency, f.Jitter), p.Bandwidth(faultnet.Both, f.KiBps),
				p.Slicer(faultnet.Both, 32, 16, 200*time.Microsecond))
		}
	}
	if len(links) == 0 || add == nil {
		return fmt.Errorf("fault %s on %s: no such link", f.Kind, f.Target)
	}
	for _, l := range links {
		if err := add(l); err != nil {
			return err
		}
	}
	wait(ctx, f.For)
	var errs []error
	for _, l := range links {
		errs = append(errs, l.Heal())
	}
	return errors.Join(errs...)
}

func (s *soak) bizIndex(p *soakProc) int {
	if p == s.biz[1] {
		return 1
	}
	return 0
}

// restart kills p with SIGKILL and starts it again on its port.
func (s *soak) restart(ctx context.Context, p *soakProc) error {
	s.mu.Lock()
	p.expected = true
	s.mu.Unlock()
	if err := p.proc.Cmd.Process.Kill(); err != nil && !p.proc.Exited() {
		return err
	}
	<-p.proc.Done
	if err := s.startProc(ctx, p); err != nil {
		return err
	}
	if p.data && s.cfg.nodes > 1 {
		return s.waitMembers(ctx, p)
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
		return fmt.Errorf("%s (pid %d) not ready: %v (output in %s)", p.name, proc.Pid(), err, out.Name())
	}
	return nil
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
		if p.data {
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
		case "BANK_SERVER_TOKEN", envPostgresDSN, envServer, envAuth, envToken, "HOME", "XDG_CONFIG_HOME", "GOBANK_TEST_SLOW":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "BANK_SERVER_TOKEN="+token, "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, ".config"))
}
