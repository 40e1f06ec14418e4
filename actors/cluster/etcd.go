package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdConfig configures membership through etcd (see NewEtcd).
type EtcdConfig struct {
	// Endpoints are the etcd servers' client URLs or host:port.
	Endpoints []string
	// Prefix is the key prefix under which members register, as
	// PREFIX/CLUSTER-NAME/MEMBER-ID, so that several clusters can share
	// one etcd. Empty: "/gobank".
	Prefix string
	// TTL is the lease of a member's registration: a member that cannot
	// renew it for that long is dropped by the others (and leaves on its
	// own a little earlier). etcd raises a TTL under its minimum (2 s with
	// its default election timeout). Zero: 5 s.
	TTL time.Duration
	// KeepAlive is how often a member renews its lease, and bounds each
	// renewal and each request to etcd. Zero: TTL/3. Must be under TTL/2.
	KeepAlive time.Duration
	// Logger receives membership changes; nil discards.
	Logger *slog.Logger
}

// Etcd is membership through an etcd server: each incarnation of a member
// registers under a lease of its own and watches the others'
// registrations; a member that is not renewed in time disappears from
// everyone's member list, and one that loses its lease leaves on its own
// (see Membership).
//
// It plays the part of protoactor's etcd provider
// (cluster/clusterproviders/etcd), whose key layout and node encoding it
// keeps, but not its code: that provider fixes its TTL at 3 s, removes
// itself from its own member list when it sees its lease expire and then
// ignores its own registration, blocks without a deadline on every etcd
// call, and never notices that it has lost its lease — while the others
// have blocked its member id for good, so it could not come back anyway.
type Etcd struct {
	cfg    EtcdConfig
	client *clientv3.Client
}

// NewEtcd connects to etcd. The connection is established lazily and kept
// across outages; Close releases it.
func NewEtcd(cfg EtcdConfig) (*Etcd, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("cluster: etcd needs at least one endpoint")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/gobank"
	}
	cfg.Prefix = "/" + strings.Trim(cfg.Prefix, "/")
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = cfg.TTL / 3
	}
	if cfg.TTL < time.Second || cfg.KeepAlive <= 0 || cfg.KeepAlive >= cfg.TTL/2 {
		return nil, fmt.Errorf("cluster: etcd TTL %v and keepalive %v: want a TTL of at least 1s and a keepalive under half of it", cfg.TTL, cfg.KeepAlive)
	}
	cfg.Logger = logger(cfg.Logger)
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.KeepAlive,
		// etcd's client logs every retry through zap on stderr: the
		// membership's own log says what matters.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: etcd client: %w", err)
	}
	return &Etcd{cfg: cfg, client: client}, nil
}

// Close closes the connection to etcd.
func (e *Etcd) Close() error { return e.client.Close() }

// Session implements Membership: it returns once etcd answers.
func (e *Etcd) Session(ctx context.Context) (Session, error) {
	rctx, cancel := context.WithTimeout(ctx, e.cfg.KeepAlive)
	defer cancel()
	if _, err := e.client.Get(rctx, e.cfg.Prefix, clientv3.WithCountOnly()); err != nil {
		return nil, fmt.Errorf("cluster: etcd %s: %w", strings.Join(EndpointsForLog(e.cfg.Endpoints), ","), err)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &etcdSession{e: e, ctx: ctx, stop: stop, lost: make(chan struct{})}, nil
}

// EndpointsForLog returns endpoints fit for a log: any user information
// in a URL (a password) replaced.
func EndpointsForLog(endpoints []string) []string {
	out := make([]string, len(endpoints))
	for i, e := range endpoints {
		out[i] = e
		if !strings.Contains(e, "@") {
			continue
		}
		out[i] = "REDACTED"
		if u, err := url.Parse(e); err == nil && u.User != nil && u.Host != "" {
			u.User = url.User("REDACTED")
			out[i] = u.String()
		}
	}
	return out
}

// etcdNode is a member's registration, encoded as protoactor's etcd
// provider encodes its nodes.
type etcdNode struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Host    string   `json:"host"`
	Address string   `json:"address"`
	Port    int      `json:"port"`
	Kinds   []string `json:"kinds"`
	Alive   bool     `json:"alive"`
}

