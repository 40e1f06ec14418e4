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
// It then takes the median closed-loop throughputs of getSaldo and of
// transfers as their peak rates and runs each open loop (bank bench
// --rate) at half its peak, printing p50/p99/p99.9 measured from each
// request's intended send time against the latency targets (getSaldo p99
// <= 2 ms, transfers p99 <= 10 ms).
//
// -profile DIR saves a CPU profile of every server (their --debug-addr)
// taken during the first round's transfer load, and prints the CPU time
// each process used during every load, to show where the time goes.
//
//	go run ./benchmarks/ratios                   # 3 rounds of 5 s per load, then the open loops
//	go run ./benchmarks/ratios -rounds 5 -duration 10s
//	go run ./benchmarks/ratios -rounds 1 -open=false -profile /tmp/prof
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bank/gobank/benchmarks/launch"
	"github.com/bank/gobank/http/freeport"
)

func main() {
	rounds := flag.Int("rounds", 3, "rounds of (status, getSaldo, transferencia); the median is printed")
	duration := flag.Duration("duration", 5*time.Second, "length of each bank bench run")
	workers := flag.Int("workers", 64, "bank bench --workers")
	accounts := flag.Int("accounts", 1000, "accounts of the bank (uniformly picked)")
	businessServers := flag.Int("business", 3, "business servers")
	keep := flag.Bool("keep", false, "keep the temporary directory (logs, data)")
	flag.StringVar(&serversFrom, "servers-from", "", "build dataserver and businessserver from this module root instead (e.g. an older\ncheckout, to compare versions; bank always comes from this one)")
	flag.BoolVar(&openLoop, "open", true, "after the rounds, run the open loops at half the median peak rates and print their latencies")
	flag.DurationVar(&openDuration, "open-duration", 10*time.Second, "length of each open-loop run")
	flag.StringVar(&profileDir, "profile", "", "save CPU profiles of every server, taken during round 1's transfer load, in this directory,\nand print the CPU time every process used during each load")
	flag.StringVar(&baseline, "baseline", "", "also build dataserver and businessserver from this module root (e.g. HEAD exported with\ngit archive HEAD | tar -x -C /tmp/base), start a second bank with them, and measure its\ntransfers in every round beside this one's: a before/after in the same run")
	flag.StringVar(&businessArgs, "business-args", "", "extra flags for every business server (space-separated), e.g. \"--lock-mode retry\"")
	flag.Parse()
	if err := run(*rounds, *duration, *workers, *accounts, *businessServers, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "ratios:", err)
		os.Exit(1)
	}
}

// serversFrom is the module root the servers are built from; "" means
// this one.
var serversFrom string

// Settings of the open loops and of profiling (see the flags).
var (
	openLoop     bool
	openDuration time.Duration
	profileDir   string
	businessArgs string
	baseline     string
)

