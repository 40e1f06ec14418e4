package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bank/gobank/actors/store/pgserver"
	"github.com/bank/gobank/benchmarks/launch"
	"github.com/bank/gobank/http/auth"
)

const upDescription = `Runs a data server and business servers on this machine, each one a child
process of this same program ("bank dataserver", "bank businessserver"), as
the original was deployed: start it in a terminal of its own and use the
client commands from another. The data server starts first and creates the
server credential file (see "bank help dataserver"); the business servers,
started once it answers, find it there. The servers' operation logs,
data_server.log and business_server.log, are written in --dir, and so are
the accounts, durably, in --dir/bank-data (a later bank up with the same
--dir finds them again); the servers' diagnostics are printed on stderr,
each line prefixed with the server's name.

Once every server answers /status, bank up prints their URLs, the client
token to use and example commands, then waits. Each data server also serves
its live view, a web page of the accounts (balances, lock holders, queues,
leases, hottest first) and of the last minutes of its metrics, on
127.0.0.1 port --ui-port (member i: --ui-port + i), loopback whatever --host
says: open the URL bank up prints in a browser. Ctrl-C or SIGTERM stops the
servers gracefully, business servers first (SIGTERM, then SIGKILL after
--stop-timeout), and exits 0, or 1 if one had to be killed or failed while
stopping. If a server dies on its own, bank up stops the others and exits 1.

With --nodes N (N > 1), bank up runs a local cluster instead: N data-server
members of a Proto.Actor cluster on ports --data-port, +10, +20..., sharing
the accounts through a private PostgreSQL server that bank up starts in
--dir/postgres (it needs PostgreSQL's server programs: Debian's package
"postgresql"; bank up says what is missing), or, when $BANK_POSTGRES_DSN is
set, through that database. Business server i talks to member i mod N
first and fails over to the others. With --etcd, the members find each
other in that etcd (registrations under a lease; "bank help dataserver")
instead of polling each other's health ports. See docs/scale-out.md.`

// envPostgresDSN names the members' shared store (see "bank help
// dataserver"); with --nodes, bank up uses it instead of starting a
// private PostgreSQL server when it is set.
const envPostgresDSN = "BANK_POSTGRES_DSN"

// upConfig is a parsed "bank up" command line.
type upConfig struct {
	host          string
	dataPort      int
	businessPorts []int
	dir           string
	readyTimeout  time.Duration
	stopTimeout   time.Duration
	nodes         int    // data-server members; 1: a single data server
	clusterPort   int    // the first member's cluster (gRPC) port
	uiPort        int    // the first data server's live view, on loopback; 0: off
	etcd          string // with nodes > 1: etcd client URLs the members register in; empty: automanaged
}

// memberPort is member i's HTTP port: members are 10 ports apart, so that
// the default business ports (5001-5003) stay free.
func (c upConfig) memberPort(i int) int { return c.dataPort + 10*i }

func newUpFlagSet(c *upConfig, businessPorts *string) *flag.FlagSet {
	fs := newFlagSet("up")
	fs.StringVar(&c.host, "host", "127.0.0.1", `address the servers listen on ("0.0.0.0" to serve other machines)`)
	fs.IntVar(&c.dataPort, "data-port", 5000, "data server port")
	fs.StringVar(businessPorts, "business-ports", "5001,5002,5003", "business server ports, comma-separated: one server each")
	fs.StringVar(&c.dir, "dir", ".", "working directory of the servers, where their logs go (created if missing)")
	fs.DurationVar(&c.readyTimeout, "ready-timeout", 30*time.Second, "how long to wait for the servers to answer /status")
	fs.DurationVar(&c.stopTimeout, "stop-timeout", 15*time.Second, "how long to wait for the servers to stop before killing them")
	fs.IntVar(&c.nodes, "nodes", 1, "data-server members: more than 1 runs a local cluster over a private PostgreSQL server")
	fs.IntVar(&c.uiPort, "ui-port", 5100, "port of the data server's live view (member i: +i), always on 127.0.0.1: it shows balances and lock holders (0: off)")
	fs.IntVar(&c.clusterPort, "cluster-port", 0, "with --nodes: the first member's cluster port, the next ones following it; each member's health port is its cluster port + 1000 (0: --data-port + 2000)")
	fs.StringVar(&c.etcd, "etcd", "", "with --nodes: the members find each other in this etcd (comma-separated client URLs, e.g. http://127.0.0.1:2379) instead of polling each other's health ports")
	return fs
}

func upUsage() string {
	var c upConfig
	var ports string
	fs := newUpFlagSet(&c, &ports)
	return fmt.Sprintf("usage: bank up [flags]\n\n%s\n\nflags:\n%s\nexamples:\n  bank up\n  bank up --dir /tmp/bank --data-port 6000 --business-ports 6001,6002\n  bank up --nodes 3\n  bank up --nodes 3 --etcd http://127.0.0.1:2379\n",
		upDescription, describeFlags(fs))
}