// etcdSession is one incarnation's registration: a protoactor cluster
// provider whose Lost channel closes when the lease is gone.
type etcdSession struct {
	e       *Etcd
	c       *protocluster.Cluster
	ctx     context.Context // ends with the session
	stop    context.CancelFunc
	lease   clientv3.LeaseID
	key     string
	self    *protocluster.Member
	members map[string]*protocluster.Member // by key, self included
	wg      sync.WaitGroup

	lostOnce sync.Once
	lost     chan struct{}
}

// Lost implements Session.
func (s *etcdSession) Lost() <-chan struct{} { return s.lost }

// lose ends the session once, saying why.
func (s *etcdSession) lose(why string, args ...any) {
	s.lostOnce.Do(func() {
		s.e.cfg.Logger.Warn("cluster: this member lost its etcd membership: "+why,
			append([]any{"member", s.self.Id, "address", s.self.Address()}, args...)...)
		close(s.lost)
		s.stop()
	})
}

// registerTimeout is the least time a registration is given.
const registerTimeout = 5 * time.Second

// StartMember implements protocluster.ClusterProvider: it registers this
// member under a new lease, publishes the members registered now, and
// keeps the lease and the member list up to date until the session ends.
func (s *etcdSession) StartMember(c *protocluster.Cluster) error {
	s.c = c
	host, portStr, err := net.SplitHostPort(c.ActorSystem.Address())
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil {
		return fmt.Errorf("cluster: member address %q: want host:port", c.ActorSystem.Address())
	}
	cfg := s.e.cfg
	dir := cfg.Prefix + "/" + c.Config.Name + "/"
	node := etcdNode{ID: c.Config.Name + "@" + c.ActorSystem.ID, Host: host, Address: host, Port: port,
		Kinds: c.GetClusterKinds(), Alive: true}
	node.Name = node.ID
	s.key = dir + node.ID
	s.self = node.member()
	value, err := json.Marshal(node)
	if err != nil {
		return err
	}
	// Registering takes three requests; a busy etcd gets longer than one
	// renewal for them (the lease counts from before the grant anyway).
	ctx, cancel := context.WithTimeout(s.ctx, max(cfg.KeepAlive, registerTimeout))
	defer cancel()
	granted := time.Now()
	g, err := s.e.client.Grant(ctx, int64((cfg.TTL+time.Second-1)/time.Second))
	if err != nil {
		return fmt.Errorf("cluster: etcd lease: %w", err)
	}
	s.lease = g.ID
	if _, err := s.e.client.Put(ctx, s.key, string(value), clientv3.WithLease(g.ID)); err != nil {
		return fmt.Errorf("cluster: etcd registration: %w", err)
	}
	rev, _, err := s.list(ctx, dir)
	if err != nil {
		return err
	}
	s.publish()
	// etcd may have granted a longer TTL than asked (its minimum).
	ttl := max(cfg.TTL, time.Duration(g.TTL)*time.Second)
	s.wg.Add(2)
	go s.keepAlive(granted, ttl)
	go s.watch(dir, rev)
	cfg.Logger.Info("cluster: registered in etcd", "member", s.self.Id, "address", s.self.Address(), "ttl", ttl)
	return nil
}

// list reads every registration under dir into s.members and returns the
// revision it read at, and whether this member's own is among them.
func (s *etcdSession) list(ctx context.Context, dir string) (rev int64, registered bool, err error) {
	resp, err := s.e.client.Get(ctx, dir, clientv3.WithPrefix())
	if err != nil {
		return 0, false, fmt.Errorf("cluster: etcd member list: %w", err)
	}
	s.members = map[string]*protocluster.Member{s.key: s.self}
	for _, kv := range resp.Kvs {
		if string(kv.Key) == s.key {
			registered = true
		} else if m, ok := s.decode(kv.Value); ok {
			s.members[string(kv.Key)] = m
		}
	}
	return resp.Header.Revision, registered, nil
}

func (s *etcdSession) decode(value []byte) (*protocluster.Member, bool) {
	var n etcdNode
	if err := json.Unmarshal(value, &n); err != nil || n.ID == "" {
		s.e.cfg.Logger.Warn("cluster: ignoring a registration that is not a member's", "err", err)
		return nil, false
	}
	return n.member(), true
}

