// Command scaleout measures what the data-server cluster costs on this
// machine, with real binaries, in the same run:
//
//   - single: one data server with its embedded pebble store (the default
//     deployment, the baseline);
//   - 1 member: one cluster member over PostgreSQL;
//   - N members: N cluster members over the same PostgreSQL server.
//
// For each, three business servers (business server i starts with member
// i mod N) and `bank bench` with 64 workers, closed loop: getSaldo on the
// data servers (spread over every member), then transfers through the
// business servers; then each load open loop, at a fixed rate the same for
// every setup and at half the setup's own closed-loop throughput, for
// p50/p99 measured from each request's intended send time.
//
// On one machine the members share its cores: the figures show the cost
// of the extra hop and of the shared store, not a speedup
// (docs/scale-out.md discusses what to expect on separate machines).
//
//	go run ./benchmarks/scaleout
//	go run ./benchmarks/scaleout -members 3 -duration 10s
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bank/gobank/actors/store/pgserver"
	"github.com/bank/gobank/benchmarks/launch"
	"github.com/bank/gobank/http/freeport"
)

func main() {
	members := flag.Int("members", 3, "members of the larger cluster")
	duration := flag.Duration("duration", 5*time.Second, "length of each closed-loop run")
	openDuration := flag.Duration("open-duration", 5*time.Second, "length of each open-loop run")
	workers := flag.Int("workers", 64, "bank bench --workers")
	accounts := flag.Int("accounts", 1000, "accounts of the bank (uniformly picked)")
	keep := flag.Bool("keep", false, "keep the temporary directory (logs, data)")
	saldoRate := flag.Float64("saldo-rate", 4000, "open loop: getSaldo requests per second, the same for every setup")
	transferRate := flag.Float64("transfer-rate", 800, "open loop: transfers per second, the same for every setup")
	flag.Parse()
	r := &runner{duration: *duration, openDuration: *openDuration, workers: *workers, accounts: *accounts,
		saldoRate: *saldoRate, transferRate: *transferRate}
	if err := r.run(*members, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "scaleout:", err)
		os.Exit(1)
	}
}

type runner struct {
	duration, openDuration time.Duration
	workers, accounts      int
	saldoRate              float64 // open loop, every setup
	transferRate           float64
	dir, bin               string
	env                    []string
}

