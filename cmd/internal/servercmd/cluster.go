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

// clusterOptions are a data server's cluster flags, as given.
type clusterOptions struct {
	addr, advertise        string
	managePort             int
	peers, provider, dsn   string
	pinTimeout             time.Duration
	etcdEndpoints          string
	etcdPrefix             string
	etcdTTL, etcdKeepAlive time.Duration
	set                    map[string]bool // the flags given on the command line
}

// clusterFlags is a data server's membership, from its flags.
type clusterFlags struct {
	// detect is the data server's --deadlock-detection, for the grains
	// this member hosts.
	detect     bool
	addr       string
	advertise  string
	host       string
	port       int
	provider   string
	managePort int      // automanaged
	peers      []string // automanaged
	etcd       cluster.EtcdConfig
	dsn        string
	pinTimeout time.Duration
	store      cluster.Store // set once opened
}

func parseClusterFlags(o clusterOptions) (*clusterFlags, error) {
	host, portStr, err := net.SplitHostPort(o.addr)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("--cluster-addr %q: want host:port with a port in 1..65535", o.addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return nil, fmt.Errorf("--cluster-addr %q: the other members dial this address, so it must name this host, not a wildcard", o.addr)
	}
	f := &clusterFlags{addr: o.addr, host: host, port: port, provider: o.provider, pinTimeout: o.pinTimeout}
	if o.advertise != "" {
		h, p, err := net.SplitHostPort(o.advertise)
		n, perr := strconv.Atoi(p)
		if err != nil || perr != nil || n < 1 || n > 65535 || h == "" || (net.ParseIP(h) != nil && net.ParseIP(h).IsUnspecified()) {
			return nil, fmt.Errorf("--cluster-advertise %q: want the host:port the other members dial, not a wildcard", o.advertise)
		}
		f.advertise = o.advertise
	}
	switch o.provider {
	case "automanaged":
		for _, name := range []string{"etcd-endpoints", "etcd-prefix", "etcd-ttl", "etcd-keepalive"} {
			if o.set[name] {
				return nil, fmt.Errorf("--%s is for --cluster-provider etcd", name)
			}
		}
		if err := f.automanaged(o); err != nil {
			return nil, err
		}
	case "etcd":
		for _, name := range []string{"cluster-manage-port", "cluster-peers"} {
			if o.set[name] {
				return nil, fmt.Errorf("--%s is for --cluster-provider automanaged: etcd members find each other in etcd", name)
			}
		}
		for e := range strings.SplitSeq(o.etcdEndpoints, ",") {
			if e = strings.TrimSpace(e); e != "" {
				f.etcd.Endpoints = append(f.etcd.Endpoints, e)
			}
		}
		if len(f.etcd.Endpoints) == 0 {
			return nil, errors.New("--etcd-endpoints: want at least one etcd client URL")
		}
		if strings.Trim(o.etcdPrefix, "/") == "" {
			return nil, fmt.Errorf("--etcd-prefix %q: want a non-empty key prefix such as /gobank", o.etcdPrefix)
		}
		f.etcd.Prefix, f.etcd.TTL, f.etcd.KeepAlive = o.etcdPrefix, o.etcdTTL, o.etcdKeepAlive
		if f.etcd.TTL < time.Second {
			return nil, fmt.Errorf("--etcd-ttl %v: want at least 1s (etcd grants whole seconds)", o.etcdTTL)
		}
		if f.etcd.KeepAlive < 0 || f.etcd.KeepAlive >= f.etcd.TTL/2 {
			return nil, fmt.Errorf("--etcd-keepalive %v: want 0 (--etcd-ttl/3) or a positive duration under half of --etcd-ttl", o.etcdKeepAlive)
		}
	default:
		return nil, fmt.Errorf("--cluster-provider %q: want automanaged or etcd", o.provider)
	}
	if o.pinTimeout <= 0 {
		return nil, errors.New("--cluster-pin-timeout must be positive")
	}
	if f.dsn = o.dsn; f.dsn == "" {
		f.dsn = os.Getenv(envPostgresDSN)
	}
	if f.dsn == "" {
		return nil, fmt.Errorf("cluster mode needs the shared store: --postgres DSN or $%s", envPostgresDSN)
	}
	return f, nil
}

// automanaged reads the automanaged provider's flags.
func (f *clusterFlags) automanaged(o clusterOptions) error {
	f.managePort = o.managePort
	if f.managePort == 0 {
		f.managePort = f.port + 1000
	}
	if f.managePort < 1 || f.managePort > 65535 || f.managePort == f.port {
		return fmt.Errorf("--cluster-manage-port %d: want a port in 1..65535 other than the cluster port", o.managePort)
	}
	if o.peers == "" {
		f.peers = []string{net.JoinHostPort(f.host, strconv.Itoa(f.managePort))}
	}
	for p := range strings.SplitSeq(o.peers, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(p); err != nil {
			return fmt.Errorf("--cluster-peers: %q is not host:port", p)
		}
		f.peers = append(f.peers, p)
	}
	return nil
}

// member is a running member and its connection to etcd, if any.
type member struct {
	*cluster.Bank
	etcd *cluster.Etcd
}

// Close leaves the cluster, then closes the connection to etcd.
func (m *member) Close() {
	m.Bank.Close()
	if m.etcd != nil {
		_ = m.etcd.Close()
	}
}

// join starts the member; logger gets protoactor's and the cluster's logs,
// membershipLogger the etcd registration's.
func (f *clusterFlags) join(accounts int, balance int64, timeout time.Duration, obs actors.Observer, logger, membershipLogger *slog.Logger) (*member, error) {
	cfg := cluster.Config{
		Accounts:       accounts,
		InitialBalance: balance,
		Store:          f.store,
		Host:           f.host,
		Port:           f.port,
		Advertise:      f.advertise,
		Timeout:        timeout,
		PinTimeout:     f.pinTimeout,
		Logger:         logger,
		Observer:       obs,

		DeadlockDetection: f.detect,
	}
	if f.provider == "automanaged" {
		cfg.Provider = cluster.Automanaged(f.managePort, f.peers, membershipRefresh)
		b, err := cluster.Join(cfg)
		if err != nil {
			return nil, err
		}
		return &member{Bank: b}, nil
	}
	ec := f.etcd
	ec.Logger = membershipLogger
	e, err := cluster.NewEtcd(ec)
	if err != nil {
		return nil, err
	}
	cfg.Membership = e
	b, err := cluster.Join(cfg)
	if err != nil {
		_ = e.Close()
		return nil, err
	}
	return &member{Bank: b, etcd: e}, nil
}

// logJoined says how this member found the others.
func (f *clusterFlags) logJoined(logger *slog.Logger) {
	if f.provider == "etcd" {
		logger.Info("joined the cluster", "addr", f.addr, "advertise", f.advertise, "provider", "etcd",
			"etcd", cluster.EndpointsForLog(f.etcd.Endpoints), "prefix", f.etcd.Prefix, "ttl", f.etcd.TTL)
		return
	}
	logger.Info("joined the cluster", "addr", f.addr, "advertise", f.advertise, "manage_port", f.managePort, "peers", f.peers)
}

// Compile-time check: a PostgreSQL store is what members share.
var _ cluster.Store = (*store.Postgres)(nil)