func (n etcdNode) member() *protocluster.Member {
	host := n.Host
	if host == "" {
		host = n.Address
	}
	kinds := n.Kinds
	if kinds == nil {
		kinds = []string{}
	}
	return &protocluster.Member{Id: n.ID, Host: host, Port: int32(n.Port), Kinds: kinds}
}

// publish hands the member list to protoactor.
func (s *etcdSession) publish() {
	members := make([]*protocluster.Member, 0, len(s.members))
	for _, m := range s.members {
		members = append(members, m)
	}
	s.c.MemberList.UpdateClusterTopology(members)
}

// keepAlive renews the lease every KeepAlive. The lease lasts at least
// ttl from the moment a renewal that succeeded was sent, so a member that
// has not had one confirmed for ttl minus half a keepalive leaves before
// etcd can let anyone else take its accounts.
func (s *etcdSession) keepAlive(granted time.Time, ttl time.Duration) {
	defer s.wg.Done()
	ka := s.e.cfg.KeepAlive
	leave := ttl - ka/2
	deadline := time.NewTimer(leave)
	defer deadline.Stop()
	tick := time.NewTicker(ka)
	defer tick.Stop()
	confirmed := granted
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-deadline.C:
			s.lose("its lease was not renewed in time", "last_renewed", time.Since(confirmed).Round(time.Millisecond), "ttl", ttl)
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, min(ka, time.Until(confirmed.Add(leave))))
		sent := time.Now()
		_, err := s.e.client.KeepAliveOnce(ctx, s.lease)
		cancel()
		switch {
		case err == nil:
			confirmed = sent
			deadline.Reset(time.Until(sent.Add(leave)))
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			s.lose("its lease expired")
			return
		}
		// Any other error: etcd did not answer in time; the next tick
		// tries again, until the deadline.
	}
}

// watch applies the registrations' changes to the member list from
// revision rev on, re-reading the whole list when the watch breaks.
func (s *etcdSession) watch(dir string, rev int64) {
	defer s.wg.Done()
	for s.ctx.Err() == nil {
		// WithRequireLeader: a watch on a member that has lost its quorum
		// fails instead of going silent.
		for resp := range s.e.client.Watch(clientv3.WithRequireLeader(s.ctx), dir, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if resp.Err() != nil {
				break
			}
			changed := false
			for _, ev := range resp.Events {
				key := string(ev.Kv.Key)
				if key == s.key {
					if ev.Type == clientv3.EventTypeDelete {
						s.lose("its registration was deleted (lease expired)")
						return
					}
					continue
				}
				switch ev.Type {
				case clientv3.EventTypePut:
					if m, ok := s.decode(ev.Kv.Value); ok {
						s.members[key], changed = m, true
					}
				case clientv3.EventTypeDelete:
					if _, ok := s.members[key]; ok {
						delete(s.members, key)
						changed = true
					}
				}
			}
			rev = resp.Header.Revision
			if changed {
				s.publish()
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		// The watch broke (compaction, lost leader, connection): read
		// the whole list again, after a pause, and watch from there.
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.e.cfg.KeepAlive):
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.e.cfg.KeepAlive)
		r, registered, err := s.list(ctx, dir)
		cancel()
		if err != nil {
			continue
		}
		if !registered {
			s.lose("its registration is gone (lease expired)")
			return
		}
		rev = r
		s.publish()
	}
}

// StartClient implements protocluster.ClusterProvider; members only.
func (s *etcdSession) StartClient(*protocluster.Cluster) error {
	return errors.New("cluster: the etcd membership starts members only")
}

// Shutdown implements protocluster.ClusterProvider: it ends the session,
// and a graceful one revokes the lease, so that the others drop this
// member at once instead of after its TTL.
func (s *etcdSession) Shutdown(graceful bool) error {
	s.stop()
	s.wg.Wait()
	select {
	case <-s.lost:
		return nil
	default:
	}
	if !graceful || s.lease == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.e.cfg.KeepAlive)
	defer cancel()
	if _, err := s.e.client.Revoke(ctx, s.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("cluster: revoking the etcd lease: %w", err)
	}
	return nil
}
