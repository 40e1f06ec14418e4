//go:build unix

package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bank/gobank/cmd/internal/proctest"
)

// End-to-end tests: the bank binary, built once, run as real processes.

var (
	binDir   string // removed by TestMain
	buildBin = sync.OnceValues(func() (string, error) {
		gobin, err := exec.LookPath("go")
		if err != nil {
			return "", err
		}
		bin := filepath.Join(binDir, "bank")
		out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build: %v\n%s", err, out)
		}
		return bin, nil
	})
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bank-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func bankBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: builds and runs the bank binary")
	}
	bin, err := buildBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// testEnv is the environment of the processes: no server credential and
// no client settings inherited, and a home of the test's own, so that the
// zero-flag secret file lands in it.
func testEnv(home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "BANK_SERVER_TOKEN", envPostgresDSN, envServer, envAuth, envToken, "HOME", "XDG_CONFIG_HOME":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	return append(env, extra...)
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// upProcess is a running "bank up".
type upProcess struct {
	cmd       *exec.Cmd
	stdout    *syncBuffer
	stderr    *syncBuffer
	lines     chan string   // stdout, line by line
	done      chan struct{} // closed when the process has been waited for
	err       error         // its exit error, read after done
	dataPort  int
	business  []int
	childPIDs []int // from the banner
	dir, home string
	uiPort    int // the data server's live view; 0: off
}

// startUp runs "bank up" on free ports and waits for its banner.
func startUp(t *testing.T) *upProcess {
	t.Helper()
	return startUpIn(t, t.TempDir(), proctest.FreePorts(t, 4), 1)
}

// startUpIn runs "bank up" in tmp/run with its home in tmp/home, the data
// server (the first member) on ports[0] and business servers on the
// others, with nodes data-server members, and waits for its banner.
func startUpIn(t *testing.T, tmp string, ports []int, nodes int, args ...string) *upProcess {
	t.Helper()
	bin := bankBinary(t)
	p := &upProcess{
		stdout:   &syncBuffer{},
		stderr:   &syncBuffer{},
		lines:    make(chan string, 1000),
		done:     make(chan struct{}),
		dataPort: ports[0],
		business: ports[1:],
		dir:      filepath.Join(tmp, "run"),
		home:     filepath.Join(tmp, "home"),
	}
	// The live view on a free port; members would need ports next to it,
	// which nothing reserves, so a cluster runs without.
	if nodes == 1 {
		p.uiPort = proctest.FreePorts(t, 1)[0]
	}
	p.cmd = exec.Command(bin, append([]string{"up", "--data-port", strconv.Itoa(ports[0]),
		"--business-ports", fmt.Sprintf("%d,%d,%d", ports[1], ports[2], ports[3]), "--dir", p.dir, "--stop-timeout", "20s",
		"--nodes", strconv.Itoa(nodes), "--ui-port", strconv.Itoa(p.uiPort)}, args...)...)
	p.cmd.Env = testEnv(p.home)
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.stdout.Write([]byte(sc.Text() + "\n"))
			select {
			case p.lines <- sc.Text():
			default: // nobody reads after the banner; stdout keeps it all
			}
		}
		close(p.lines)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill(t) })

	// Read the banner, with a deadline.
	pidRE := regexp.MustCompile(`^(data|business) server +http://127\.0\.0\.1:(\d+)  \(pid (\d+)\)$`)
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.done
				t.Fatalf("bank up exited before it was ready: %v\nstdout:\n%s\nstderr:\n%s", p.err, p.stdout, p.stderr)
			}
			if m := pidRE.FindStringSubmatch(line); m != nil {
				pid, _ := strconv.Atoi(m[3])
				p.childPIDs = append(p.childPIDs, pid)
			}
			if strings.HasPrefix(line, "ready:") {
				if len(p.childPIDs) != 3+nodes {
					t.Fatalf("banner lists %d servers, want %d:\n%s", len(p.childPIDs), 3+nodes, p.stdout)
				}
				return p
			}
		case <-deadline:
			t.Fatalf("bank up not ready within 60s\nstdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	}
}

