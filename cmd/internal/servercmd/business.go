package servercmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/auth"
	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/dataclient"
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/oplog"
)

const businessDescription = `
Serves the bank's operations over HTTP, keeping no money itself: every
operation locks, reads and writes accounts on the data server at DATA_URL
(e.g. http://localhost:5000). PORT defaults to 5001 (the original defaulted
to 5000, the data server's own port).

Several data servers of one bank (in front of the same accounts, e.g. the
members of a cluster) are given as a comma-separated DATA_URL
(http://h1:5000,http://h2:5000) or with --data, once per data server (then
the only positional argument is PORT). Calls go to the first; when a data
server cannot be reached (nothing was sent) or answers 503 "not applied",
the call is repeated on the next one, which is then used from there on.
Reads are repeated after any failure; a lock or write whose outcome is
unknown (timeout, lost answer) is never repeated elsewhere: the client
gets 503 and repeats it with its Idempotency-Key.

Routes, each with the client's token in the header "token":
  /deposito/<conta>/<valor>   /saque/<conta>/<valor>   /saldo/<conta>
  /transferencia/<conta_orig>/<conta_dest>/<valor>     and /status

A transfer locks both accounts, checks funds, then writes both balances
and releases both locks with one atomic /commit on the data server: both
or neither are applied, whenever this server dies. The data server must be
gobank's (one without /commit, like the original, gets the old non-atomic
setSaldo writes, and no Idempotency-Key).

A deposito, saque or transferencia sent with the header
"Idempotency-Key: K" (1 to 128 printable ASCII characters) is applied at
most once however often it is repeated with the same K, through any
business server of the same data server: a repetition is answered the
first outcome again, with "Idempotent-Replayed: true"; K used for another
request is refused with 422 (KEY_REUSED). Keys are scoped per client
token.

Locks, for experimenting:
  --lock-order ascending  lowest account first: no deadlock (default)
  --lock-order request    conta_orig, then conta_dest, as the original did:
                          opposite transfers may each hold one lock and wait
                          for the other until --lock-wait runs out (403)
  --lock-mode wait        queue on the data server (FIFO) for up to
                          --lock-wait, then 403 (default)
  --lock-mode retry       fail-fast getLocks retried with jittered backoff
                          for up to --lock-wait, then 403
  --lock-mode fail-fast   one attempt: 403 at once when locked (the original)
The concurrency-control schemes (Yu et al., "Staring into the Abyss", VLDB
2014) name each operation by a timestamp taken at its first attempt and
kept across retries; an aborted attempt applied nothing, releases its locks
and is retried for up to --lock-wait, then 403. They need this project's
data server:
  --lock-mode wait-die    wait for a younger holder, die behind an older one
  --lock-mode wound-wait  take the lock from a younger holder (its commit is
                          refused and it retries), wait for an older one
  --lock-mode detect      wait (FIFO); the data server aborts the youngest of
                          a cycle of waits at once (--deadlock-detection)
  --lock-mode occ         read without locks, then validate: lock without
                          waiting, granted only if nothing was written since
  --coalesce N            with --lock-mode wait, up to N deposits, withdrawals
                          and transfers that arrive together run as one
                          transaction: one /getLocks and one /commit, each
                          answered its own outcome (default 64; 0: each
                          alone). On a hot account, one lock hand-off per
                          batch instead of one per operation.
Every lock is asked for with a lease of --lock-ttl (0: the data server's
--lock-ttl): a business server that dies holding a lock blocks the account
that long at most, and one paused past its lease has its writes refused
(503) so that it cannot overwrite the next holder's work. Unset, --lock-ttl
is --lock-wait + 2 x --data-timeout + 1s (7s), which outlasts a transfer's
wait for its second lock and its commit; a shorter one is warned about.

The server credential for the data server is read from $BANK_SERVER_TOKEN
when set, otherwise from --server-token-file (the data server on the same
host creates it). The client's token is checked with the data server's
/autentica; accepted tokens are trusted for --auth-cache.

/metrics (no token) answers the server's metrics in Prometheus' text
format; --debug-addr serves Go's profiler (opt-in).

Tracing (OpenTelemetry, off by default) is configured by the standard
environment variables: OTEL_TRACES_EXPORTER=otlp (OTEL_EXPORTER_OTLP_*),
console (one JSON span per line on stdout) or none; OTEL_SERVICE_NAME
(default gobank-business), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER. W3C
traceparent is read from requests and sent on to the data server. Spans
never carry a token, a credential or an Idempotency-Key.`

