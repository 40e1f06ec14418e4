// Package proctest runs the bank's server binaries as real processes for
// tests about processes: crashes (SIGKILL), restarts, shutdown. The
// binaries are built once per test binary; each process runs with only the
// environment a test gives it, and is killed when its test ends.
package proctest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bank/gobank/benchmarks/launch"
	"github.com/bank/gobank/http/freeport"
)

var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

// Main runs a test binary's tests and removes the binaries built for them.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Binaries builds the dataserver and businessserver commands, once per test
// binary, and returns their paths.
func Binaries(t testing.TB) (dataserver, businessserver string) {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "gobank-bin-"); buildErr != nil {
			return
		}
		goCmd, err := exec.LookPath("go")
		if err != nil {
			goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		for _, name := range []string{"dataserver", "businessserver"} {
			out, err := exec.Command(goCmd, "build", "-o", filepath.Join(binDir, name),
				"github.com/bank/gobank/cmd/"+name).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "dataserver"), filepath.Join(binDir, "businessserver")
}

// output keeps a process's output: the first headMax bytes and the last
// tailMax, so that a process that logs in a loop cannot exhaust memory. It
// finds the URL the process announces with "listening on URL"
// (launch.ListeningURL) in a line of the head.
type output struct {
	mu      sync.Mutex
	head    []byte
	read    int // the head's bytes looked at for the announcement
	tail    []byte
	dropped int64
	url     chan string // receives the announced URL once
	got     bool
}

const (
	headMax = 32 << 10
	tailMax = 16 << 10
)

func (w *output) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	if room := headMax - len(w.head); room > 0 {
		k := min(room, len(p))
		w.head = append(w.head, p[:k]...)
		p = p[k:]
		for !w.got {
			i := bytes.IndexByte(w.head[w.read:], '\n')
			if i < 0 {
				break
			}
			if u, ok := launch.ListeningURL(string(w.head[w.read : w.read+i])); ok {
				w.got = true
				w.url <- u
			}
			w.read += i + 1
		}
	}
	if len(p) > 0 {
		w.tail = append(w.tail, p...)
		if over := len(w.tail) - tailMax; over > 0 {
			w.dropped += int64(over)
			w.tail = append(w.tail[:0], w.tail[over:]...)
		}
	}
	return n, nil
}

func (w *output) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped == 0 {
		return string(w.head) + string(w.tail)
	}
	return fmt.Sprintf("%s\n[... %d bytes left out ...]\n%s", w.head, w.dropped, w.tail)
}

// Proc is a server process started by a test.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	URL  string        // set once the process announced it
	Done chan struct{} // closed once the process has exited
	out  *output
}

// Launch runs bin in dir with args and env (and nothing else of the test's
// environment but PATH), and kills it when the test ends. It does not wait
// for the process to serve.
func Launch(t testing.TB, name, dir, bin string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Cmd: exec.Command(bin, args...), out: &output{url: make(chan string, 1)}, Done: make(chan struct{})}
	p.Cmd.Dir = dir
	p.Cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	p.Cmd.Stdout = p.out
	p.Cmd.Stderr = p.out
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = p.Cmd.Wait(); close(p.Done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s (%s) output:\n%s", name, p.Cmd.ProcessState, p.out.String())
		}
	})
	return p
}

// Start is Launch, then waits until the process serves /status.
func Start(t testing.TB, name, dir, bin string, env []string, args ...string) *Proc {
	t.Helper()
	p := Launch(t, name, dir, bin, env, args...)
	p.WaitServing(t, 10*time.Second)
	return p
}

// Announced delivers the URL the process says it listens on, once; it
// never delivers when the process dies first (see Done).
func (p *Proc) Announced() <-chan string { return p.out.url }

// Output returns what the process wrote on stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// WaitServing waits until p announced its URL and answers /status.
func (p *Proc) WaitServing(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case p.URL = <-p.out.url:
	case <-p.Done:
		t.Fatalf("%s exited before listening: %v\n%s", p.Name, p.Cmd.ProcessState, p.Output())
	case <-deadline.C:
		t.Fatalf("%s did not say where it listens within %v:\n%s", p.Name, timeout, p.Output())
	}
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	WaitFor(t, timeout, p.Name+" serving /status", func() bool {
		select {
		case <-p.Done:
			t.Fatalf("%s exited: %v\n%s", p.Name, p.Cmd.ProcessState, p.Output())
		default:
		}
		resp, err := c.Get(p.URL + "/status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Port returns the TCP port of p's URL.
func (p *Proc) Port(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	select {
	case <-p.Done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.Done
}

// Wait waits up to timeout for p to exit and returns its exit status; ok
// is false when it was still running.
func (p *Proc) Wait(timeout time.Duration) (status int, ok bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.Done:
		return p.Cmd.ProcessState.ExitCode(), true
	case <-t.C:
		return 0, false
	}
}

// WaitFor polls cond every few milliseconds until it holds, failing the
// test after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago, for servers whose ports must be known before they start (cluster
// peers, restarts on the same port): freeport.Ports, failing t.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := freeport.Ports(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// ClusterPorts returns the ports of a "bank up --nodes 3": the data port,
// three business ports and the cluster port, numbered from one block that
// bank up's own numbering (members' data ports 10 apart, cluster ports
// side by side, health ports 1000 above them) finds free: freeport.Block.
// Five ports from FreePorts would not do: the neighbours bank up derives
// from them lie among the ephemeral ports, where any outgoing connection
// may hold one (seen in CI: a member's cluster port in use).
func ClusterPorts(t testing.TB) (ports []int, clusterPort int) {
	t.Helper()
	const cluster = 100
	base, err := freeport.Block(0, 1, 2, 3, 10, 20, cluster, cluster+1, cluster+2, cluster+1000, cluster+1001, cluster+1002)
	if err != nil {
		t.Fatal(err)
	}
	return []int{base, base + 1, base + 2, base + 3}, base + cluster
}

// Span is what a test reads of a span printed by OpenTelemetry's console
// exporter (go.opentelemetry.io/otel/exporters/stdout/stdouttrace), which
// the servers use with OTEL_TRACES_EXPORTER=console.
type Span struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	Resource    []struct {
		Key   string
		Value struct{ Value any }
	}
}

// Service returns the span's service.name.
func (s Span) Service() string {
	for _, kv := range s.Resource {
		if kv.Key == "service.name" {
			name, _ := kv.Value.Value.(string)
			return name
		}
	}
	return ""
}

// ConsoleSpans returns the spans in a process's output: one JSON object
// per line, possibly after a prefix ending in "] " (as bank up prefixes
// its servers' lines). Other lines (logs) are skipped.
func ConsoleSpans(output string) ([]Span, error) {
	var spans []Span
	for line := range strings.Lines(output) {
		if strings.HasPrefix(line, "[") {
			if _, rest, ok := strings.Cut(line, "] "); ok {
				line = rest
			}
		}
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var s Span
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			return nil, fmt.Errorf("a line that is not a span: %w: %s", err, line)
		}
		spans = append(spans, s)
	}
	return spans, nil
}
