// Package etcdtest starts a private etcd server for a test, and cuts the
// test's links through embedded toxiproxy proxies (Link), so that the
// cluster's etcd membership is tested against the real thing.
//
// The server is Debian's etcd-server package (`apt-get install
// etcd-server`; .ci/run installs it when missing): the etcd on PATH or
// /usr/bin/etcd. A test that needs it fails, not skips, when it is not
// installed.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bank/gobank/http/freeport"
)

// startTimeout bounds a server's start.
const startTimeout = 30 * time.Second

// ErrNotInstalled reports that no etcd binary was found.
var ErrNotInstalled = errors.New("etcdtest: no etcd binary on PATH or at /usr/bin/etcd (apt-get install etcd-server)")

// Binary returns the path of the etcd server binary.
func Binary() (string, error) {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	if st, err := os.Stat("/usr/bin/etcd"); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return "/usr/bin/etcd", nil
	}
	return "", ErrNotInstalled
}

// Server is a running etcd server of one member on loopback.
type Server struct {
	// Endpoint is its client URL, http://127.0.0.1:PORT.
	Endpoint string
	// Addr is its client address, 127.0.0.1:PORT.
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Start starts an etcd server in a temporary directory of t and stops it
// when t ends; it fails t when etcd is not installed or does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var s *Server
	for attempt := 0; ; attempt++ {
		s, err = start(bin, dir, attempt)
		if err == nil || attempt == 2 {
			break
		}
		// A port picked free may have been taken meanwhile: try others.
		t.Logf("etcdtest: %v; trying other ports", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func start(bin, dir string, attempt int) (*Server, error) {
	ports, err := freeport.Ports(2)
	if err != nil {
		return nil, err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	logPath := filepath.Join(dir, fmt.Sprintf("etcd-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin,
		"--name", "test",
		"--data-dir", filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer, "--initial-cluster-state", "new",
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn")
	// Only its own environment: no ETCD_* variable of the caller's.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Should the test binary die, the kernel stops the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("etcdtest: starting %s: %w", bin, err)
	}
	s := &Server{Endpoint: client, Addr: "127.0.0.1:" + strconv.Itoa(ports[0]), cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(s.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.waitHealthy(ctx); err != nil {
		_ = s.Stop()
		out, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("etcdtest: %w; its log:\n%s", err, out)
	}
	return s, nil
}

// waitHealthy polls the server's /health until it reports a leader.
func (s *Server) waitHealthy(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/health", nil)
		if resp, err := client.Do(req); err == nil {
			ok := resp.StatusCode == http.StatusOK
			resp.Body.Close()
			if ok {
				return nil
			}
		}
		select {
		case <-s.done:
			return errors.New("etcd exited while starting")
		case <-ctx.Done():
			return fmt.Errorf("etcd not healthy within %v", startTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s).
func (s *Server) Stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("etcdtest: etcd did not stop within 10s of SIGTERM; killed")
	}
}
