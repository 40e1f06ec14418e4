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
	"github.com/bank/gobank/http/liveview"
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

--allow-client-tokens is the compatibility mode, for business servers of the
original implementation, which present their client's token on the data
routes and ignore a refused setSaldo. It keeps the original data server's
semantics on its routes, and gives up:
  - any client token may call every data route, so any client can lock any
    account and set any balance (mint or destroy money) without a business
    server;
  - setSaldo stores any integer within 64 bits, negative ones included:
    balances may go below zero (an original business server overdraws; it
    conserves money only because such writes are accepted), and a restart
    without this flag refuses a store that holds one. A value outside 64
    bits is still refused, and an original business server that ignores
    that refusal then breaks the sum of balances;
  - an original business server's concurrent requests share one id_negoc,
    so its re-entrant locks do not keep them apart (lost updates, as on the
    original);
  - a lock still has a lease (--lock-ttl), which the original's had not: an
    original business server stalled past it loses the lock, and its
    ignored refusals may then break the sum of balances (raise --lock-ttl,
    or make it negative for no lease, as the original).
Our business servers keep their own checks against it (no overdraft, one
atomic /commit per operation). Not available in cluster mode.

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

--ui-addr (opt-in; bank up turns it on, on loopback) serves the live view,
a web page of the accounts, hottest first, with their balance, lock holder,
fence, queue and lease, and of the last minutes of the metrics (requests by
route, refusals by cause, lock waits, latency, live actors; in a cluster,
which member hosts which account). It needs no token and shows balances and
lock holders (never tokens): keep it on loopback.

Cluster mode (--cluster-addr): the data server is one member of a
Proto.Actor cluster whose members share the accounts. Each account is a
virtual actor placed on one member, and any member answers for any account
by forwarding to it. Accounts are kept in a PostgreSQL database every member
reaches (--postgres, or $BANK_POSTGRES_DSN), not in --data-dir. Members find
each other with --cluster-provider:
  automanaged (default, no external service): each answers health checks on
    --cluster-manage-port and polls --cluster-peers (every member's manage
    address, itself included) every 500ms;
  etcd: each registers under a lease of --etcd-ttl in the etcd of
    --etcd-endpoints and watches the others' registrations. A member that
    cannot renew its lease leaves the cluster (its requests are refused,
    not applied) and joins again as a new member once etcd answers.
