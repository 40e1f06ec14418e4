//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bank/gobank/cmd/internal/proctest"
)

// TestUpConsoleTraces is the "done when" with the real commands:
// under OTEL_TRACES_EXPORTER=console, one `bank transferencia` against
// `bank up` prints (the client on its stdout, the servers through bank
// up's stderr) spans of the client, the business server and the data
// server, all in the client's trace, each server's route span the child of
// its caller's; and no printed span carries the server credential or the
// Idempotency-Key.
func TestUpConsoleTraces(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console") // inherited by bank up, its servers and the client
	up := startUp(t)
	const key = "trace-e2e-key-5e3a"
	code, stdout, stderr := runBank(t, testEnv(up.home), "transferencia", "1", "2", "100",
		"--server", up.url(up.business[0]), "--auth", up.auth(), "--key", key)
	if code != 0 || !strings.HasPrefix(stdout, "transferencia conta_orig=1 conta_dest=2 valor=100 ") {
		t.Fatalf("bank transferencia: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if err := up.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := up.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("bank up after SIGTERM: %v\nstderr:\n%s", err, up.stderr)
	}

	clientSpans, err := proctest.ConsoleSpans(stdout)
	if err != nil {
		t.Fatal(err)
	}
	serverSpans, err := proctest.ConsoleSpans(up.stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(clientSpans) != 1 || clientSpans[0].Name != "client transferencia" || clientSpans[0].Service() != "gobank-client" {
		t.Fatalf("the client printed %d spans, want its one transferencia span:\n%s", len(clientSpans), stdout)
	}
	root := clientSpans[0]
	byService := map[string]map[string]proctest.Span{}
	ids := map[string]proctest.Span{root.SpanContext.SpanID: root}
	for _, s := range serverSpans {
		if s.SpanContext.TraceID != root.SpanContext.TraceID {
			continue // another trace: bank up's own checks, if any
		}
		if byService[s.Service()] == nil {
			byService[s.Service()] = map[string]proctest.Span{}
		}
		byService[s.Service()][s.Name] = s
		ids[s.SpanContext.SpanID] = s
	}
	parent := func(s proctest.Span) string { return ids[s.Parent.SpanID].Name }
	route, ok := byService["gobank-business"]["business transferencia"]
	if !ok || parent(route) != "client transferencia" {
		t.Errorf("no business transferencia span under the client's in trace %s (found %v)", root.SpanContext.TraceID, byService)
	}
	for _, r := range []string{"/idem", "/getLocks", "/commit"} {
		call, ok := byService["gobank-business"]["call "+r]
		if !ok || parent(call) != "business transferencia" {
			t.Errorf("no business server call %s under its transferencia span", r)
		}
		if data, ok := byService["gobank-dataserver"]["data "+r]; !ok || parent(data) != "call "+r {
			t.Errorf("no data server %s span under the business server's call", r)
		}
	}
	for _, name := range []string{"account.lock", "account.pin", "store.commit", "account.commit"} {
		if _, ok := byService["gobank-dataserver"][name]; !ok {
			t.Errorf("no %s span from the data server in the transfer's trace", name)
		}
	}
	credential, err := os.ReadFile(filepath.Join(up.home, ".config", "gobank", "server-token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{stdout, up.stderr.String()} {
		for line := range strings.Lines(out) {
			if !strings.Contains(line, `"SpanContext"`) {
				continue
			}
			if strings.Contains(line, key) || strings.Contains(line, strings.TrimSpace(string(credential))) {
				t.Errorf("a printed span carries the Idempotency-Key or the server credential: %s", line)
			}
		}
	}
}