func (p *upProcess) url(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
func (p *upProcess) auth() string        { return p.url(p.dataPort) + "/autentica" }

// waitExit waits for bank up to exit, within d.
func (p *upProcess) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("bank up did not exit within %v\nstderr:\n%s", d, p.stderr)
		return nil
	}
}

// kill makes sure that nothing outlives the test: bank up, and its
// children if it could not stop them.
func (p *upProcess) kill(t *testing.T) {
	select {
	case <-p.done:
		// bank up exited on its own: it must have stopped its servers.
		for _, port := range append([]int{p.dataPort}, p.business...) {
			if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
				c.Close()
				t.Errorf("a server still listens on port %d after bank up exited", port)
				p.killChildren()
				return
			}
		}
	default:
		// The test failed before stopping it.
		_ = p.cmd.Process.Kill()
		<-p.done
		p.killChildren()
	}
}

func (p *upProcess) killChildren() {
	for _, pid := range p.childPIDs {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// runBank runs the binary to completion and returns its exit status and
// output.
func runBank(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bankBinary(t), args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 5 * time.Second
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("bank %s did not finish within 2 minutes", strings.Join(args, " "))
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("bank %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errOut.String()
}

// assertRefused checks that nothing listens on port any more.
func assertRefused(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err == nil {
		c.Close()
		t.Errorf("port %d still accepts connections", port)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("port %d: %v, want connection refused", port, err)
	}
}

// assertGone checks that process pid no longer exists.
func assertGone(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("server process %d still exists (kill 0: %v)", pid, err)
	}
}

var logLineRE = regexp.MustCompile(`^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}, \d+, [^,]+, [A-Za-z]+(, [^,]+)*$`)

// readLog returns a log file's lines, each checked against the format.
func readLog(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatalf("%s is empty", path)
	}
	for _, l := range lines {
		if !logLineRE.MatchString(l) {
			t.Errorf("%s: line not in the format MM/DD/YYYY HH:MM:SS, N, ID, OP, params...: %q", path, l)
		}
	}
	return lines
}

func TestEndToEnd(t *testing.T) {
	up := startUp(t)
	env := testEnv(up.home)
	srv := func(i int) []string { return []string{"--server", up.url(up.business[i]), "--auth", up.auth()} }

	// The banner tells how to use the servers.
	banner := up.stdout.String()
	for _, want := range []string{up.url(up.dataPort), up.url(up.business[2]), "client token     ba0f", "bank deposito 2 5000", "bank demo --servers "} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner does not contain %q:\n%s", want, banner)
		}
	}
	// The zero-flag server credential was created in the test's home.
	fi, err := os.Stat(filepath.Join(up.home, ".config", "gobank", "server-token"))
	if err != nil {
		t.Fatalf("server credential file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("server credential file mode %v, want 0600", fi.Mode().Perm())
	}

	// The seed README's example, one business server each.
	steps := []struct {
		args []string
		want string
	}{
		{append([]string{"deposito", "2", "5000"}, srv(0)...), "deposito conta=2 valor=5000 saldo=6000\n"},
		{append(srv(1), "transferencia", "2", "1", "2000"), "transferencia conta_orig=2 conta_dest=1 valor=2000 saldo_orig=4000 saldo_dest=3000\n"},
		{append([]string{"saque", "1"}, append(srv(2), "1000")...), "saque conta=1 valor=1000 saldo=2000\n"},
		{append([]string{"saldo", "2"}, srv(0)...), "saldo conta=2 saldo=4000\n"},
	}
	for _, s := range steps {
		code, stdout, stderr := runBank(t, env, s.args...)
		if code != 0 || stdout != s.want || stderr != "" {
			t.Errorf("bank %s: exit %d, stdout %q, stderr %q; want 0, %q", strings.Join(s.args, " "), code, stdout, stderr, s.want)
		}
	}
	// Settings from the environment.
	code, stdout, _ := runBank(t, testEnv(up.home, envServer+"="+up.url(up.business[1]), envAuth+"="+up.auth(), envToken+"=8ace"), "saldo", "1")
	if code != 0 || stdout != "saldo conta=1 saldo=2000\n" {
		t.Errorf("bank saldo 1 with BANK_SERVER/BANK_AUTH/BANK_TOKEN: exit %d, stdout %q", code, stdout)
	}
	// Refusals: exit 1 with the reason on stderr; usage errors: exit 2.
	failures := []struct {
		args       []string
		code       int
		wantStderr string
	}{
		{append([]string{"saque", "1", "999999"}, srv(1)...), 1, "INSUFFICIENT_FUNDS, HTTP 409"},
		{append([]string{"saldo", "42"}, srv(2)...), 1, "NOT_FOUND, HTTP 404"},
		{append([]string{"transferencia", "3", "3", "1"}, srv(0)...), 1, "SAME_ACCOUNT, HTTP 400"},
		{append([]string{"deposito", "1", "10", "--token", "bad0"}, srv(0)...), 1, "UNAUTHORIZED, HTTP 401"},
		{append([]string{"deposito", "1"}, srv(0)...), 2, "deposito needs 2 argument(s)"},
		{[]string{"depositar", "1", "10"}, 2, `unknown command "depositar"`},
	}
	for _, f := range failures {
		code, stdout, stderr := runBank(t, env, f.args...)
		if code != f.code || stdout != "" || !strings.Contains(stderr, f.wantStderr) {
			t.Errorf("bank %s: exit %d, stdout %q, stderr %q; want %d and %q", strings.Join(f.args, " "), code, stdout, stderr, f.code, f.wantStderr)
		}
	}

	// The live view, whose URL the banner gives, shows the balances.
	ui := fmt.Sprintf("http://127.0.0.1:%d/", up.uiPort)
	if !strings.Contains(banner, "live view        "+ui) {
		t.Errorf("banner does not give the live view's URL %s:\n%s", ui, banner)
	}
	var view struct {
		Total    int
		Accounts []struct{ Conta, Saldo int64 }
	}
	if err := getJSON(ui+"api/accounts", &view); err != nil {
		t.Errorf("live view: %v", err)
	} else {
		saldos := map[int64]int64{}
		for _, a := range view.Accounts {
			saldos[a.Conta] = a.Saldo
		}
		if view.Total != 10 || saldos[1] != 2000 || saldos[2] != 4000 || saldos[3] != 1000 {
			t.Errorf("live view's accounts: %+v, want 10 accounts, 1: 2000, 2: 4000, 3: 1000", view)
		}
	}

	// The demonstration, over the three business servers.
	servers := fmt.Sprintf("%s,%s,%s", up.url(up.business[0]), up.url(up.business[1]), up.url(up.business[2]))
	code, stdout, stderr := runBank(t, env, "demo", "--servers", servers, "--auth", up.auth(), "--seed", "42")
	if code != 0 || !strings.Contains(stdout, "demo: OK") {
		t.Errorf("bank demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// SIGTERM: every server stops, bank up exits 0.
	if err := up.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := up.waitExit(t, 30*time.Second); err != nil {
		t.Errorf("bank up after SIGTERM: %v\nstderr:\n%s", err, up.stderr)
	}
	for _, port := range append([]int{up.dataPort, up.uiPort}, up.business...) {
		assertRefused(t, port)
	}
	for _, pid := range up.childPIDs {
		assertGone(t, pid)
	}
	errText := up.stderr.String()
	for _, want := range []string{"[data " + strconv.Itoa(up.dataPort) + "] ", "[business " + strconv.Itoa(up.business[1]) + "] ", "listening on", "all servers stopped"} {
		if !strings.Contains(errText, want) {
			t.Errorf("bank up's stderr does not contain %q:\n%s", want, errText)
		}
	}

	// The operation logs, in --dir, in the original's format.
	dataLog := readLog(t, filepath.Join(up.dir, "data_server.log"))
	businessLog := readLog(t, filepath.Join(up.dir, "business_server.log"))
	for _, want := range []string{", deposito, 2, 5000", ", transferencia, 2, 1, 2000", ", saque, 1, 1000", ", saldo, 2"} {
		if !containsSuffix(businessLog, want) {
			t.Errorf("business_server.log has no line ending in %q", want)
		}
	}
	// A deposit is one /getLocks (the operation named, so that another of
	// this business server on the account queues behind it), one /commit
	// (the new balance under the lock's fence, the lock released with
	// it), with its idempotency record.
	for _, want := range []string{", autentica", ", getLocks, 2", ", commit, 2, 6000", ", idem, NOT_FOUND"} {
		if !containsPart(dataLog, want) {
			t.Errorf("data_server.log has no line containing %q", want)
		}
	}
}

// getJSON decodes the JSON answer at url into v.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func containsSuffix(lines []string, suffix string) bool {
	for _, l := range lines {
		if strings.HasSuffix(l, suffix) {
			return true
		}
	}
	return false
}

func containsPart(lines []string, part string) bool {
	for _, l := range lines {
		if strings.Contains(l, part) {
			return true
		}
	}
	return false
}

// A server that dies on its own takes bank up down, with a message naming
// it, and the other servers are stopped.
func TestUpChildDies(t *testing.T) {
	up := startUp(t)
	victim := up.childPIDs[2] // the second business server
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := up.waitExit(t, 30*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("bank up exited with %v, want exit status 1\nstderr:\n%s", err, up.stderr)
	}
	want := fmt.Sprintf("business server %s (pid %d) exited unexpectedly", up.url(up.business[1]), victim)
	if !strings.Contains(up.stderr.String(), want) {
		t.Errorf("stderr does not contain %q:\n%s", want, up.stderr)
	}
	for _, port := range append([]int{up.dataPort}, up.business...) {
		assertRefused(t, port)
	}
	for _, pid := range up.childPIDs {
		assertGone(t, pid)
	}
}

// A server that cannot start (its port is taken) fails bank up at once,
// naming it, even when what holds the port answers /status itself.
func TestUpPortTaken(t *testing.T) {
	bin := bankBinary(t)
	for _, tt := range []struct {
		name   string
		taken  int // index in ports: 0 data, 1 business
		answer bool
		victim string
	}{
		{"business port held by a silent listener", 1, false, "business server"},
		{"data port held by another server answering /status", 0, true, "data server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ports := proctest.FreePorts(t, 2)
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[tt.taken])))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if tt.answer {
				srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
				go srv.Serve(ln)
				defer srv.Close()
			}
			cmd := exec.Command(bin, "up", "--data-port", strconv.Itoa(ports[0]), "--business-ports", strconv.Itoa(ports[1]), "--dir", t.TempDir(), "--ui-port", "0")
			cmd.Env = testEnv(t.TempDir())
			var stdout, stderr syncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("bank up did not give up within 60s\nstderr:\n%s", &stderr)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("bank up: %v, want exit status 1\nstderr:\n%s", err, &stderr)
			}
			want := fmt.Sprintf("%s http://127.0.0.1:%d", tt.victim, ports[tt.taken])
			if !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "exited before it was ready") {
				t.Errorf("stderr does not name %q as the failure:\n%s", want, &stderr)
			}
			if strings.Contains(stdout.String(), "ready:") {
				t.Errorf("bank up said it was ready:\n%s", &stdout)
			}
			if tt.taken == 1 {
				assertRefused(t, ports[0]) // the data server was stopped
			}
		})
	}
}

