package servercmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/http/auth"
	"github.com/bank/gobank/http/dataserver"
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/oplog"
)

const dataDescription = `
Serves the bank's accounts, each one an actor, over HTTP with the original
bank's routes: /status, /autentica, /getSaldo, /setSaldo, /getLock, /setLock
(alias /unLock). Every route but /status needs the header "token".

Client tokens (the ten demo tokens by default, or --tokens FILE) may call
/autentica only. The data routes need the server credential, which business
servers present: it is read from $BANK_SERVER_TOKEN when set, otherwise from
--server-token-file, which is created with a random secret and mode 0600 when
missing, so that business servers on the same host find it with zero flags.

Locks: getLock fails fast unless it names wait=DURATION, which queues it
(FIFO) until granted or the wait runs out. Every grant has a lease (ttl=, or
--lock-ttl) and a fence that grows per account; setSaldo, unLock and a
renewing getLock that name fence=N are refused with error_code -5
(STALE_FENCE) once that grant has ended.

Accounts are kept in a pebble database in --data-dir: a write is
acknowledged only once it is durable, and a restart reloads every account.
/commit sets several accounts atomically under the caller's lock grants,
with the outcome of an idempotent request in the same batch.

Each operation is appended to --log as
"MM/DD/YYYY HH:MM:SS, N, ID_NEGOC, OPERACAO, PARAMS...".
/metrics (no token) answers the server's metrics in Prometheus' text
format; --debug-addr serves Go's profiler (opt-in).

Cluster mode (--cluster-addr): the data server is one member of a
Proto.Actor cluster whose members share the accounts. Each account is a
virtual actor placed on one member, and any member answers for any account
by forwarding to it. Accounts are kept in a PostgreSQL database every member
reaches (--postgres, or $BANK_POSTGRES_DSN), not in --data-dir. Members find
each other with the automanaged provider: each answers health checks on
--cluster-manage-port and polls --cluster-peers (every member's manage
address, itself included). Every member needs the same --accounts. See
docs/scale-out.md.

Tracing (OpenTelemetry, off by default) is configured by the standard
environment variables: OTEL_TRACES_EXPORTER=otlp (OTEL_EXPORTER_OTLP_*),
console (one JSON span per line on stdout) or none; OTEL_SERVICE_NAME
(default gobank-dataserver), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER.
A request's W3C traceparent makes its spans children of the caller's. Spans
never carry a token, a credential or an Idempotency-Key.

SIGINT or SIGTERM stops accepting, finishes requests in flight and flushes
the log.`

// expireRecords deletes idempotency records older than window, every
// window/10 (at most every minute), until ctx ends.
func expireRecords(ctx context.Context, st interface {
	ExpireRecords(time.Time) (int, error)
}, window time.Duration, logger *slog.Logger) {
	every := min(window/10, time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := st.ExpireRecords(time.Now().Add(-window)); err != nil {
				logger.Error("expiring idempotency records", "err", err)
			} else if n > 0 {
				logger.Debug("expired idempotency records", "count", n)
			}
		}
	}
}