// Latency targets of the open loops at half the peak rate (issue 5).
const (
	saldoP99Target    = 2 * time.Millisecond
	transferP99Target = 10 * time.Millisecond
)

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
	if err := launch.Build("", bin, "./cmd/dataserver", "./cmd/businessserver", "./cmd/bank"); err != nil {
		return err
	}
	if serversFrom != "" {
		fmt.Println("building dataserver and businessserver from", serversFrom, "...")
		if err := launch.Build(serversFrom, bin, "./cmd/dataserver", "./cmd/businessserver"); err != nil {
			return err
		}
	}
	if baseline != "" {
		fmt.Println("building the baseline's dataserver and businessserver from", baseline, "...")
		if err := launch.Build(baseline, filepath.Join(bin, "base"), "./cmd/dataserver", "./cmd/businessserver"); err != nil {
			return err
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
	// servers are the processes whose CPU time and profiles are reported.
	type server struct {
		name  string
		cmd   *exec.Cmd
		debug string // host:port of --debug-addr, "" when not profiling
	}
	var servers []server
	start := func(name string, args ...string) (string, error) {
		label := name
		if strings.HasPrefix(name, "base/") {
			label = "base-" + strings.TrimPrefix(name, "base/")
		}
		var debug string
		if profileDir != "" {
			var err error
			if debug, err = freeport.Addr(); err != nil {
				return "", err
			}
			args = append([]string{"--debug-addr", debug}, args...)
		}
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
		if strings.HasSuffix(name, "businessserver") {
			label = strings.TrimSuffix(label, "server") + strconv.Itoa(len(servers))
		}
		servers = append(servers, server{name: label, cmd: cmd, debug: debug})
		return launch.WaitListening(name, stderr, filepath.Join(dir, label+"-"+strconv.Itoa(len(procs))+".stderr"))
	}
	// startBank starts a data server and nbiz business servers from the
	// binaries under prefix ("" or "base/").
	startBank := func(prefix string) (dataURL string, bizURLs []string, err error) {
		tag := strings.TrimSuffix(prefix, "/")
		dataURL, err = start(prefix+"dataserver", "--host", "127.0.0.1", "--port", "0", "--data-dir", filepath.Join(dir, "data"+tag),
			"--log", filepath.Join(dir, "data_server"+tag+".log"), "--accounts", strconv.Itoa(accounts), "--balance", "1000000000")
		if err != nil {
			return "", nil, err
		}
		for i := range nbiz {
			args := []string{"--host", "127.0.0.1", "--log", filepath.Join(dir, fmt.Sprintf("business%s_%d.log", tag, i))}
			args = append(args, strings.Fields(businessArgs)...)
			u, err := start(prefix+"businessserver", append(args, dataURL, "0")...)
			if err != nil {
				return "", nil, err
			}
			bizURLs = append(bizURLs, u)
		}
		return dataURL, bizURLs, nil
	}
	dataURL, bizURLs, err := startBank("")
	if err != nil {
		return err
	}
	fmt.Printf("data server %s (durable, pebble in %s), business servers %s\n", dataURL, dir, strings.Join(bizURLs, ","))
	var baseBizURLs []string
	if baseline != "" {
		var baseData string
		if baseData, baseBizURLs, err = startBank("base/"); err != nil {
			return err
		}
		fmt.Printf("baseline (%s): data server %s, business servers %s\n", baseline, baseData, strings.Join(baseBizURLs, ","))
	}
	fmt.Println()

	// cpu returns the CPU time every server has used so far.
	cpu := func() []time.Duration {
		out := make([]time.Duration, len(servers))
		for i, s := range servers {
			out[i] = procCPU(s.cmd.Process.Pid)
		}
		return out
	}
	// bench runs bank bench and, with -profile, reports the CPU every
	// process used during it, as a share of one core.
	bench := func(label string, args ...string) (launch.Result, error) {
		before, t0 := cpu(), time.Now()
		r, st, err := launch.Bench(filepath.Join(bin, "bank"), env,
			append([]string{"--accounts", strconv.Itoa(accounts), "--dist", "uniform"}, args...)...)
		if err != nil {
			return launch.Result{}, err
		}
		if profileDir != "" {
			wall := time.Since(t0)
			after := cpu()
			var b strings.Builder
			fmt.Fprintf(&b, "  cpu %-14s", label)
			for i, s := range servers {
				fmt.Fprintf(&b, " %s %3.0f%%", s.name, 100*float64(after[i]-before[i])/float64(wall))
			}
			fmt.Fprintf(&b, " bank %3.0f%% (of one core)\n", 100*float64(st.UserTime()+st.SystemTime())/float64(wall))
			fmt.Fprint(os.Stderr, b.String())
		}
		return r, nil
	}
	closed := []string{"--workers", strconv.Itoa(workers), "--duration", duration.String()}
	loads := []struct {
		name string
		args []string
	}{
		{"status", []string{"--target", "data", "--servers", dataURL, "--mix", "status=1", "--no-check"}},
		{"getSaldo", []string{"--target", "data", "--servers", dataURL, "--mix", "getSaldo=1", "--no-check"}},
		{"transferencia", []string{"--servers", strings.Join(bizURLs, ","), "--mix", "transferencia=1"}},
	}
	if baseline != "" {
		loads = append(loads, struct {
			name string
			args []string
		}{"base-transfers", []string{"--servers", strings.Join(baseBizURLs, ","), "--mix", "transferencia=1"}})
	}
	fmt.Printf("%-6s %12s %12s %14s %16s %18s", "round", "status/s", "getSaldo/s", "transfers/s", "getSaldo/status", "transfers/status")
	if baseline != "" {
		fmt.Printf(" %14s %16s", "base xfers/s", "base xfers/status")
	}
	fmt.Println()
	var saldoRatios, transferRatios, baseRatios, saldoPeaks, transferPeaks []float64
	for round := 1; round <= rounds; round++ {
		var tput [4]float64
		for i, l := range loads {
			var profiled chan error
			if round == 1 && l.name == "transferencia" && profileDir != "" {
				profiled = make(chan error, 1)
				go func() {
					var urls []string
					for _, s := range servers {
						urls = append(urls, s.name+"="+s.debug)
					}
					profiled <- profile(profileDir, urls, duration)
				}()
			}
			r, err := bench(l.name, append(closed, l.args...)...)
			if err != nil {
				return err
			}
			if profiled != nil {
				if err := <-profiled; err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "  CPU profiles of the transfer load in %s (go tool pprof -top FILE)\n", profileDir)
			}
			tput[i] = r.ThroughputOK
			if r.Errors > 0 {
				fmt.Fprintf(os.Stderr, "round %d %s: %d errors: %v\n", round, l.name, r.Errors, r.Outcomes)
			}
		}
		sr, tr := tput[1]/tput[0], tput[2]/tput[0]
		saldoRatios, transferRatios = append(saldoRatios, sr), append(transferRatios, tr)
		saldoPeaks, transferPeaks = append(saldoPeaks, tput[1]), append(transferPeaks, tput[2])
		fmt.Printf("%-6d %12.0f %12.0f %14.0f %16.3f %18.3f", round, tput[0], tput[1], tput[2], sr, tr)
		if baseline != "" {
			baseRatios = append(baseRatios, tput[3]/tput[0])
			fmt.Printf(" %14.0f %16.3f", tput[3], tput[3]/tput[0])
		}
		fmt.Println()
	}
	fmt.Printf("\nmedian of %d rounds: getSaldo/status = %.3f (target >= 0.8), transfers/status = %.3f (target >= 0.15)\n",
		rounds, median(saldoRatios), median(transferRatios))
	if baseline != "" {
		fmt.Printf("baseline's transfers/status = %.3f (same rounds, same /status figures)\n", median(baseRatios))
	}
	fmt.Printf("(%d workers, closed loop, %v per run, %d accounts uniform, %d business servers, durable store)\n",
		workers, duration, accounts, nbiz)
	if !openLoop {
		return nil
	}

	// Open loops at half the peak: the rate a deployment would be run at,
	// with latencies from each request's intended send time.
	fmt.Printf("\nopen loop at half the median peak rate, %v each (latency from the intended send time):\n", openDuration)
	fmt.Printf("%-14s %10s %10s %8s %9s %9s %9s %9s %8s\n", "load", "rate/s", "ok/s", "dropped", "p50 ms", "p99 ms", "p99.9 ms", "target", "p99 met")
	opens := []struct {
		name   string
		peak   float64
		target time.Duration
		args   []string
	}{
		{"getSaldo", median(saldoPeaks), saldoP99Target, loads[1].args},
		{"transferencia", median(transferPeaks), transferP99Target, loads[2].args},
	}
	for _, o := range opens {
		rate := o.peak / 2
		args := append([]string{"--rate", strconv.FormatFloat(rate, 'f', 0, 64), "--duration", openDuration.String()}, o.args...)
		r, err := bench(o.name+"-open", args...)
		if err != nil {
			return err
		}
		met := "yes"
		if time.Duration(r.Latency.P99)*time.Microsecond > o.target || r.Dropped > 0 {
			met = "NO"
		}
		fmt.Printf("%-14s %10.0f %10.0f %8d %9.3f %9.3f %9.3f %9s %8s\n", o.name, rate, r.ThroughputOK, r.Dropped,
			r.Latency.P50/1000, r.Latency.P99/1000, r.Latency.P999/1000, "<= "+o.target.String(), met)
		if r.Errors > 0 {
			fmt.Fprintf(os.Stderr, "open %s: %d errors: %v\n", o.name, r.Errors, r.Outcomes)
		}
	}
	return nil
}

// procCPU returns the user and system CPU time process pid has used, from
// /proc (0 where there is none: the figures are then missing, not wrong).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may
	// contain spaces: state is field 3, utime 14 and stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTick = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clockTick
}

// profile takes a CPU profile of every "name=host:port" debug address at
// once, for most of d, and saves it as DIR/name.pprof.
func profile(dir string, addrs []string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Leave the load's first and last moments out: ramp-up and drain.
	secs := max(int((d-2*time.Second)/time.Second), 1)
	errs := make(chan error, len(addrs))
	time.Sleep(time.Second) // let the load ramp up (a pause, not synchronization)
	for _, a := range addrs {
		name, addr, _ := strings.Cut(a, "=")
		go func() {
			errs <- fetch("http://"+addr+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), filepath.Join(dir, name+".pprof"))
		}()
	}
	var first error
	for range addrs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// fetch saves the body of url in file.
func fetch(url, file string) error {
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: HTTP %d", url, resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