func (r *runner) run(members int, keep bool) error {
	var err error
	if r.dir, err = os.MkdirTemp("", "gobank-scaleout-"); err != nil {
		return err
	}
	if keep {
		fmt.Println("temporary directory:", r.dir)
	} else {
		defer os.RemoveAll(r.dir)
	}
	r.bin = filepath.Join(r.dir, "bin")
	fmt.Println("building dataserver, businessserver and bank ...")
	if err := launch.Build("", r.bin, "./cmd/dataserver", "./cmd/businessserver", "./cmd/bank"); err != nil {
		return err
	}
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	r.env = append(os.Environ(), "BANK_SERVER_TOKEN="+hex.EncodeToString(secret[:]))

	ctx := context.Background()
	fmt.Println("starting PostgreSQL (durable: fsync on) ...")
	pg, err := pgserver.Start(ctx, filepath.Join(r.dir, "postgres"), slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer pg.Stop()

	fmt.Printf("\nclosed loop (%d workers), then open loop at a fixed rate (getSaldo %.0f/s, transfers %.0f/s) and at half the setup's own closed-loop rate:\n",
		r.workers, r.saldoRate, r.transferRate)
	fmt.Printf("%-10s %11s %11s | %12s %12s | %12s %12s | %12s %12s\n", "", "", "", "fixed rate", "", "half peak", "", "half peak", "")
	fmt.Printf("%-10s %11s %11s | %12s %12s | %12s %12s | %12s %12s\n", "setup", "getSaldo/s", "transfers/s",
		"getSaldo p99", "transfer p99", "getSaldo p50", "getSaldo p99", "transfer p50", "transfer p99")
	for _, n := range []int{0, 1, members} {
		dsn := ""
		if n > 0 {
			name := fmt.Sprintf("scaleout%d", n)
			if err := createDatabase(ctx, pg.DSN(), name); err != nil {
				return err
			}
			dsn = pg.DSNFor(name)
		}
		if err := r.setup(n, dsn); err != nil {
			return err
		}
	}
	fmt.Printf("\n(closed loop %v per run; open loops %v each, latencies from the intended send time; %d accounts uniform; 3 business servers)\n",
		r.duration, r.openDuration, r.accounts)
	return nil
}

// setup runs one configuration: n members over dsn, or with n == 0 a
// single data server on pebble.
func (r *runner) setup(n int, dsn string) error {
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
	label := fmt.Sprintf("setup%d", n)
	start := func(name string, env []string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(r.bin, name), args...)
		cmd.Env = append(r.env, env...)
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return "", err
		}
		if err := cmd.Start(); err != nil {
			return "", err
		}
		procs = append(procs, cmd)
		return launch.WaitListening(name, stderr, filepath.Join(r.dir, fmt.Sprintf("%s-%s-%d.stderr", label, name, len(procs))))
	}
	common := []string{"--host", "127.0.0.1", "--port", "0", "--log", filepath.Join(r.dir, label+"-data_server.log"),
		"--accounts", strconv.Itoa(r.accounts), "--balance", "1000000000"}
	var dataURLs []string
	if n == 0 {
		u, err := start("dataserver", nil, append(common, "--data-dir", filepath.Join(r.dir, "pebble"))...)
		if err != nil {
			return err
		}
		dataURLs = append(dataURLs, u)
	} else {
		ports, err := freeport.Ports(2 * n)
		if err != nil {
			return err
		}
		var peers []string
		for i := range n {
			peers = append(peers, "127.0.0.1:"+strconv.Itoa(ports[n+i]))
		}
		for i := range n {
			u, err := start("dataserver", []string{"BANK_POSTGRES_DSN=" + dsn}, append(common,
				"--cluster-addr", "127.0.0.1:"+strconv.Itoa(ports[i]), "--cluster-manage-port", strconv.Itoa(ports[n+i]),
				"--cluster-peers", strings.Join(peers, ","))...)
			if err != nil {
				return err
			}
			dataURLs = append(dataURLs, u)
		}
		if err := r.waitMembers(dataURLs, n); err != nil {
			return err
		}
	}
	var bizURLs []string
	for i := range 3 {
		var urls []string
		for j := range dataURLs {
			urls = append(urls, dataURLs[(i+j)%len(dataURLs)])
		}
		u, err := start("businessserver", nil, "--host", "127.0.0.1", "--log", filepath.Join(r.dir, label+"-business_server.log"),
			strings.Join(urls, ","), "0")
		if err != nil {
			return err
		}
		bizURLs = append(bizURLs, u)
	}
	saldo := []string{"--target", "data", "--servers", strings.Join(dataURLs, ","), "--mix", "getSaldo=1", "--no-check"}
	transfer := []string{"--servers", strings.Join(bizURLs, ","), "--mix", "transferencia=1"}
	// Activate every account first, so that no activation (a store
	// claim) falls inside the measurement.
	if _, err := r.bench(append([]string{"--workers", "8", "--requests", strconv.Itoa(2 * r.accounts)}, saldo...)...); err != nil {
		return err
	}
	closed := []string{"--workers", strconv.Itoa(r.workers), "--duration", r.duration.String()}
	sc, err := r.bench(append(closed, saldo...)...)
	if err != nil {
		return err
	}
	tc, err := r.bench(append(closed, transfer...)...)
	if err != nil {
		return err
	}
	open := func(rate float64, args []string) (launch.Result, error) {
		return r.bench(append([]string{"--rate", strconv.FormatFloat(rate, 'f', 0, 64), "--duration", r.openDuration.String()}, args...)...)
	}
	sf, err := open(r.saldoRate, saldo)
	if err != nil {
		return err
	}
	tf, err := open(r.transferRate, transfer)
	if err != nil {
		return err
	}
	so, err := open(sc.ThroughputOK/2, saldo)
	if err != nil {
		return err
	}
	to, err := open(tc.ThroughputOK/2, transfer)
	if err != nil {
		return err
	}
	name := "single"
	if n > 0 {
		name = fmt.Sprintf("%d member", n)
		if n > 1 {
			name += "s"
		}
	}
	ms := func(us float64) string { return fmt.Sprintf("%.2f ms", us/1000) }
	fmt.Printf("%-10s %11.0f %11.0f | %12s %12s | %12s %12s | %12s %12s\n", name, sc.ThroughputOK, tc.ThroughputOK,
		ms(sf.Latency.P99), ms(tf.Latency.P99), ms(so.Latency.P50), ms(so.Latency.P99), ms(to.Latency.P50), ms(to.Latency.P99))
	for _, x := range []struct {
		what string
		r    launch.Result
	}{{"getSaldo", sc}, {"transfers", tc}, {"getSaldo fixed rate", sf}, {"transfers fixed rate", tf},
		{"getSaldo half peak", so}, {"transfers half peak", to}} {
		if x.r.Errors > 0 || x.r.Dropped > 0 {
			fmt.Fprintf(os.Stderr, "  %s %s: %d errors, %d dropped: %v\n", name, x.what, x.r.Errors, x.r.Dropped, x.r.Outcomes)
		}
	}
	return nil
}

// bench runs bank bench on this run's accounts, uniformly picked.
func (r *runner) bench(args ...string) (launch.Result, error) {
	res, _, err := launch.Bench(filepath.Join(r.bin, "bank"), r.env,
		append([]string{"--accounts", strconv.Itoa(r.accounts), "--dist", "uniform"}, args...)...)
	return res, err
}

// waitMembers waits until every member's /metrics counts n members.
func (r *runner) waitMembers(urls []string, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	want := "\ngobank_cluster_members " + strconv.Itoa(n) + "\n"
	for _, u := range urls {
		for {
			if resp, err := http.Get(u + "/metrics"); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), want) {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s does not see %d members after 30s", u, n)
			}
			time.Sleep(100 * time.Millisecond) // polling a condition, bounded above
		}
	}
	return nil
}

func createDatabase(ctx context.Context, dsn, name string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}
