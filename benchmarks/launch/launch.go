// Package launch starts the bank's servers as child processes and reads
// the line in which each says where it listens ("listening on URL"): for
// the harnesses under benchmarks/ (ratios, scaleout, soak) and for "bank
// up" (cmd/bank), the one home of the process launching they share;
// cmd/internal/proctest reads the same line with ListeningURL. It is not
// an internal package because both trees import it: a package under
// benchmarks/internal could not be imported from cmd/, one under
// cmd/internal not from benchmarks/. It lives under benchmarks/, beside
// the harnesses that are most of its users (cmd/bank already imports
// benchmarks/loadgen and benchmarks/check).
package launch

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// WaitListening copies a server's stderr to file and returns the URL of
// its "listening on URL" line, once the server has printed it.
func WaitListening(name string, stderr io.Reader, file string) (string, error) {
	f, err := os.Create(file)
	if err != nil {
		return "", err
	}
	found := make(chan string, 1)
	out := &LineWriter{Mu: new(sync.Mutex), W: f, OnLine: func(line []byte) {
		if u, ok := ListeningURL(string(line)); ok {
			select {
			case found <- u:
			default:
			}
		}
	}}
	go func() {
		defer f.Close()
		_, _ = io.Copy(out, stderr)
		out.Flush()
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			return "", fmt.Errorf("%s exited before listening (see %s)", name, file)
		}
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(u, "http://")); err != nil {
			return "", fmt.Errorf("%s: odd listening line %q", name, u)
		}
		return u, nil
	case <-time.After(60 * time.Second):
		return "", fmt.Errorf("%s did not listen within 60s (see %s)", name, file)
	}
}

// Build runs `go build -o out/ pkgs...` in the module root dir ("" for the
// current directory), its output on ours.
func Build(dir, out string, pkgs ...string) error {
	cmd := exec.Command("go", append([]string{"build", "-o", out + string(os.PathSeparator)}, pkgs...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if dir == "" {
			return fmt.Errorf("go build (run from the module's root): %w", err)
		}
		return fmt.Errorf("go build in %s: %w", dir, err)
	}
	return nil
}

// Result is what the measuring programs read of `bank bench --json`.
type Result struct {
	ThroughputOK float64 `json:"throughput_ok"`
	Requests     int64   `json:"requests"`
	OK           int64   `json:"ok"`
	Errors       int64   `json:"errors"`
	Dropped      int64   `json:"dropped"`
	Latency      struct {
		P50  float64 `json:"p50"`
		P99  float64 `json:"p99"`
		P999 float64 `json:"p99_9"`
		Max  float64 `json:"max"`
	} `json:"latency_us"` // µs
	Outcomes map[string]int64 `json:"outcomes"`
}

// Bench runs `bank bench --json --quiet args...` with env, and returns
// its result and the finished process (for the CPU it used).
func Bench(bank string, env []string, args ...string) (Result, *os.ProcessState, error) {
	args = append([]string{"bench", "--json", "--quiet"}, args...)
	cmd := exec.Command(bank, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return Result{}, cmd.ProcessState, fmt.Errorf("bank %s: %w", strings.Join(args, " "), err)
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		return Result{}, cmd.ProcessState, fmt.Errorf("bank bench output: %w", err)
	}
	return r, cmd.ProcessState, nil
}