// DefaultBusinessLockTTL is the lease a business server asks for with every
// lock unless --lock-ttl, --lock-wait or --data-timeout say otherwise: the
// lease derived from the default wait and timeout (7s).
var DefaultBusinessLockTTL = leaseFor(business.DefaultLockWait, business.DefaultDataTimeout)

// leaseFor returns the shortest lease that outlasts a transfer's worst case
// before its commit lands: after its first grant, the second getLock may
// wait lockWait and take a data-server call, and the commit takes another;
// a second more covers the clocks' and the scheduler's slack. A shorter
// lease may run out mid-transfer, which is safe (fenced: 503, nothing
// changed) but fails operations that should succeed.
func leaseFor(lockWait, dataTimeout time.Duration) time.Duration {
	return lockWait + 2*dataTimeout + time.Second
}

// envPauseAt names a test-only fault: when set to a stage of
// business.Stages ("locked", "before-commit", "between-writes",
// "after-commit"), every operation that writes pauses at that point until
// the server is told to stop (SIGINT/SIGTERM), so that tests can kill a
// business server while it holds its locks (cmd/businessserver's
// kill_test.go). Never set it in production; it is deliberately left out of
// --help.
const envPauseAt = "GOBANK_TEST_PAUSE_AT"

// envCrashAt names a test-only fault: when set to a stage of
// business.Stages, the first operation that reaches that point kills the
// whole process with SIGKILL, as a crash or a power cut would: at
// "locked", holding its locks with nothing written; at "before-commit",
// about to write; at "after-commit", with the balances (and the request's
// idempotency record) durable but the answer never sent. Tests use it to
// check that nothing acknowledged is lost and that a retry with the same
// Idempotency-Key is applied once. Never set it in production; it is
// deliberately left out of --help.
const envCrashAt = "GOBANK_TEST_CRASH_AT"

// pauseHook returns the stage hook of envPauseAt: it blocks at stage until
// ctx ends.
func pauseHook(ctx context.Context, stage string) func(string) {
	return func(s string) {
		if s == stage {
			<-ctx.Done()
		}
	}
}

// crashHook returns the stage hook of envCrashAt: it kills this process
// with SIGKILL at stage (os.Process.Kill: SIGKILL on Unix), so that no
// deferred function, shutdown or log flush runs.
func crashHook(stage string) func(string) {
	return func(s string) {
		if s != stage {
			return
		}
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Kill()
		}
		select {} // the signal is on its way: go no further
	}
}

// testHooks returns the stage hook of the test-only faults named by the
// environment (envPauseAt, envCrashAt), nil when neither is set.
func testHooks(ctx context.Context, fs *flag.FlagSet) (func(string), error) {
	var hooks []func(string)
	for _, f := range []struct {
		env  string
		hook func(string) func(string)
	}{
		{envPauseAt, func(stage string) func(string) { return pauseHook(ctx, stage) }},
		{envCrashAt, crashHook},
	} {
		stage := os.Getenv(f.env)
		if stage == "" {
			continue
		}
		if !slices.Contains(business.Stages(), stage) {
			return nil, usageError(fs, "$%s %q: want one of %q", f.env, stage, business.Stages())
		}
		hooks = append(hooks, f.hook(stage))
	}
	switch len(hooks) {
	case 0:
		return nil, nil
	case 1:
		return hooks[0], nil
	}
	return func(stage string) {
		for _, h := range hooks {
			h(stage)
		}
	}, nil
}