Every member needs the same --accounts. See docs/scale-out.md.

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
	allowClients := fs.Bool("allow-client-tokens", false, "compatibility mode for business servers of the original implementation: client tokens may call the data routes and setSaldo may store negative balances, as in the original (any client can then set any balance; see above)")
	logPath := fs.String("log", "data_server.log", `operation log file ("-" for stdout)`)
	callTimeout := fs.Duration("timeout", time.Second, "how long a request waits for its account's actor")
	dispatcher := fs.String("dispatcher", "synchronized", "how actors run: synchronized (on the caller's goroutine; measured ~5x cheaper per call) or goroutine (a goroutine per mailbox run)")
	lockTTL := fs.Duration("lock-ttl", dataserver.DefaultLockTTL, "lease of a lock whose getLock names no ttl: a business server that dies holding a lock blocks the account this long at most (negative: no lease, as the original)")
	maxTTL := fs.Duration("max-lock-ttl", dataserver.DefaultMaxLockTTL, "longest ttl a getLock may ask for")
	maxWait := fs.Duration("max-lock-wait", dataserver.DefaultMaxLockWait, "longest wait a getLock may ask for")
	dataDir := fs.String("data-dir", "bank-data", "directory of the durable store (created if missing); a restart reloads every account from it")
	detect := fs.Bool("deadlock-detection", true, "break a cycle of lock waits at once, refusing its youngest transaction (DEADLOCK), for business servers in --lock-mode detect; off, their waits run out at their --lock-wait (single server only: a cluster's members do not see each other's waits)")
	early := fs.Bool("early-lock-release", true, "pass an account's lock to its next holder as soon as a commit's writes are ordered in the write-ahead log, before their fsync (flush pipelining): the commit is still acknowledged, and every answer showing its balance given, only once it is on disk; a hot account then waits for no fsync between holders (durable single server only; false: release after the fsync)")
	inMemory := fs.Bool("in-memory", false, "keep balances in memory only, as the original did (lost when the process stops)")
	window := fs.Duration("idempotency-window", 24*time.Hour, "how long the outcome of a request with an Idempotency-Key is kept")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "how long shutdown waits for requests in flight")
	debugAddr := fs.String("debug-addr", "", "serve Go's profiler (/debug/pprof/) and /metrics on this address, e.g. 127.0.0.1:6060 (empty: off)")
	uiAddr := fs.String("ui-addr", "", "serve the live view (a web page of the accounts and the metrics' last minutes) on this address, e.g. 127.0.0.1:5100 (empty: off); it shows balances and lock holders to whoever reaches it: keep it on loopback")
	clusterAddr := fs.String("cluster-addr", "", "join a cluster as a member with this host:port as its cluster (gRPC) address, dialled by the other members (empty: a single data server)")
	managePort := fs.Int("cluster-manage-port", 0, "port of this member's automanaged health endpoint (0: the --cluster-addr port + 1000); protoactor binds it on every interface")
	peers := fs.String("cluster-peers", "", "comma-separated host:port of every member's manage endpoint, this one included (default: this member alone)")
	provider := fs.String("cluster-provider", "automanaged", "how members find each other: automanaged (no external service: health checks of --cluster-peers) or etcd (registrations under a lease in the etcd of --etcd-endpoints)")
	advertise := fs.String("cluster-advertise", "", "host:port the other members dial to reach this one, when it differs from --cluster-addr (a proxy or NAT in between; empty: --cluster-addr)")
	etcdEndpoints := fs.String("etcd-endpoints", "http://127.0.0.1:2379", "comma-separated client URLs of the etcd cluster (--cluster-provider etcd)")
	etcdPrefix := fs.String("etcd-prefix", "/gobank", "etcd key prefix of the members' registrations, PREFIX/gobank/MEMBER-ID; clusters sharing an etcd need different ones")
	etcdTTL := fs.Duration("etcd-ttl", 5*time.Second, "lease of a member's etcd registration: a member not renewed for this long is dropped and its accounts move to the others (etcd raises it to its minimum, 2s by default)")
	etcdKeepAlive := fs.Duration("etcd-keepalive", 0, "how often a member renews its etcd lease; also bounds each etcd request (0: --etcd-ttl/3)")
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
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if member, err = parseClusterFlags(clusterOptions{
			addr: *clusterAddr, advertise: *advertise, managePort: *managePort, peers: *peers, provider: *provider,
			dsn: *postgresDSN, pinTimeout: *pinTimeout, etcdEndpoints: *etcdEndpoints, etcdPrefix: *etcdPrefix,
			etcdTTL: *etcdTTL, etcdKeepAlive: *etcdKeepAlive, set: set,
		}); err != nil {
			return usageError(fs, "%v", err)
		}
		if *inMemory {
			return usageError(fs, "--in-memory and --cluster-addr: members keep accounts in the shared PostgreSQL store")
		}
		if *allowClients {
			return usageError(fs, "--allow-client-tokens and --cluster-addr: the shared store keeps balances non-negative, "+
				"and the original's business servers ignore a refused setSaldo, which would create money; run the compatibility mode on a single data server")
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

	reg := metrics.NewRegistry()
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
		p, err := store.OpenPebble(*dataDir, logger, store.CountBackgroundErrors(dataserver.NewStoreErrors(reg)))
		if err != nil {
			return err
		}
		dataserver.RegisterDiskFull(reg, p.DiskFull)
		st = p
		logger.Info("accounts stored durably", "dir", *dataDir)
	}
	// Registered before the bank's: closes after it, once no actor writes.
	defer func() {
		if err := st.Close(); err != nil {
			logger.Error("closing the store", "err", err)
		}
	}()

	// protoactor reports every actor system start at Info: keep its
	// warnings and errors only.
	actorLogger := slog.New(newThrottled(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), 10*time.Second)).
		With("server", "data", "component", "protoactor")
	var bank interface {
		dataserver.Accounts
		liveview.Accounts
		Close()
	}
	var placement liveview.Placement // in cluster mode
	if member != nil {
		member.detect = *detect
		m, err := member.join(*accounts, *balance, *callTimeout, dataserver.NewObserver(reg), actorLogger, logger.With("component", "membership"))
		if err != nil {
			return err
		}
		bank, placement = m, m
		reg.GaugeFunc("gobank_cluster_members", "Members of the cluster this member sees, itself included.", "",
			func() float64 { return float64(len(m.Members())) })
		member.logJoined(logger)
	} else {
		b, err := actors.New(actors.Config{
			Observer:       dataserver.NewObserver(reg),
			Store:          st.(actors.Store),
			Accounts:       *accounts,
			InitialBalance: *balance,
			Timeout:        *callTimeout,
			Synchronous:    *dispatcher == "synchronized",
			Logger:         actorLogger,
			Overdraft:      *allowClients, // the original's setSaldo, for its business servers
			TracerProvider: tp,

			DeadlockDetection: *detect,
			EarlyLockRelease:  *early,
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
	if *uiAddr != "" {
		title := "data server " + ln.Addr().String()
		if member != nil {
			title = "cluster member " + member.addr + ", data server " + ln.Addr().String()
		}
		addr, err := liveview.Serve(ctx, *uiAddr, liveview.Config{
			Accounts:  bank,
			Metrics:   reg.Prometheus(),
			Placement: placement,
			Title:     title,
			Logger:    logger,
		})
		if err != nil {
			ln.Close()
			return fmt.Errorf("--ui-addr: %w", err)
		}
		if !liveview.IsLoopback(addr) {
			logger.Warn("the live view shows balances and lock holders to anyone who reaches its address", "addr", addr)
		}
		logger.Info("live view on http://" + addr + "/")
	}
	return serve(ctx, srv, ln, *grace, logger)
}