// parseUp parses the command line of "bank up".
func parseUp(args []string) (upConfig, error) {
	var c upConfig
	var ports string
	fs := newUpFlagSet(&c, &ports)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return c, err
	}
	if len(pos) > 0 {
		return c, usagef("up takes no arguments, got %q", pos)
	}
	seen := map[int]bool{}
	check := func(p int, what string) error {
		if p < 1 || p > 65535 {
			return usagef("%s %d: not a TCP port", what, p)
		}
		if seen[p] {
			return usagef("port %d given twice", p)
		}
		seen[p] = true
		return nil
	}
	if c.nodes < 1 || c.nodes > 9 {
		return c, usagef("--nodes %d: want 1 to 9 members", c.nodes)
	}
	if c.etcd != "" && c.nodes < 2 {
		return c, usagef("--etcd is for a cluster: give --nodes 2 or more")
	}
	if c.clusterPort == 0 {
		c.clusterPort = c.dataPort + 2000
	}
	for i := range c.nodes {
		if err := check(c.memberPort(i), "--data-port"); err != nil {
			return c, err
		}
		if c.uiPort != 0 {
			if err := check(c.uiPort+i, "--ui-port"); err != nil {
				return c, err
			}
		}
		if c.nodes > 1 {
			if err := check(c.clusterPort+i, "--cluster-port"); err != nil {
				return c, err
			}
			if c.etcd != "" {
				continue // no health ports
			}
			if err := check(c.clusterPort+i+1000, "--cluster-port (+1000, health)"); err != nil {
				return c, err
			}
		}
	}
	for _, f := range strings.Split(ports, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil {
			return c, usagef("--business-ports: %q is not a port number", f)
		}
		if err := check(p, "--business-ports"); err != nil {
			return c, err
		}
		c.businessPorts = append(c.businessPorts, p)
	}
	if len(c.businessPorts) == 0 {
		return c, usagef("--business-ports: need at least one port")
	}
	if c.dir == "" {
		return c, usagef("--dir: empty")
	}
	if c.readyTimeout <= 0 || c.stopTimeout <= 0 {
		return c, usagef("--ready-timeout and --stop-timeout must be positive")
	}
	return c, nil
}

func runUp(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseUp(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, upUsage())
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "bank up: %v\nrun \"bank help up\" for usage\n", err)
		return exitUsage
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "bank up: cannot find this program to run the servers: %v\n", err)
		return exitFail
	}
	s := &supervisor{exe: exe, cfg: cfg, stdout: stdout, stderr: stderr}
	return s.run(ctx)
}

// child is one server process.
type child struct {
	name string // "data server" or "business server"
	url  string // where it answers
	ui   string // a data server's live view; empty: none
	args []string
	env  []string      // added to this program's environment
	proc *launch.Child // once started
}

func (c *child) String() string {
	if c.proc != nil {
		return fmt.Sprintf("%s %s (pid %d)", c.name, c.url, c.proc.Pid())
	}
	return c.name + " " + c.url
}

func (c *child) exited() bool { return c.proc.Exited() }

// supervisor runs the children of "bank up".
type supervisor struct {
	exe    string
	cfg    upConfig
	stdout io.Writer
	stderr io.Writer

	errMu    sync.Mutex // serializes writes to stderr, shared with the children's output
	children []*child
	exits    chan *child      // each child once, when it exits
	postgres *pgserver.Server // with --nodes: the members' store
}

// stopPostgres stops the members' PostgreSQL server, once they are gone.
func (s *supervisor) stopPostgres() {
	if s.postgres == nil {
		return
	}
	if err := s.postgres.Stop(); err != nil {
		s.logf("stopping PostgreSQL: %v", err)
		return
	}
	s.logf("PostgreSQL stopped")
}

func (s *supervisor) logf(format string, args ...any) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	fmt.Fprintf(s.stderr, "bank up: "+format+"\n", args...)
}

