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
	"strconv"
	"time"

	"github.com/bank/gobank/http/auth"
	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/oplog"
)

const businessDescription = `
Serves the bank's operations over HTTP, keeping no money itself: every
operation locks, reads and writes accounts on the data server at DATA_URL
(e.g. http://localhost:5000). PORT defaults to 5001 (the original defaulted
to 5000, the data server's own port).

Routes, each with the client's token in the header "token":
  /deposito/<conta>/<valor>   /saque/<conta>/<valor>   /saldo/<conta>
  /transferencia/<conta_orig>/<conta_dest>/<valor>     and /status

A transfer locks both accounts in ascending order, checks funds, writes
both and unlocks both. A lock held by another business server is retried
with jittered backoff until --lock-retry runs out (then 403).

The server credential for the data server is read from $BANK_SERVER_TOKEN
when set, otherwise from --server-token-file (the data server on the same
host creates it). The client's token is checked with the data server's
/autentica; accepted tokens are trusted for --auth-cache.`

// Business runs a business server with the command-line arguments args
// (DATA_URL [PORT] and flags) until ctx is cancelled.
func Business(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("businessserver", "businessserver [flags] DATA_URL [PORT]", businessDescription, stderr)
	host := fs.String("host", "", "address to listen on (empty: every interface)")
	id := fs.String("id", "", "this server's id_negoc on the data server (default HOSTNAME:PORT); unique per business server")
	secretFile := fs.String("server-token-file", auth.DefaultSecretPath(), "server credential file, used when $"+auth.EnvServerToken+" is unset")
	logPath := fs.String("log", "business_server.log", `operation log file ("-" for stdout)`)
	lockRetry := fs.Duration("lock-retry", business.DefaultLockRetryDeadline, "how long to retry a lock held by another business server before answering 403 (0: default; negative: no retry)")
	dataTimeout := fs.Duration("data-timeout", business.DefaultDataTimeout, "timeout of each call to the data server")
	authCache := fs.Duration("auth-cache", business.DefaultAuthCacheTTL, "how long a client token accepted by the data server is trusted without asking again (negative: ask every time)")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "how long shutdown waits for requests in flight")
	positional, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return ErrUsage
	}
	if len(positional) < 1 || len(positional) > 2 {
		return usageError(fs, "want DATA_URL [PORT], got %q", positional)
	}
	dataURL := positional[0]
	if u, err := url.Parse(dataURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError(fs, "DATA_URL %q: want a URL such as http://localhost:5000", dataURL)
	}
	port := 5001
	if len(positional) == 2 {
		if port, err = strconv.Atoi(positional[1]); err != nil || port < 0 || port > 65535 {
			return usageError(fs, "PORT %q: not a TCP port", positional[1])
		}
	}
	if *dataTimeout <= 0 || *grace <= 0 {
		return usageError(fs, "--data-timeout and --shutdown-timeout must be positive")
	}
	logger := newLogger(stderr, "business")

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
		DataURL:           dataURL,
		ServerToken:       secret,
		ID:                *id,
		LockRetryDeadline: *lockRetry,
		DataTimeout:       *dataTimeout,
		AuthCacheTTL:      *authCache,
		Log:               oplogger,
		Logger:            logger,
	})
	if err != nil {
		return err
	}
	return serve(ctx, srv, ln, *grace, logger)
}