// Data runs the data server with the command-line arguments args until ctx
// is cancelled.
func Data(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("dataserver", "dataserver [flags]", dataDescription, stderr)
	port := fs.Int("port", 5000, "TCP port to listen on")
	host := fs.String("host", "", "address to listen on (empty: every interface)")
	accounts := fs.Int("accounts", 10, "number of accounts, numbered from 1")
	balance := fs.Int64("balance", 1000, "initial balance of every account")
	tokensFile := fs.String("tokens", "", "file of client tokens, one per line, # comments (default: the original's ten demo tokens)")
	secretFile := fs.String("server-token-file", auth.DefaultSecretPath(), "server credential file, used when $"+auth.EnvServerToken+" is unset; created when missing")
	allowClients := fs.Bool("allow-client-tokens", false, "let client tokens call the data routes too, as the original did (for business servers of the original implementation; lets any client set any balance)")
	logPath := fs.String("log", "data_server.log", `operation log file ("-" for stdout)`)
	callTimeout := fs.Duration("timeout", time.Second, "how long a request waits for its account's actor")
	dispatcher := fs.String("dispatcher", "synchronized", "how actors run: synchronized (on the caller's goroutine; measured ~5x cheaper per call) or goroutine (a goroutine per mailbox run)")
	lockTTL := fs.Duration("lock-ttl", dataserver.DefaultLockTTL, "lease of a lock whose getLock names no ttl: a business server that dies holding a lock blocks the account this long at most (negative: no lease, as the original)")
	maxTTL := fs.Duration("max-lock-ttl", dataserver.DefaultMaxLockTTL, "longest ttl a getLock may ask for")
	maxWait := fs.Duration("max-lock-wait", dataserver.DefaultMaxLockWait, "longest wait a getLock may ask for")
	dataDir := fs.String("data-dir", "bank-data", "directory of the durable store (created if missing); a restart reloads every account from it")
	inMemory := fs.Bool("in-memory", false, "keep balances in memory only, as the original did (lost when the process stops)")
	window := fs.Duration("idempotency-window", 24*time.Hour, "how long the outcome of a request with an Idempotency-Key is kept")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "how long shutdown waits for requests in flight")
	debugAddr := fs.String("debug-addr", "", "serve Go's profiler (/debug/pprof/) and /metrics on this address, e.g. 127.0.0.1:6060 (empty: off)")
	clusterAddr := fs.String("cluster-addr", "", "join a cluster as a member with this host:port as its cluster (gRPC) address, dialled by the other members (empty: a single data server)")
	managePort := fs.Int("cluster-manage-port", 0, "port of this member's automanaged health endpoint (0: the --cluster-addr port + 1000); protoactor binds it on every interface")
	peers := fs.String("cluster-peers", "", "comma-separated host:port of every member's manage endpoint, this one included (default: this member alone)")
	provider := fs.String("cluster-provider", "automanaged", "how members find each other; this build ships automanaged (no external service); see docs/scale-out.md for Consul, etcd and Kubernetes")
	postgresDSN := fs.String("postgres", "", "PostgreSQL connection string of the store the members share (cluster mode; default $"+envPostgresDSN+"); never logged")
	pinTimeout := fs.Duration("cluster-pin-timeout", 10*time.Second, "how long an account waits for the member that pinned a multi-account write before reloading it from the store")
	positional, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return ErrUsage
	}
	if len(positional) > 0 {
		return usageError(fs, "dataserver takes no arguments, got %q", positional)
	}
	if *port < 0 || *port > 65535 {
		return usageError(fs, "--port %d: not a TCP port", *port)
	}
	if *accounts < 1 {
		return usageError(fs, "--accounts %d: need at least one account", *accounts)
	}
	if *balance < 0 {
		return usageError(fs, "--balance %d: a balance cannot be negative", *balance)
	}
	if *window <= 0 {
		return usageError(fs, "--idempotency-window must be positive")
	}
	if *dispatcher != "synchronized" && *dispatcher != "goroutine" {
		return usageError(fs, "--dispatcher %q: want synchronized or goroutine", *dispatcher)
	}
	if *callTimeout <= 0 || *grace <= 0 || *maxTTL <= 0 || *maxWait <= 0 {
		return usageError(fs, "--timeout, --shutdown-timeout, --max-lock-ttl and --max-lock-wait must be positive")
	}
	var member *clusterFlags
	if *clusterAddr != "" {
		if member, err = parseClusterFlags(*clusterAddr, *managePort, *peers, *provider, *postgresDSN, *pinTimeout); err != nil {
			return usageError(fs, "%v", err)
		}
		if *inMemory {
			return usageError(fs, "--in-memory and --cluster-addr: members keep accounts in the shared PostgreSQL store")
		}
	}
	if *lockTTL == 0 || *lockTTL > *maxTTL {
		return usageError(fs, "--lock-ttl %v: want a positive duration up to --max-lock-ttl (%v), or a negative one for no lease", *lockTTL, *maxTTL)
	}
	logger := newLogger(stderr, "data")
	tp, stopTracing, err := startTracing(ctx, "gobank-dataserver", logger)
	if err != nil {
		return err
	}
	defer stopTracing()
	slow, err := slowWrap()
	if err != nil {
		return usageError(fs, "%v", err)
	}

	tokens, err := auth.NewTokens(auth.DefaultClientTokens...)
	if *tokensFile != "" {
		tokens, err = auth.LoadTokens(*tokensFile)
	}
	if err != nil {
		return fmt.Errorf("client tokens: %w", err)
	}
	secret, source, err := auth.ServerSecret(*secretFile)
	if err != nil {
		return fmt.Errorf("server credential: %w", err)
	}
	logger.Info("server credential loaded", "from", source, "client_tokens", tokens.Len(), "client_tokens_on_data_routes", *allowClients)

	oplogger, err := oplog.Open(*logPath, oplog.Options{})
	if err != nil {
		return err
	}
	defer func() {
		if err := oplogger.Close(); err != nil {
			logger.Error("closing the operation log", "err", err)
		}
	}()

	var st interface {
		dataserver.Records
		ExpireRecords(time.Time) (int, error)
		Close() error
	}
	switch {
	case member != nil:
		p, err := store.OpenPostgres(member.dsn, logger)
		if err != nil {
			return err
		}
		st = p
		member.store = p
		logger.Info("accounts stored in PostgreSQL, shared by the cluster's members")
	case *inMemory:
		st = store.NewMemory()
		logger.Warn("in-memory mode: balances are lost when the process stops")
	default:
		p, err := store.OpenPebble(*dataDir, logger)
		if err != nil {
			return err
		}
		st = p
		logger.Info("accounts stored durably", "dir", *dataDir)
	}
	// Registered before the bank's: closes after it, once no actor writes.
	defer func() {
		if err := st.Close(); err != nil {
			logger.Error("closing the store", "err", err)
		}
	}()

	reg := metrics.NewRegistry()
	// protoactor reports every actor system start at Info: keep its
	// warnings and errors only.
	actorLogger := slog.New(newThrottled(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), 10*time.Second)).
		With("server", "data", "component", "protoactor")
	var bank interface {
		dataserver.Accounts
		Close()
	}
	if member != nil {
		m, err := member.join(*accounts, *balance, *callTimeout, dataserver.NewObserver(reg), actorLogger)
		if err != nil {
			return err
		}
		bank = m
		reg.GaugeFunc("gobank_cluster_members", "Members of the cluster this member sees, itself included.", "",
			func() float64 { return float64(len(m.Members())) })
		logger.Info("joined the cluster", "addr", member.addr, "manage_port", member.managePort, "peers", member.peers)
	} else {
		b, err := actors.New(actors.Config{
			Observer:       dataserver.NewObserver(reg),
			Store:          st.(actors.Store),
			Accounts:       *accounts,
			InitialBalance: *balance,
			Timeout:        *callTimeout,
			Synchronous:    *dispatcher == "synchronized",
			Logger:         actorLogger,
			TracerProvider: tp,
		})
		if err != nil {
			return err
		}
		bank = b
	}
	defer bank.Close()
	go expireRecords(ctx, st, *window, logger)

	srv, err := dataserver.New(dataserver.Config{
		Accounts:          bank,
		ClientTokens:      tokens,
		ServerToken:       secret,
		AllowClientTokens: *allowClients,
		Log:               oplogger,
		Logger:            logger,
		LockTTL:           *lockTTL,
		MaxLockTTL:        *maxTTL,
		MaxLockWait:       *maxWait,
		Records:           st,
		Wrap:              slow,
		Metrics:           reg,
		TracerProvider:    tp,
	})
	if err != nil {
		return err
	}
	if *debugAddr != "" {
		if err := metrics.ServeDebug(ctx, *debugAddr, reg, logger); err != nil {
			return fmt.Errorf("--debug-addr: %w", err)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serve(ctx, srv, ln, *grace, logger)
}
