package servercmd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/cluster"
	"github.com/bank/gobank/actors/store"
)

// envPostgresDSN names the variable that gives members the shared store's
// connection string, so that its password need not be on a command line.
const envPostgresDSN = "BANK_POSTGRES_DSN"

// membershipRefresh is how often an automanaged member polls its peers:
// it bounds how long a dead member's accounts stay unreachable.
const membershipRefresh = 500 * time.Millisecond

// clusterFlags is a data server's membership, from its flags.
type clusterFlags struct {
	addr       string
	host       string
	port       int
	managePort int
	peers      []string
	dsn        string
	pinTimeout time.Duration
	store      cluster.Store // set once opened
}

func parseClusterFlags(addr string, managePort int, peers, provider, dsn string, pinTimeout time.Duration) (*clusterFlags, error) {
	if provider != "automanaged" {
		return nil, fmt.Errorf("--cluster-provider %q: this build ships automanaged only (docs/scale-out.md says how to add Consul, etcd or Kubernetes)", provider)
	}
	host, portStr, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("--cluster-addr %q: want host:port with a port in 1..65535", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return nil, fmt.Errorf("--cluster-addr %q: the other members dial this address, so it must name this host, not a wildcard", addr)
	}
	if managePort == 0 {
		managePort = port + 1000
	}
	if managePort < 1 || managePort > 65535 || managePort == port {
		return nil, fmt.Errorf("--cluster-manage-port %d: want a port in 1..65535 other than the cluster port", managePort)
	}
	f := &clusterFlags{addr: addr, host: host, port: port, managePort: managePort, pinTimeout: pinTimeout}
	if peers == "" {
		f.peers = []string{net.JoinHostPort(host, strconv.Itoa(managePort))}
	}
	for p := range strings.SplitSeq(peers, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(p); err != nil {
			return nil, fmt.Errorf("--cluster-peers: %q is not host:port", p)
		}
		f.peers = append(f.peers, p)
	}
	if pinTimeout <= 0 {
		return nil, errors.New("--cluster-pin-timeout must be positive")
	}
	if f.dsn = dsn; f.dsn == "" {
		f.dsn = os.Getenv(envPostgresDSN)
	}
	if f.dsn == "" {
		return nil, fmt.Errorf("cluster mode needs the shared store: --postgres DSN or $%s", envPostgresDSN)
	}
	return f, nil
}

// join starts the member.
func (f *clusterFlags) join(accounts int, balance int64, timeout time.Duration, obs actors.Observer, logger *slog.Logger) (*cluster.Bank, error) {
	return cluster.Join(cluster.Config{
		Accounts:       accounts,
		InitialBalance: balance,
		Store:          f.store,
		Host:           f.host,
		Port:           f.port,
		Provider:       cluster.Automanaged(f.managePort, f.peers, membershipRefresh),
		Timeout:        timeout,
		PinTimeout:     f.pinTimeout,
		Logger:         logger,
		Observer:       obs,
	})
}

// Compile-time check: a PostgreSQL store is what members share.
var _ cluster.Store = (*store.Postgres)(nil)
