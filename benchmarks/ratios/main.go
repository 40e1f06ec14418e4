// Command ratios measures the bank's two headline ratios on this machine,
// with real binaries and durable storage, through `bank bench` (closed
// loop, 64 workers):
//
//   - getSaldo/status: the data server's /getSaldo through the account
//     actors, against its own /status;
//   - transfers/status: successful /transferencia per second through three
//     business servers (uniform accounts), against the same /status.
//
// It builds dataserver, businessserver and bank into a temporary
// directory, starts a data server (pebble store in the temporary
// directory) and three business servers on free loopback ports, then runs
// rounds of status, getSaldo and transferencia back to back (each ratio is
// read within one round, on a machine in one state) and prints every
// round's figures and the median of each ratio.
//
//	go run ./benchmarks/ratios                   # 3 rounds of 5 s per load
//	go run ./benchmarks/ratios -rounds 5 -duration 10s
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	rounds := flag.Int("rounds", 3, "rounds of (status, getSaldo, transferencia); the median is printed")
	duration := flag.Duration("duration", 5*time.Second, "length of each bank bench run")
	workers := flag.Int("workers", 64, "bank bench --workers")
	accounts := flag.Int("accounts", 1000, "accounts of the bank (uniformly picked)")
	businessServers := flag.Int("business", 3, "business servers")
	keep := flag.Bool("keep", false, "keep the temporary directory (logs, data)")
	flag.StringVar(&serversFrom, "servers-from", "", "build dataserver and businessserver from this module root instead (e.g. an older\ncheckout, to compare versions; bank always comes from this one)")
	flag.Parse()
	if err := run(*rounds, *duration, *workers, *accounts, *businessServers, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "ratios:", err)
		os.Exit(1)
	}
}

// serversFrom is the module root the servers are built from; "" means
// this one.
var serversFrom string

// result is what we read of `bank bench --json`.
type result struct {
	ThroughputOK float64 `json:"throughput_ok"`
	Requests     int64   `json:"requests"`
	OK           int64   `json:"ok"`
	Errors       int64   `json:"errors"`
	Latency      struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"latency_us"`
	Outcomes map[string]int64 `json:"outcomes"`
}

func run(rounds int, duration time.Duration, workers, accounts, nbiz int, keep bool) error {
	dir, err := os.MkdirTemp("", "gobank-ratios-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("temporary directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := filepath.Join(dir, "bin")
	fmt.Println("building dataserver, businessserver and bank ...")
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "./cmd/dataserver", "./cmd/businessserver", "./cmd/bank")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build (run from the module's root): %w", err)
	}
	if serversFrom != "" {
		fmt.Println("building dataserver and businessserver from", serversFrom, "...")
		build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "./cmd/dataserver", "./cmd/businessserver")
		build.Dir = serversFrom
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build in %s: %w", serversFrom, err)
		}
	}
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	env := append(os.Environ(), "BANK_SERVER_TOKEN="+hex.EncodeToString(secret[:]))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(os.Interrupt)
		}
		for _, p := range procs {
			_ = p.Wait()
		}
	}()
	start := func(name string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		cmd.Env = env
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return "", err
		}
		if err := cmd.Start(); err != nil {
			return "", err
		}
		procs = append(procs, cmd)
		return waitListening(name, stderr, filepath.Join(dir, name+"-"+strconv.Itoa(len(procs))+".stderr"))
	}
	dataURL, err := start("dataserver", "--host", "127.0.0.1", "--port", "0", "--data-dir", filepath.Join(dir, "data"),
		"--log", filepath.Join(dir, "data_server.log"), "--accounts", strconv.Itoa(accounts), "--balance", "1000000000")
	if err != nil {
		return err
	}
	var bizURLs []string
	for i := range nbiz {
		u, err := start("businessserver", "--host", "127.0.0.1", "--log", filepath.Join(dir, fmt.Sprintf("business_%d.log", i)), dataURL, "0")
		if err != nil {
			return err
		}
		bizURLs = append(bizURLs, u)
	}
	fmt.Printf("data server %s (durable, pebble in %s), business servers %s\n\n", dataURL, dir, strings.Join(bizURLs, ","))

	bench := func(args ...string) (result, error) {
		args = append([]string{"bench", "--json", "--quiet", "--workers", strconv.Itoa(workers),
			"--duration", duration.String(), "--accounts", strconv.Itoa(accounts), "--dist", "uniform"}, args...)
		cmd := exec.Command(filepath.Join(bin, "bank"), args...)
		cmd.Env = env
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return result{}, fmt.Errorf("bank %s: %w", strings.Join(args, " "), err)
		}
		var r result
		if err := json.Unmarshal(out, &r); err != nil {
			return result{}, fmt.Errorf("bank bench output: %w", err)
		}
		return r, nil
	}
	loads := []struct {
		name string
		args []string
	}{
		{"status", []string{"--target", "data", "--servers", dataURL, "--mix", "status=1", "--no-check"}},
		{"getSaldo", []string{"--target", "data", "--servers", dataURL, "--mix", "getSaldo=1", "--no-check"}},
		{"transferencia", []string{"--servers", strings.Join(bizURLs, ","), "--mix", "transferencia=1"}},
	}
	fmt.Printf("%-6s %12s %12s %14s %16s %18s\n", "round", "status/s", "getSaldo/s", "transfers/s", "getSaldo/status", "transfers/status")
	var saldoRatios, transferRatios []float64
	for round := 1; round <= rounds; round++ {
		var tput [3]float64
		for i, l := range loads {
			r, err := bench(l.args...)
			if err != nil {
				return err
			}
			tput[i] = r.ThroughputOK
			if r.Errors > 0 {
				fmt.Fprintf(os.Stderr, "round %d %s: %d errors: %v\n", round, l.name, r.Errors, r.Outcomes)
			}
		}
		sr, tr := tput[1]/tput[0], tput[2]/tput[0]
		saldoRatios, transferRatios = append(saldoRatios, sr), append(transferRatios, tr)
		fmt.Printf("%-6d %12.0f %12.0f %14.0f %16.3f %18.3f\n", round, tput[0], tput[1], tput[2], sr, tr)
	}
	fmt.Printf("\nmedian of %d rounds: getSaldo/status = %.3f (target >= 0.8), transfers/status = %.3f (target >= 0.15)\n",
		rounds, median(saldoRatios), median(transferRatios))
	fmt.Printf("(%d workers, closed loop, %v per run, %d accounts uniform, %d business servers, durable store)\n",
		workers, duration, accounts, nbiz)
	return nil
}

// waitListening copies a server's stderr to file and returns the URL of
// its "listening on URL" line.
func waitListening(name string, stderr io.Reader, file string) (string, error) {
	f, err := os.Create(file)
	if err != nil {
		return "", err
	}
	found := make(chan string, 1)
	go func() {
		defer f.Close()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(f, line)
			if i := strings.Index(line, "listening on http://"); i >= 0 {
				u := strings.TrimSuffix(strings.Fields(line[i+len("listening on "):])[0], `"`)
				select {
				case found <- u:
				default:
				}
			}
		}
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

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
