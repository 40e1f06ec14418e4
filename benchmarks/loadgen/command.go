package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bank/gobank/http/auth"
)

// Environment variables read by Command.
const (
	// EnvServers overrides the default business servers (comma-separated).
	EnvServers = "BANK_SERVERS"
	// EnvToken overrides the default client token.
	EnvToken = "BANK_TOKEN"
)

// DefaultServers are the business servers "bank up" starts.
const DefaultServers = "http://localhost:5001,http://localhost:5002,http://localhost:5003"

// DefaultDataServer is the data server the data target defaults to.
const DefaultDataServer = "http://localhost:5000"

const usageHead = `bank bench: load-test the bank and check that it conserves money.

usage:
  bank bench [flags]

Closed loop (the default): --workers goroutines each send their next
request as soon as the last one is answered, for --duration or --requests.
It finds the throughput the servers sustain.

Open loop (--rate R): requests leave at a fixed schedule of R per second,
whatever the servers do, and each latency is measured from the request's
INTENDED send time, so a stall shows up in the percentiles (no coordinated
omission). At most --max-inflight requests are outstanding; a request whose
turn comes while that many are is counted as dropped and reported.

Conservation check (business target, unless --no-check): every balance is
read through the first server's /saldo before and after the run. Acknowledged
deposits and withdrawals must explain the whole change of the sum; requests
whose outcome is unknown (timeout, broken connection, 5xx without the bank's
error body) widen the allowed range by their amounts; no balance may be
negative. Nothing else may write to the bank during the run.

Examples:
  bank bench
  bank bench --servers http://localhost:5001,http://localhost:5002 --workers 64 --duration 10s
  bank bench --rate 2000 --duration 30s --dist zipf:0.99
  bank bench --mix transferencia=1 --dist hot:2:0.9 --accounts 100 --json > run.json
  bank bench --requests 10000 --workers 8 --seed 7
  BANK_SERVER_TOKEN=... bank bench --target data --servers http://localhost:5000 --mix lock=1

Flags:
`

const usageTail = `
Operations (--mix OP=WEIGHT,...; weights are relative):
  business: deposito, saque, transferencia (two distinct accounts), saldo
            default ` + DefaultBusinessMix + `
  data:     getSaldo; lock (getLock then unLock); setSaldo (getLock, setSaldo
            of the balance just read, unLock: loads writes, changes nothing)
            default ` + DefaultDataMix + `

Batches (--batch N, N > 1): every transferencia of the mix is one POST
/transferencias of N transfers, each drawn as a single transfer is (two
distinct accounts, an amount in range), applied by the business server as
one transaction with a result per transfer. A batch is one operation:
requests, outcomes, latency and --rate count batches (its outcome is "ok"
when it was answered with results, whatever they are); the report adds the
batches' transfers (applied and refused, by error_code), transfers per
second, and the latency per batch. Batched transfers keep the sum, so the
conservation check is unchanged; a batch with an unknown outcome counts its
N transfers as unknown. Not with --history (bank check has no batches).
  bank bench --mix transferencia=1 --batch 100 --accounts 1000 --workers 16

Outcomes are "ok", or the HTTP status and the error_code's name (e.g.
"403 LOCKED_ACCOUNT", "409 INSUFFICIENT_FUNDS", "200 LOCKED_ACCOUNT" from a
data server), or "timeout", "conn_error", "dial_error", "no_free_conn".

--json prints one object: target, mode, servers, workers, rate, max_inflight,
accounts, dist, mix, amount_min, amount_max, seed, timeout_ms, interrupted,
duration_s, requests, ok, errors, unknown, dropped, throughput_ok,
throughput_total, latency_us {min, mean, p50, p90, p99, p99_9, max},
outcomes {label: count}, ops {op: {requests, ok, dropped}}, conservation
{before, after, deposited, withdrawn, unknown_deposit, unknown_withdraw,
unknown_transfers, min_after, max_after, negative_accounts, ok, reason} or null,
batch, and with --batch N > 1 batches {size, requests, ok, transfers, applied,
refused {name: count}, throughput_applied, throughput_transfers, latency_us}.

History (--history FILE): every operation as invoked and returned, one JSON
line each, streamed to FILE: monotonic call and return times (ns since the
start), the worker, the op and its inputs, and the result: "ok" with the
balances answered, "fail" (a definite refusal: status and error name) or
"unknown" (timeout, broken connection, 5xx that does not say "not applied").
The history covers accounts 1..N (--accounts), whatever else the data server
holds. --snapshot-every D adds consistent reads of their balances (the data
server's /snapshot, with the server credential); --groups G keeps each worker's
operations within one of G disjoint blocks of accounts. "bank check FILE"
checks conservation and linearizability. Format: go doc
github.com/bank/gobank/benchmarks/loadgen.HistoryVersion.
  bank bench --duration 10s --history run.jsonl --snapshot-every 100ms --groups 5
  bank check run.jsonl

Exit status: 0 the run completed (and the check passed); 1 the check failed
or the run could not be made; 2 the command line is wrong.
`