// Business runs a business server with the command-line arguments args
// (DATA_URL [PORT] and flags) until ctx is cancelled.
func Business(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("businessserver", "businessserver [flags] DATA_URL[,DATA_URL...] [PORT]\n       businessserver [flags] --data URL [--data URL ...] [PORT]", businessDescription, stderr)
	host := fs.String("host", "", "address to listen on (empty: every interface)")
	id := fs.String("id", "", "this server's id_negoc on the data server (default HOSTNAME:PORT); unique per business server")
	secretFile := fs.String("server-token-file", auth.DefaultSecretPath(), "server credential file, used when $"+auth.EnvServerToken+" is unset")
	logPath := fs.String("log", "business_server.log", `operation log file ("-" for stdout)`)
	lockMode := fs.String("lock-mode", string(business.ModeWait), "how a locked account is waited for: wait (queue on the data server), retry (fail-fast attempts with backoff), fail-fast (one attempt), or a scheme: wait-die, wound-wait, detect, occ (see above)")
	lockOrder := fs.String("lock-order", string(business.OrderAscending), "order in which an operation locks its accounts: ascending (deadlock-free) or request (conta_orig first, as the original)")
	lockWait := fs.Duration("lock-wait", business.DefaultLockWait, "how long an operation waits for or retries its locks before answering 403 (ignored by --lock-mode fail-fast)")
	lockTTL := fs.Duration("lock-ttl", DefaultBusinessLockTTL, "lease asked for with every lock (0: the data server's default); unset, --lock-wait + 2 × --data-timeout + 1s, which outlasts a transfer")
	coalesce := fs.Int("coalesce", business.DefaultCoalesce, "with --lock-mode wait, run up to this many deposits, withdrawals and transfers that arrive at once as one transaction on the data server, each answered its own outcome (0 or 1: each alone; other lock modes: each alone)")
	dataTimeout := fs.Duration("data-timeout", business.DefaultDataTimeout, "timeout of each call to the data server")
	authCache := fs.Duration("auth-cache", business.DefaultAuthCacheTTL, "how long a client token accepted by the data server is trusted without asking again (negative: ask every time)")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "how long shutdown waits for requests in flight")
	var dataFlags urlList
	fs.Var(&dataFlags, "data", "a data server's URL, once per data server of the bank, tried in order (instead of DATA_URL)")
	debugAddr := fs.String("debug-addr", "", "serve Go's profiler (/debug/pprof/) and /metrics on this address, e.g. 127.0.0.1:6060 (empty: off)")
	positional, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return ErrUsage
	}
	var dataURLs []string
	if len(dataFlags) > 0 {
		if len(positional) > 1 {
			return usageError(fs, "with --data, want [PORT] only, got %q", positional)
		}
		dataURLs = dataFlags
	} else {
		if len(positional) < 1 || len(positional) > 2 {
			return usageError(fs, "want DATA_URL [PORT] (or --data URL ... [PORT]), got %q", positional)
		}
		dataURLs = dataclient.SplitURLs(positional[0])
		positional = positional[1:]
		if len(dataURLs) == 0 {
			return usageError(fs, "DATA_URL is empty")
		}
	}
	for _, d := range dataURLs {
		if u, err := url.Parse(d); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError(fs, "DATA_URL %q: want a URL such as http://localhost:5000", d)
		}
	}
	dataURL := strings.Join(dataURLs, ",")
	port := 5001
	if len(positional) == 1 {
		if port, err = strconv.Atoi(positional[0]); err != nil || port < 0 || port > 65535 {
			return usageError(fs, "PORT %q: not a TCP port", positional[0])
		}
	}
	if *dataTimeout <= 0 || *grace <= 0 {
		return usageError(fs, "--data-timeout and --shutdown-timeout must be positive")
	}
	mode := business.LockMode(*lockMode)
	if !slices.Contains(teller.Modes(), mode) {
		return usageError(fs, "--lock-mode %q: want one of %v", *lockMode, teller.Modes())
	}
	order := business.LockOrder(*lockOrder)
	switch order {
	case business.OrderAscending, business.OrderRequest:
	default:
		return usageError(fs, "--lock-order %q: want ascending or request", *lockOrder)
	}
	if *lockWait <= 0 {
		return usageError(fs, "--lock-wait %v: want a positive duration such as 2s (for no wait, use --lock-mode fail-fast)", *lockWait)
	}
	coalesceChosen := false
	fs.Visit(func(f *flag.Flag) { coalesceChosen = coalesceChosen || f.Name == "coalesce" })
	switch {
	case *coalesce < 0 || *coalesce > teller.MaxBatch:
		return usageError(fs, "--coalesce %d: want 0 to %d operations per transaction", *coalesce, teller.MaxBatch)
	case *coalesce > 1 && mode != business.ModeWait && coalesceChosen:
		return usageError(fs, "--coalesce %d needs --lock-mode wait: the other modes run each operation as its own transaction", *coalesce)
	case mode != business.ModeWait:
		*coalesce = 0 // the default is wait's
	}
	if *lockTTL < 0 {
		return usageError(fs, "--lock-ttl %v: want a positive duration such as 5s, or 0 for the data server's default", *lockTTL)
	}
	hook, err := testHooks(ctx, fs)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, "business")
	tp, stopTracing, err := startTracing(ctx, "gobank-business", logger)
	if err != nil {
		return err
	}
	defer stopTracing()
	if stage := os.Getenv(envPauseAt); stage != "" {
		logger.Warn("test fault enabled: every operation pauses until shutdown", "env", envPauseAt, "stage", stage)
	}
	if stage := os.Getenv(envCrashAt); stage != "" {
		logger.Warn("test fault enabled: the first operation to get there kills this process", "env", envCrashAt, "stage", stage)
	}
	// The default lease follows the wait and timeout it must outlast, so
	// that defaults never warn; a lease the user chose is theirs to keep,
	// with a warning when it is short.
	ttlChosen := false
	fs.Visit(func(f *flag.Flag) { ttlChosen = ttlChosen || f.Name == "lock-ttl" })
	if !ttlChosen {
		*lockTTL = leaseFor(*lockWait, *dataTimeout)
	} else if *lockTTL > 0 && *lockTTL < *lockWait+2**dataTimeout {
		logger.Warn("--lock-ttl is short: a transfer's first lease may run out while it waits for its second lock (answered 503, nothing changed)",
			"lock_ttl", *lockTTL, "lock_wait", *lockWait, "data_timeout", *dataTimeout)
	}

	secret, source, err := auth.ServerSecret(*secretFile)
	if err != nil {
		return fmt.Errorf("server credential: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	if *id == "" {
		name, err := os.Hostname()
		if err != nil || name == "" {
			name = "localhost"
		}
		// The bound port, not the asked one: PORT 0 picks a free port.
		*id = net.JoinHostPort(name, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	logger.Info("server credential loaded", "from", source, "id_negoc", *id, "data", dataURL)

	oplogger, err := oplog.Open(*logPath, oplog.Options{})
	if err != nil {
		return err
	}
	defer func() {
		if err := oplogger.Close(); err != nil {
			logger.Error("closing the operation log", "err", err)
		}
	}()
	srv, err := business.New(business.Config{
		DataURL:      dataURL,
		ServerToken:  secret,
		ID:           *id,
		LockWait:     *lockWait,
		LockMode:     mode,
		Coalesce:     *coalesce,
		LockOrder:    order,
		LockTTL:      *lockTTL,
		DataTimeout:  *dataTimeout,
		AuthCacheTTL: *authCache,
		Log:          oplogger,
		Logger:       logger,
		TestHook:     hook,

		TracerProvider: tp,
	})
	if err != nil {
		return err
	}
	if *debugAddr != "" {
		if err := metrics.ServeDebug(ctx, *debugAddr, srv.Metrics(), logger); err != nil {
			return fmt.Errorf("--debug-addr: %w", err)
		}
	}
	return serve(ctx, srv, ln, *grace, logger)
}

// urlList is a repeatable flag of URLs; a value may also list several,
// comma-separated.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	urls := dataclient.SplitURLs(v)
	if len(urls) == 0 {
		return errors.New("empty URL")
	}
	*l = append(*l, urls...)
	return nil
}