// run starts the servers, waits until ctx is cancelled or one dies, and
// stops them. It returns the exit status.
func (s *supervisor) run(ctx context.Context) int {
	dir, err := filepath.Abs(s.cfg.dir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		s.logf("--dir %s: %v", s.cfg.dir, err)
		return exitFail
	}
	s.cfg.dir = dir
	connectHost := dialHost(s.cfg.host)
	var members []*child
	var env []string
	if s.cfg.nodes > 1 {
		if os.Getenv(envPostgresDSN) != "" {
			// The members inherit it: an existing server (or CockroachDB,
			// YugabyteDB) instead of a private one.
			s.logf("members share the PostgreSQL database of $%s", envPostgresDSN)
		} else {
			pg, err := pgserver.Start(ctx, filepath.Join(dir, "postgres"), slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			if err != nil {
				if errors.Is(err, pgserver.ErrNotInstalled) {
					s.logf("--nodes %d needs PostgreSQL for the store the members share: %v; or set $%s to an existing database",
						s.cfg.nodes, err, envPostgresDSN)
				} else {
					s.logf("starting PostgreSQL in %s: %v", filepath.Join(dir, "postgres"), err)
				}
				return exitFail
			}
			s.postgres = pg
			s.logf("PostgreSQL started in %s", pg.Dir())
			env = []string{envPostgresDSN + "=" + pg.DSN()}
		}
	}
	var peers []string
	for i := range s.cfg.nodes {
		peers = append(peers, net.JoinHostPort(connectHost, strconv.Itoa(s.cfg.clusterPort+i+1000)))
	}
	for i := range s.cfg.nodes {
		port := strconv.Itoa(s.cfg.memberPort(i))
		m := &child{
			name: "data server",
			url:  "http://" + net.JoinHostPort(connectHost, port),
			args: []string{"dataserver", "--host", s.cfg.host, "--port", port},
			env:  env,
		}
		if s.cfg.uiPort != 0 {
			ui := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.uiPort+i))
			m.args = append(m.args, "--ui-addr", ui)
			m.ui = "http://" + ui + "/"
		}
		if s.cfg.nodes > 1 {
			m.args = append(m.args, "--cluster-addr", net.JoinHostPort(connectHost, strconv.Itoa(s.cfg.clusterPort+i)))
			if s.cfg.etcd != "" {
				m.args = append(m.args, "--cluster-provider", "etcd", "--etcd-endpoints", s.cfg.etcd)
			} else {
				m.args = append(m.args, "--cluster-peers", strings.Join(peers, ","))
			}
		}
		members = append(members, m)
	}
	data := members[0]
	var business []*child
	for i, p := range s.cfg.businessPorts {
		// Each business server starts with its own member and fails over
		// to the next ones.
		var urls []string
		for j := range members {
			urls = append(urls, members[(i+j)%len(members)].url)
		}
		business = append(business, &child{
			name: "business server",
			url:  "http://" + net.JoinHostPort(connectHost, strconv.Itoa(p)),
			args: []string{"businessserver", strings.Join(urls, ","), strconv.Itoa(p), "--host", s.cfg.host},
		})
	}
	s.exits = make(chan *child, len(members)+len(business))
	defer s.stopPostgres()

	deadline := time.Now().Add(s.cfg.readyTimeout)
	// The first data server first: it creates the server credential file
	// that the other servers read.
	if code, ok := s.startAndWait(ctx, deadline, data); !ok {
		return code
	}
	for _, c := range append(members[1:], business...) {
		if err := s.start(c); err != nil {
			s.logf("%v", err)
			s.stopAll()
			return exitFail
		}
	}
	for _, c := range append(members[1:], business...) {
		if code, ok := s.waitReady(ctx, deadline, c); !ok {
			return code
		}
	}
	s.printBanner(members, business)

	select {
	case <-ctx.Done():
		s.logf("stopping the servers")
	case c := <-s.exits:
		if ctx.Err() == nil {
			s.logf("%v exited unexpectedly: %v; stopping the others", c, launch.ExitText(c.proc.Err()))
			s.stopAll()
			return exitFail
		}
		s.logf("stopping the servers")
	}
	if !s.stopAll() {
		return exitFail
	}
	s.logf("all servers stopped")
	return exitOK
}

// startAndWait starts c and waits until it answers. ok is false when it
// failed or ctx was cancelled; the servers are stopped then and code is
// the exit status.
func (s *supervisor) startAndWait(ctx context.Context, deadline time.Time, c *child) (code int, ok bool) {
	if err := s.start(c); err != nil {
		s.logf("%v", err)
		s.stopAll()
		return exitFail, false
	}
	return s.waitReady(ctx, deadline, c)
}

// waitReady waits until c answers /status; see startAndWait.
func (s *supervisor) waitReady(ctx context.Context, deadline time.Time, c *child) (code int, ok bool) {
	err := c.proc.WaitStatus(ctx, c.url, deadline)
	switch {
	case err == nil:
		return exitOK, true
	case ctx.Err() != nil:
		s.logf("interrupted while starting; stopping the servers")
		if s.stopAll() {
			return exitOK, false
		}
		return exitFail, false
	case c.exited():
		s.logf("%v exited before it was ready: %v (its output is above)", c, launch.ExitText(c.proc.Err()))
	default:
		s.logf("%v: %v", c, err)
	}
	s.stopAll()
	return exitFail, false
}