// Command is "bank bench": it parses args (flags only), runs, and prints
// the report on stdout (a table, or JSON with --json) and the progress line
// on stderr. It returns nil after --help; an error wrapping ErrUsage for a
// bad command line; one wrapping ErrConservation when the check fails.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return command(ctx, args, os.Getenv, stdout, stderr)
}

func command(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	target := fs.String("target", string(TargetBusiness), "what to load: business (the public routes) or data (a data server's routes, with the server credential)")
	servers := fs.String("servers", "", "comma-separated base URLs, used round-robin; the check reads through the first\n(default $"+EnvServers+" or "+DefaultServers+";\nwith --target data: "+DefaultDataServer+")")
	token := fs.String("token", "", "value of the \"token\" header (default: $"+EnvToken+" or "+DefaultToken+";\nwith --target data: $"+auth.EnvServerToken+" or the data server's credential file)")
	workers := fs.Int("workers", DefaultWorkers, "closed loop: concurrent workers, each sending back to back")
	duration := fs.Duration("duration", DefaultDuration, "how long to send (with --requests: whichever ends first)")
	requests := fs.Int64("requests", 0, "stop after this many operations (open loop: scheduled, dropped included); 0: no limit")
	rate := fs.Float64("rate", 0, "open loop: operations per second at a fixed schedule; 0 selects the closed loop")
	maxInflight := fs.Int("max-inflight", DefaultMaxInflight, "open loop: bound on outstanding operations; beyond it they are dropped (and counted)")
	mixSpec := fs.String("mix", "", "operation mix OP=WEIGHT,... (default "+DefaultBusinessMix+";\nwith --target data: "+DefaultDataMix+")")
	amount := fs.String("amount", fmt.Sprintf("%d..%d", DefaultAmountMin, DefaultAmountMax), "amounts, drawn uniformly: MIN..MAX, or N")
	accounts := fs.Int("accounts", DefaultAccounts, "use accounts 1..N (must exist: the check reads them all)")
	distSpec := fs.String("dist", DistUniform, "how accounts are picked: uniform; zipf:S (P(k) ∝ 1/k^S, S > 0, account 1 hottest,\ne.g. zipf:0.99); hot:K:P (accounts 1..K get fraction P of picks, e.g. hot:2:0.9)")
	seed := fs.Uint64("seed", 1, "seed of the operation sequence (ops, accounts, amounts)")
	timeout := fs.Duration("timeout", DefaultTimeout, "bound of each HTTP request; a request that times out has an unknown outcome")
	noCheck := fs.Bool("no-check", false, "skip the conservation check (and its exit status)")
	unknown5xx := fs.Bool("unknown-5xx", false, "count every 5xx as an unknown outcome, even with the bank's error body\n(which promises the operation was not applied or was rolled back)")
	settle := fs.Duration("settle", DefaultSettle, "when writes had unknown outcomes, re-read the balances until they stop changing, for at most this long")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the table")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	historyPath := fs.String("history", "", "record every operation (invocation, return, outcome) to FILE as JSON lines,\nfor \"bank check FILE\" (business target only; format: go doc loadgen.HistoryVersion)")
	snapshotEvery := fs.Duration("snapshot-every", 0, "with --history: record a consistent read of the balances of accounts 1..N\n(the data server's /snapshot) this often, and once before and after the load; 0: none")
	dataServer := fs.String("data-server", DefaultDataServer, "the data server --snapshot-every reads, with the server credential\n($"+auth.EnvServerToken+" or the data server's credential file)")
	groups := fs.Int("groups", 0, "split the accounts into G contiguous groups; worker w stays in group w mod G,\nso no transfer crosses groups (bank check then checks each group apart)")
	batch := fs.Int("batch", 1, "send each transferencia of the mix as one POST /transferencias of N transfers (1 to 8190;\n1: one /transferencia each); business target only, not with --history")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(stdout, fs)
			return nil
		}
		return usagef("bench: %v (see bank bench --help)", err)
	}
	if fs.NArg() > 0 {
		return usagef("bench: unexpected argument %q (flags only; see bank bench --help)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := Config{
		Target:      Target(*target),
		Workers:     *workers,
		Requests:    *requests,
		Rate:        *rate,
		MaxInflight: *maxInflight,
		Accounts:    *accounts,
		Seed:        *seed,
		Timeout:     *timeout,
		NoCheck:     *noCheck,
		Unknown5xx:  *unknown5xx,
		Settle:      *settle,
	}
	if cfg.Target != TargetBusiness && cfg.Target != TargetData {
		return usagef("bench: --target %q: want business or data", *target)
	}
	// --requests alone means "exactly that many", not "that many or 10s".
	if set["duration"] || !set["requests"] {
		cfg.Duration = *duration
	}
	if cfg.Duration <= 0 && cfg.Requests <= 0 {
		return usagef("bench: --duration must be positive (or give --requests)")
	}
	switch {
	case cfg.Workers < 1:
		return usagef("bench: --workers %d: want at least 1", cfg.Workers)
	case cfg.MaxInflight < 1:
		return usagef("bench: --max-inflight %d: want at least 1", cfg.MaxInflight)
	case cfg.Accounts < 1:
		return usagef("bench: --accounts %d: want at least 1", cfg.Accounts)
	case cfg.Timeout <= 0:
		return usagef("bench: --timeout must be positive")
	case cfg.Requests < 0:
		return usagef("bench: --requests must not be negative")
	case cfg.Settle < 0:
		return usagef("bench: --settle must not be negative")
	}

	srv := *servers
	if !set["servers"] {
		if cfg.Target == TargetData {
			srv = DefaultDataServer
		} else if srv = getenv(EnvServers); strings.TrimSpace(srv) == "" {
			srv = DefaultServers
		}
	}
	for s := range strings.SplitSeq(srv, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Servers = append(cfg.Servers, s)
		}
	}
	if len(cfg.Servers) == 0 {
		return usagef("bench: --servers is empty")
	}

	cfg.Token = *token
	if !set["token"] {
		if cfg.Target == TargetData {
			cfg.Token = serverCredential(getenv)
		} else if cfg.Token = getenv(EnvToken); cfg.Token == "" {
			cfg.Token = DefaultToken
		}
	}
	if cfg.Token == "" {
		return usagef("bench: no token: the data target needs the server credential (--token, $%s, or the file %s)",
			auth.EnvServerToken, auth.DefaultSecretPath())
	}

	if set["mix"] {
		m, err := ParseMix(*mixSpec)
		if err != nil {
			return usagef("bench: --%v", err)
		}
		cfg.Mix = m
	}
	d, err := ParseDist(*distSpec)
	if err != nil {
		return usagef("bench: --%v", err)
	}
	cfg.Dist = d
	if cfg.AmountMin, cfg.AmountMax, err = parseAmount(*amount); err != nil {
		return usagef("bench: --%v", err)
	}

	cfg.Groups = *groups
	cfg.Batch = *batch
	switch {
	case cfg.Batch < 1 || cfg.Batch > MaxBatch:
		return usagef("bench: --batch %d: want 1 to %d transfers", cfg.Batch, MaxBatch)
	case cfg.Batch == 1:
	case cfg.Target != TargetBusiness:
		return usagef("bench: --batch %d: business target only (the batch is the business servers' POST /transferencias)", cfg.Batch)
	case *historyPath != "":
		return usagef("bench: --batch %d with --history: a history cannot record batches for bank check to judge; "+
			"record without --batch, or batch without --history", cfg.Batch)
	case cfg.Mix != nil && cfg.Mix["transferencia"] <= 0:
		return usagef("bench: --batch %d: the mix has no transferencia to batch", cfg.Batch)
	}
	if *historyPath == "" && *snapshotEvery != 0 {
		return usagef("bench: --snapshot-every needs --history")
	}
	if *historyPath != "" {
		if cfg.Target != TargetBusiness {
			return usagef("bench: --history: business target only")
		}
		if cfg.SnapshotEvery = *snapshotEvery; cfg.SnapshotEvery < 0 {
			return usagef("bench: --snapshot-every must not be negative")
		}
		if cfg.SnapshotEvery > 0 {
			cfg.DataServer = *dataServer
			if cfg.ServerToken = serverCredential(getenv); cfg.ServerToken == "" {
				return usagef("bench: --snapshot-every: no server credential ($%s, or the file %s)",
					auth.EnvServerToken, auth.DefaultSecretPath())
			}
		}
		f, err := os.Create(*historyPath)
		if err != nil {
			return fmt.Errorf("bench: --history: %w", err)
		}
		defer f.Close()
		cfg.History = f
	}

	var progress io.Writer
	if !*quiet {
		progress = stderr
	}
	rep, err := Run(ctx, cfg, progress)
	if err != nil {
		if errors.Is(err, ErrUsage) {
			return usagef("bench: %v", err)
		}
		return fmt.Errorf("bench: %w", err)
	}
	if f, ok := cfg.History.(*os.File); ok {
		if err := f.Close(); err != nil {
			return fmt.Errorf("bench: --history: %w", err)
		}
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		return fmt.Errorf("bench: writing the report: %w", err)
	}
	if *historyPath != "" && !*asJSON {
		fmt.Fprintf(stdout, "\nhistory: %d lines in %s (bank check %s)\n", rep.HistoryLines, *historyPath, *historyPath)
	}
	if c := rep.Conservation; c != nil && !c.OK {
		return fmt.Errorf("bench: %w: %s", ErrConservation, c.Reason)
	}
	return nil
}

// serverCredential finds the data server's credential the way business
// servers on the same host do, but never creates the file.
func serverCredential(getenv func(string) string) string {
	if v := strings.TrimSpace(getenv(auth.EnvServerToken)); v != "" {
		return v
	}
	b, err := os.ReadFile(auth.DefaultSecretPath())
	if err != nil || len(b) > 4096 {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func writeUsage(w io.Writer, fs *flag.FlagSet) {
	var b strings.Builder
	b.WriteString(usageHead)
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	b.WriteString(usageTail)
	_, _ = io.WriteString(w, b.String())
}
