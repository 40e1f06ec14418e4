package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/bank/gobank/benchmarks/soak"
)

const soakDescription = `Runs a bank of its own (a durable data server and two business servers,
child processes of this program on free loopback ports; with --nodes N, N
data-server members of a cluster over a private PostgreSQL server) under
the mixed workload of "bank bench" in rounds, injecting one fault per
round, and checks every round's recorded history for conservation and
linearizability. It also watches the servers for leaks: memory (VmRSS),
goroutines and live account actors.

Every link goes through a fault-injecting proxy on 127.0.0.1 (toxiproxy,
embedded): client -> business server, business server -> data server (one
per pair), and with --nodes member -> PostgreSQL (one per member). The
load generator talks to the business servers through their proxies; its
snapshots read the first data server directly.

The data servers answer every tenth request 20ms late
(GOBANK_TEST_SLOW=20ms); the single data server keeps its accounts in
DIR/bank-data. The business servers run with --lock-ttl 1s --lock-wait
500ms --data-timeout 2500ms. The children get a random BANK_SERVER_TOKEN
and HOME=DIR. A restarted server gets the ports it had.

--seed picks the fault schedule: the fault of each round, its target, when
it starts (between 1/8 and 1/3 into the round), how long it lasts (it is
healed by 3/4 of the round) and its parameters. The same seed and flags
give the same schedule, printed before the first round. The faults
(--faults all, process, net, or a comma-separated list of):
  kill-biz      kill -9 business server biz1, restart it on its port
  kill-data     kill -9 the data server (a random member), restart it
  stop-biz      SIGSTOP biz2 past its lease, then SIGCONT
  slow-data     business -> data latency with jitter, both ways
  late-writes   business -> data answers delayed past the lease: the
                business server's writes reach the data server after its
                lease ran out, and must be refused (fences)
  part-data     business -/- data partition past the lease (silence)
  drop-answers  business -> data connections closed n bytes into their
                answers: the answer cut is lost after the data server
                applied its request (a getLocks, or a commit)
  cut-requests  business -> data connections closed after n bytes of
                requests (400-4000): in the middle of one
  reset-client  client -> business connections reset once the answer
                comes (the operation was applied, the client cannot know)
  slow-client   client -> business latency, bandwidth limit and slicing
  part-client   client -/- business partition
  part-pg       member -/- PostgreSQL partition        (--nodes > 1)
  slow-pg       member -> PostgreSQL latency           (--nodes > 1)
  reset-pg      member -> PostgreSQL connections reset (--nodes > 1)
biz2 is never restarted, so it lives through the whole soak.

Each round runs the workload (loadgen, business target, 5 account groups,
a data-server snapshot every 200ms, request timeout 5s, history in
DIR/round-N.jsonl) for --round; after the round, check.Bank and
check.Linearizable (timeout 1m) judge the history and the load generator
checks conservation: a FAIL or an inconclusive verdict fails the soak,
which then prints the seed and the command that replays its schedule.
One line per round is printed.

After the first round (warmed up) and after the last, each server's RSS
(VmRSS of /proc/PID/status), goroutines (go_goroutines of its /metrics) and
live actors (gobank_data_accounts, data servers) are sampled. The soak
fails when, for a server that was not restarted in between, RSS grew by
more than --max-rss-growth (a size, 64MiB, or a percentage of the first
sample, 50%) or goroutines grew by more than --max-goroutine-growth; the
live actors of a data server must not exceed --accounts. A final table
shows the samples.

Exit status: 0 every check and bound held; 1 a check failed, a bound was
exceeded, a server failed or the soak was interrupted (Ctrl-C kills the
servers); 2 the command line is wrong.`