// start starts c's process.
func (s *supervisor) start(c *child) error {
	cmd := exec.Command(s.exe, c.args...)
	cmd.Dir = s.cfg.dir
	if len(c.env) > 0 {
		cmd.Env = append(os.Environ(), c.env...)
	}
	proc, err := launch.Start(cmd, s.stderr, &s.errMu, "["+c.name[:strings.IndexByte(c.name, ' ')]+" "+portOf(c.url)+"] ")
	if err != nil {
		return fmt.Errorf("starting the %s: %w", c.name, err)
	}
	c.proc = proc
	s.children = append(s.children, c)
	s.logf("started %v", c)
	go func() {
		<-proc.Done
		s.exits <- c
	}()
	return nil
}

// stopAll stops every child still running: the business servers first, so
// that they can finish their requests against the data server, then the
// data server. Each group gets SIGTERM, then SIGKILL after stopTimeout. It
// reports whether every child exited cleanly on its own.
func (s *supervisor) stopAll() bool {
	var first, last []*child
	for _, c := range s.children {
		if c.name == "data server" {
			last = append(last, c)
		} else {
			first = append(first, c)
		}
	}
	clean := s.stopGroup(first)
	return s.stopGroup(last) && clean
}

func (s *supervisor) stopGroup(group []*child) bool {
	clean := true
	var running []*child
	for _, c := range group {
		if c.exited() {
			continue
		}
		if err := c.proc.Terminate(); err != nil && !c.exited() {
			s.logf("signalling %v: %v", c, err)
		}
		running = append(running, c)
	}
	deadline := time.Now().Add(s.cfg.stopTimeout)
	for _, c := range running {
		if !waitDone(c.proc.Done, deadline) {
			s.logf("%v did not stop within %v; killing it", c, s.cfg.stopTimeout)
			_ = c.proc.Cmd.Process.Kill()
			<-c.proc.Done
			clean = false
			continue
		}
		if err := c.proc.Err(); err != nil {
			s.logf("%v stopped with %v", c, launch.ExitText(err))
			clean = false
		}
	}
	return clean
}

// waitDone waits until done is closed or the deadline passes, and reports
// whether done was closed.
func waitDone(done <-chan struct{}, deadline time.Time) bool {
	select {
	case <-done:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
}

// printBanner tells the user where the servers are and how to use them.
func (s *supervisor) printBanner(members []*child, business []*child) {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "%-16s %s\n", k, v) }
	for _, m := range members {
		row("data server", fmt.Sprintf("%s  (pid %d)", m.url, m.proc.Pid()))
	}
	for _, m := range members {
		if m.ui != "" {
			row("live view", m.ui+"  (open it in a browser)")
		}
	}
	if s.postgres != nil {
		row("store", "PostgreSQL in "+s.postgres.Dir()+", shared by the members")
	}
	data := members[0]
	var urls []string
	for _, c := range business {
		row("business server", fmt.Sprintf("%s  (pid %d)", c.url, c.proc.Pid()))
		urls = append(urls, c.url)
	}
	row("logs", filepath.Join(s.cfg.dir, "data_server.log")+", "+filepath.Join(s.cfg.dir, "business_server.log"))
	row("client token", defaultToken+"  (any of the demo tokens: "+strings.Join(auth.DefaultClientTokens, " ")+")")
	authURL := data.url + "/autentica"
	authFlag := ""
	if authURL != "http://127.0.0.1:5000/autentica" {
		authFlag = " --auth " + authURL
	}
	serverFlag := func(i int) string {
		u := urls[i%len(urls)]
		if u == "http://127.0.0.1:5001" && authFlag == "" {
			return ""
		}
		return " --server " + u + authFlag
	}
	b.WriteString("\ntry, from another terminal:\n")
	fmt.Fprintf(&b, "  bank deposito 2 5000%s\n", serverFlag(0))
	fmt.Fprintf(&b, "  bank transferencia 2 1 2000%s\n", serverFlag(1))
	fmt.Fprintf(&b, "  bank saque 1 1000%s\n", serverFlag(2))
	fmt.Fprintf(&b, "  bank saldo 2%s\n", serverFlag(0))
	demo := "  bank demo"
	if strings.Join(urls, ",") != "http://127.0.0.1:5001,http://127.0.0.1:5002,http://127.0.0.1:5003" || authFlag != "" {
		demo += " --servers " + strings.Join(urls, ",") + " --auth " + authURL
	}
	b.WriteString(demo + "\n\n")
	b.WriteString("ready: press Ctrl-C to stop\n")
	fmt.Fprint(s.stdout, b.String())
}

// dialHost is the host to connect to for servers listening on host.
func dialHost(host string) string {
	if host == "" {
		return "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() == nil {
			return "::1"
		}
		return "127.0.0.1"
	}
	return host
}

func portOf(rawURL string) string {
	i := strings.LastIndexByte(rawURL, ':')
	return rawURL[i+1:]
}
