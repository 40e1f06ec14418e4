package servercmd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUsageErrors(t *testing.T) {
	t.Setenv(envPostgresDSN, "") // "cluster without a store" must find none
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	for _, tc := range []struct {
		name string
		run  func(context.Context, []string, io.Writer, io.Writer) error
		args []string
	}{
		{"data: positional", Data, []string{"extra"}},
		{"data: bad port", Data, []string{"--port", "70000"}},
		{"data: no accounts", Data, []string{"--accounts", "0"}},
		{"data: negative balance", Data, []string{"--balance", "-1"}},
		{"data: bad dispatcher", Data, []string{"--dispatcher", "fast"}},
		{"data: unknown flag", Data, []string{"--nope"}},
		{"data: bad duration", Data, []string{"--timeout", "0s"}},
		{"data: bad window", Data, []string{"--idempotency-window", "0s"}},
		{"data: zero lease", Data, []string{"--lock-ttl", "0s"}},
		{"data: lease over max", Data, []string{"--lock-ttl", "10m", "--max-lock-ttl", "1m"}},
		{"data: cluster on a wildcard", Data, []string{"--cluster-addr", "0.0.0.0:7000", "--postgres", "postgres://x"}},
		{"data: cluster without a port", Data, []string{"--cluster-addr", "127.0.0.1", "--postgres", "postgres://x"}},
		{"data: cluster without a store", Data, []string{"--cluster-addr", "127.0.0.1:7000"}},
		{"data: cluster provider not built in", Data, []string{"--cluster-addr", "127.0.0.1:7000", "--postgres", "postgres://x", "--cluster-provider", "consul"}},
		{"data: cluster peer not host:port", Data, []string{"--cluster-addr", "127.0.0.1:7000", "--postgres", "postgres://x", "--cluster-peers", "a,b"}},
		{"data: etcd flag with automanaged", Data, []string{"--cluster-addr", "127.0.0.1:7000", "--postgres", "postgres://x", "--etcd-ttl", "10s"}},
		{"data: automanaged flag with etcd", Data, []string{"--cluster-addr", "127.0.0.1:7000", "--postgres", "postgres://x", "--cluster-provider", "etcd", "--cluster-peers", "127.0.0.1:8000"}},
		{"data: etcd without endpoints", Data, []string{"--cluster-addr", "127.0.0.1:7000", "--postgres", "postgres://x", "--cluster-provider", "etcd", "--etcd-endpoints", " , "}},
		{"data: etcd ttl under a second", Data, []string{"--cluster-addr", "127.0.0.1:7000", "--postgres", "postgres://x", "--cluster-provider", "etcd", "--etcd-ttl", "500ms"}},
		{"data: etcd keepalive past half the ttl", Data, []string{"--cluster-addr", "127.0.0.1:7000", "--postgres", "postgres://x", "--cluster-provider", "etcd", "--etcd-ttl", "4s", "--etcd-keepalive", "2s"}},
		{"data: etcd empty prefix", Data, []string{"--cluster-addr", "127.0.0.1:7000", "--postgres", "postgres://x", "--cluster-provider", "etcd", "--etcd-prefix", "/"}},
		{"data: cluster advertise wildcard", Data, []string{"--cluster-addr", "127.0.0.1:7000", "--postgres", "postgres://x", "--cluster-advertise", "0.0.0.0:7000"}},
		{"data: cluster in memory", Data, []string{"--cluster-addr", "127.0.0.1:7000", "--postgres", "postgres://x", "--in-memory"}},
		{"data: cluster in compatibility mode", Data, []string{"--cluster-addr", "127.0.0.1:7000", "--postgres", "postgres://x", "--allow-client-tokens"}},
		{"business: no url", Business, nil},
		{"business: bad url", Business, []string{"localhost:5000"}},
		{"business: bad port", Business, []string{"http://localhost:5000", "port"}},
		{"business: too many", Business, []string{"http://localhost:5000", "5001", "x"}},
		{"business: bad timeout", Business, []string{"--data-timeout", "-1s", "http://localhost:5000"}},
	} {
		var stderr bytes.Buffer
		args := append([]string{"--server-token-file", secret}, tc.args...)
		err := tc.run(t.Context(), args, io.Discard, &stderr)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("%s: error %v, want ErrUsage", tc.name, err)
		}
		if !strings.Contains(stderr.String(), "usage:") {
			t.Errorf("%s: no usage printed: %q", tc.name, stderr.String())
		}
	}
}

func TestHelp(t *testing.T) {
	for name, run := range map[string]func(context.Context, []string, io.Writer, io.Writer) error{"data": Data, "business": Business} {
		var stderr bytes.Buffer
		if err := run(t.Context(), []string{"--help"}, io.Discard, &stderr); err != nil {
			t.Errorf("%s --help: %v", name, err)
		}
		for _, want := range []string{"usage:", "-log", "-server-token-file", "BANK_SERVER_TOKEN"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%s --help lacks %q", name, want)
			}
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	for _, args := range [][]string{
		{"--log", "x", "URL", "5001"},
		{"URL", "--log", "x", "5001"},
		{"URL", "5001", "--log", "x"},
	} {
		fs := flagSet("t", "t", "", io.Discard)
		log := fs.String("log", "", "")
		pos, err := parseInterleaved(fs, args)
		if err != nil || *log != "x" || strings.Join(pos, " ") != "URL 5001" {
			t.Errorf("%q: positional %q, log %q, err %v", args, pos, *log, err)
		}
	}
}

// lines is a concurrency-safe writer that lets a test wait for a line.
type lines struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{}
}