// server is a data or business server run as "bank dataserver" or "bank
// businessserver".
type server struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan struct{} // closed once waited for
	err    error         // the exit error, read after done
}

var listeningRE = regexp.MustCompile(`listening on (http://[^\s"]+)`)

// startServer runs the bank binary with args and waits until it says on
// which URL it listens. The test kills it at the end if it still runs.
func startServer(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	s := &server{cmd: exec.Command(bankBinary(t), args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	s.cmd.Env = env
	s.cmd.Stderr = s.stderr
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(s.stderr.String()); m != nil {
			s.url = m[1]
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("bank %s exited before listening: %v\n%s", strings.Join(args, " "), s.err, s.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("bank %s not listening within 30s:\n%s", strings.Join(args, " "), s.stderr)
		}
	}
}

// waitKilled waits for the server to die of SIGKILL.
func (s *server) waitKilled(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("server %s still runs", s.url)
	}
	var ee *exec.ExitError
	if !errors.As(s.err, &ee) {
		t.Fatalf("server %s: %v, want killed by SIGKILL", s.url, s.err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("server %s: %v, want killed by SIGKILL\n%s", s.url, s.err, s.stderr)
	}
}

// TestCrashRecovery: a business server killed (SIGKILL, through the
// test-only GOBANK_TEST_CRASH_AT) in the middle of a transfer — holding
// both locks, about to commit, or with the commit durable but no answer
// sent — and "bank transferencia" with retries over a second business
// server: the transfer is applied exactly once and the client gets its
// answer. Then the data server is killed with SIGKILL and restarted on the
// same --data-dir: every balance acknowledged is there, and so is the
// transfer's idempotency record.
func TestCrashRecovery(t *testing.T) {
	for _, stage := range []string{"locked", "before-commit", "after-commit"} {
		t.Run(stage, func(t *testing.T) {
			home := t.TempDir()
			dir := t.TempDir()
			var secret [16]byte
			_, _ = rand.Read(secret[:])
			env := testEnv(home, "BANK_SERVER_TOKEN="+hex.EncodeToString(secret[:]))
			dataPort := proctest.FreePorts(t, 1)[0]
			dataArgs := []string{"dataserver", "--host", "127.0.0.1", "--port", strconv.Itoa(dataPort),
				"--data-dir", filepath.Join(dir, "bank-data"), "--log", filepath.Join(dir, "data_server.log")}
			data := startServer(t, env, dataArgs...)
			auth := data.url + "/autentica"
			business := func(name string, extraEnv ...string) *server {
				return startServer(t, append(env, extraEnv...), "businessserver", data.url, "0", "--host", "127.0.0.1",
					"--id", name, "--log", filepath.Join(dir, name+".log"), "--lock-ttl", "1s", "--lock-wait", "5s")
			}
			doomed := business("doomed", "GOBANK_TEST_CRASH_AT="+stage)
			survivor := business("survivor")

			const want = "transferencia conta_orig=1 conta_dest=2 valor=100 saldo_orig=900 saldo_dest=1100\n"
			args := []string{"transferencia", "1", "2", "100", "--server", doomed.url + "," + survivor.url,
				"--auth", auth, "--key", "crash-" + stage, "--retries", "2"}
			code, stdout, stderr := runBank(t, env, args...)
			if code != 0 || stdout != want {
				t.Fatalf("bank %s: exit %d, stdout %q, stderr %q; want %q", strings.Join(args, " "), code, stdout, stderr, want)
			}
			doomed.waitKilled(t)
			// Again with the same key: the first outcome, nothing more moved.
			if code, stdout, stderr := runBank(t, env, args...); code != 0 || stdout != want {
				t.Errorf("repeated: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			saldos := func(who string) {
				t.Helper()
				for conta, saldo := range map[string]string{"1": "900", "2": "1100", "3": "1000"} {
					code, stdout, stderr := runBank(t, env, "saldo", conta, "--server", survivor.url, "--auth", auth)
					if wantOut := "saldo conta=" + conta + " saldo=" + saldo + "\n"; code != 0 || stdout != wantOut {
						t.Errorf("%s: saldo %s: exit %d, stdout %q, stderr %q; want %q", who, conta, code, stdout, stderr, wantOut)
					}
				}
			}
			saldos("after the crash")

			// The data server dies too, and comes back on the same directory.
			if err := data.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			data.waitKilled(t)
			startServer(t, env, dataArgs...)
			saldos("after the data server's restart")
			if code, stdout, stderr := runBank(t, env, args...); code != 0 || stdout != want {
				t.Errorf("repeated after the restart: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			saldos("after the last repetition")
		})
	}
}