func newSoakFlagSet(c *soak.Config, seed *string) *flag.FlagSet {
	fs := newFlagSet("soak")
	fs.DurationVar(&c.Duration, "duration", 10*time.Minute, "total load time, split in rounds")
	fs.DurationVar(&c.Round, "round", 30*time.Second, "length of a round (at least 6s): one fault and one check each")
	fs.IntVar(&c.Workers, "workers", 16, "load generator workers")
	fs.IntVar(&c.Accounts, "accounts", 10, "accounts of the bank (at least 5: one group of the workload each)")
	fs.IntVar(&c.Nodes, "nodes", 1, "data servers: more than 1 runs a cluster of members over a private PostgreSQL server (needs PostgreSQL's server programs)")
	fs.StringVar(seed, "seed", "", "the fault schedule's seed, a number (default: a random one, printed)")
	fs.StringVar(&c.FaultsArg, "faults", "all", "the faults to draw from: all, process, net, or a comma-separated list of kinds (see above)")
	fs.StringVar(&c.Dir, "dir", "", "where the data, logs and histories go (default: a temporary directory, removed afterwards unless --keep)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the temporary directory")
	fs.StringVar(&c.RSSArg, "max-rss-growth", "64MiB", "fail if a server's RSS grows by more than this between the first round and the end: a size (64MiB) or a percentage (50%)")
	fs.Int64Var(&c.GoroutineBound, "max-goroutine-growth", 200, "fail if a server's goroutines grow by more than this between the first round and the end")
	return fs
}

func soakUsage() string {
	var c soak.Config
	var seed string
	fs := newSoakFlagSet(&c, &seed)
	return fmt.Sprintf("usage: bank soak [flags]\n\n%s\n\nflags:\n%s\nexamples:\n  bank soak --duration 2m --round 20s\n  bank soak --seed 42 --duration 10m --faults net\n  bank soak --nodes 3 --duration 5m --round 15s\n  bank soak --duration 1h --max-rss-growth 25%% --dir /tmp/soak\n",
		soakDescription, describeFlags(fs))
}

func parseSoak(args []string) (soak.Config, error) {
	var c soak.Config
	var seed string
	fs := newSoakFlagSet(&c, &seed)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return c, err
	}
	if len(pos) > 0 {
		return c, usagef("soak takes no arguments, got %q", pos)
	}
	if c.Round < 6*time.Second {
		return c, usagef("--round %v: at least 6s", c.Round)
	}
	if c.Duration < c.Round {
		return c, usagef("--duration %v: at least one --round (%v)", c.Duration, c.Round)
	}
	if c.Workers < 1 {
		return c, usagef("--workers %d: at least 1", c.Workers)
	}
	if c.Accounts < 5 {
		return c, usagef("--accounts %d: at least 5", c.Accounts)
	}
	if c.Nodes < 1 || c.Nodes > 9 {
		return c, usagef("--nodes %d: want 1 to 9", c.Nodes)
	}
	if c.GoroutineBound < 0 {
		return c, usagef("--max-goroutine-growth %d: negative", c.GoroutineBound)
	}
	if c.RSSBound, err = soak.ParseSizeBound(c.RSSArg); err != nil {
		return c, usagef("--max-rss-growth %v", err)
	}
	if c.Faults, err = soak.ParseFaults(c.FaultsArg, c.Nodes); err != nil {
		return c, usagef("--faults %v", err)
	}
	if seed == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.Seed = binary.LittleEndian.Uint64(b[:]) >> 1 // printable as a positive int64 too
	} else if c.Seed, err = strconv.ParseUint(seed, 10, 64); err != nil {
		return c, usagef("--seed %q: want a number from 0 to %d", seed, uint64(math.MaxUint64))
	}
	return c, nil
}

// runSoak parses the command line of "bank soak" and runs the harness,
// package benchmarks/soak, with this program as the servers.
func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseSoak(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, soakUsage())
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "bank soak: %v\nrun \"bank help soak\" for usage\n", err)
		return exitUsage
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "bank soak: cannot find this program to run the servers: %v\n", err)
		return exitFail
	}
	cfg.Exe = exe
	cfg.ClientEnv = []string{envServer, envAuth, envToken}
	if !soak.Run(ctx, cfg, stdout, stderr) {
		return exitFail
	}
	return exitOK
}