func newLines() *lines { return &lines{wake: make(chan struct{}, 1)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return l.buf.Write(p)
}

var listening = regexp.MustCompile(`listening on (http://\S+?)"`)

// waitURL waits for the "listening on" line and returns its URL.
func (l *lines) waitURL(t *testing.T) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		m := listening.FindStringSubmatch(l.buf.String())
		l.mu.Unlock()
		if m != nil {
			return m[1]
		}
		select {
		case <-l.wake:
		case <-deadline:
			t.Fatalf("server never said it was listening: %s", l.buf.String())
		}
	}
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("token", token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestServersEndToEnd runs both front ends with zero credential flags but
// a shared secret file, serves a deposit, then shuts both down by
// cancelling their contexts and checks the operation logs were flushed.
func TestServersEndToEnd(t *testing.T) {
	t.Setenv("BANK_SERVER_TOKEN", "")
	dir := t.TempDir()
	secret := filepath.Join(dir, "cfg", "server-token")
	dataLog, bizLog := filepath.Join(dir, "data.log"), filepath.Join(dir, "biz.log")
	dataDir := filepath.Join(dir, "data")

	dctx, dstop := context.WithCancel(t.Context())
	dout, ddone := newLines(), make(chan error, 1)
	go func() {
		ddone <- Data(dctx, []string{"--host", "127.0.0.1", "--port", "0", "--log", dataLog, "--server-token-file", secret, "--data-dir", dataDir}, io.Discard, dout)
	}()
	dataURL := dout.waitURL(t)

	bctx, bstop := context.WithCancel(t.Context())
	bout, bdone := newLines(), make(chan error, 1)
	go func() {
		bdone <- Business(bctx, []string{dataURL, "0", "--host", "127.0.0.1", "--log", bizLog, "--server-token-file", secret}, io.Discard, bout)
	}()
	bizURL := bout.waitURL(t)

	if status, body := get(t, bizURL+"/deposito/2/500", "ba0f"); status != 200 || !strings.Contains(body, `"saldo":1500`) {
		t.Fatalf("deposit: %d %s", status, body)
	}
	if status, _ := get(t, bizURL+"/saldo/2", "wrong"); status != 401 {
		t.Fatalf("bad token: %d, want 401", status)
	}
	bstop()
	dstop()
	for name, done := range map[string]chan error{"business": bdone, "data": ddone} {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s server: %v", name, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s server did not stop", name)
		}
	}
	for path, want := range map[string]string{dataLog: ", commit, 2, 1500", bizLog: ", deposito, 2, 500"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q:\n%s", path, want, b)
		}
	}
	if fi, err := os.Stat(secret); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v, %v", fi, err)
	}

	// A new data server on the same directory has the deposit.
	rctx, rstop := context.WithCancel(t.Context())
	rout, rdone := newLines(), make(chan error, 1)
	go func() {
		rdone <- Data(rctx, []string{"--host", "127.0.0.1", "--port", "0", "--log", dataLog, "--server-token-file", secret, "--data-dir", dataDir}, io.Discard, rout)
	}()
	url := rout.waitURL(t)
	token, _ := os.ReadFile(secret)
	if status, body := get(t, url+"/getSaldo?conta=2", strings.TrimSpace(string(token))); status != 200 || body != `{"saldo":1500}` {
		t.Errorf("after restart: %d %s", status, body)
	}
	rstop()
	if err := <-rdone; err != nil {
		t.Errorf("restarted data server: %v", err)
	}
}

func TestUnusableDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err := Data(t.Context(), []string{"--port", "0", "--log", "-", "--server-token-file", filepath.Join(t.TempDir(), "s"), "--data-dir", file}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("data server on a file as --data-dir: %v", err)
	}
}

// TestAutenticaLogLines reads the data server's log file: /autentica is
// logged as the original logged it, with the caller's address where no
// id_negoc is given and the outcome as True or False.
func TestAutenticaLogLines(t *testing.T) {
	t.Setenv("BANK_SERVER_TOKEN", "autentica-log-credential")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "data_server.log")
	ctx, stop := context.WithCancel(t.Context())
	out, done := newLines(), make(chan error, 1)
	go func() {
		done <- Data(ctx, []string{"--host", "127.0.0.1", "--port", "0", "--log", logPath,
			"--server-token-file", filepath.Join(dir, "s"), "--in-memory"}, io.Discard, out)
	}()
	url := out.waitURL(t)
	for _, r := range []struct {
		path, token string
		status      int
	}{
		{"/autentica", "ba0f", 200},
		{"/autentica?id_negoc=10.0.0.7:5001", "4c0e", 200},
		{"/autentica", "wrong", 401},
		{"/autentica", "", 401},
		{"/autentica?id_negoc=10.0.0.7:5001", "wrong", 401},
		{"/getSaldo?conta=3", "autentica-log-credential", 200},
	} {
		if status, body := get(t, url+r.path, r.token); status != r.status {
			t.Fatalf("%s: %d %s, want %d", r.path, status, body, r.status)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := []string{
		"1, 127.0.0.1, autentica, True",
		"2, 10.0.0.7:5001, autentica, True",
		"3, 127.0.0.1, autentica, False",
		"4, 127.0.0.1, autentica, False",
		"5, 10.0.0.7:5001, autentica, False",
		"6, 127.0.0.1, getSaldo, 3, 1000",
	}
	if len(got) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(got), len(want), b)
	}
	for i, line := range got {
		// "MM/DD/YYYY HH:MM:SS, " then the rest, as the original wrote it.
		if len(line) < 21 || line[19:21] != ", " || line[21:] != want[i] {
			t.Errorf("line %d: %q, want the timestamp then %q", i+1, line, want[i])
		}
	}
	if strings.Contains(string(b), "wrong") || strings.Contains(string(b), "ba0f") || strings.Contains(string(b), "autentica-log-credential") {
		t.Errorf("a token reached the log:\n%s", b)
	}
}
