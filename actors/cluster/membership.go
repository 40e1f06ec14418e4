package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/remote"
)

// Membership is a membership service whose grant a member can lose.
// protoactor never readmits a member id it has seen leave (its block
// list), so a member that lost its membership cannot simply register
// again: it stops its actor system and starts a new one, with a new id,
// from a new Session.
type Membership interface {
	// Session returns the provider of a new incarnation once the service
	// answers, or an error when it does not before ctx ends.
	Session(ctx context.Context) (Session, error)
}

// Session is one incarnation's membership.
type Session interface {
	protocluster.ClusterProvider
	// Lost is closed once this incarnation is no longer a member.
	Lost() <-chan struct{}
}

// fixed is a provider that never loses its members' membership.
type fixed struct{ protocluster.ClusterProvider }

func (f fixed) Session(context.Context) (Session, error) { return f, nil }

func (fixed) Lost() <-chan struct{} { return nil }

// Automanaged returns Proto.Actor's automanaged provider: this member
// answers health checks on managePort (on every interface: protoactor
// binds 0.0.0.0) and learns the members by polling peers ("host:port" of
// their manage ports, itself included) every refresh. It needs no
// external service, which suits loopback and small fixed clusters;
// production clusters use Consul, etcd or Kubernetes (docs/scale-out.md).
func Automanaged(managePort int, peers []string, refresh time.Duration) protocluster.ClusterProvider {
	return automanaged.NewWithConfig(refresh, managePort, peers...)
}

// start starts a new incarnation of this member on sess.
func (b *Bank) start(sess Session) (inc *incarnation, err error) {
	cfg := &b.cfg
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return cfg.Logger }),
		actor.WithDeadLetterRequestLogging(false),
	)
	kind := protocluster.NewKind(Kind, actor.PropsFromProducer(func() actor.Actor { return &grain{cfg: cfg} },
		actor.WithDispatcher(b.pool)))
	place := newPlacement()
	var ropts []remote.ConfigOption
	if cfg.Advertise != "" {
		ropts = append(ropts, remote.WithAdvertisedHost(cfg.Advertise))
	}
	c := protocluster.New(system, protocluster.Configure(cfg.Name, sess, place,
		remote.Configure(cfg.Host, cfg.Port, ropts...), protocluster.WithKinds(kind), protocluster.WithRequestTimeout(cfg.Timeout)))
	// protoactor panics when a member cannot start (its port is taken,
	// the provider fails).
	defer func() {
		if p := recover(); p != nil {
			stopFailed(c, sess)
			err = fmt.Errorf("cluster: starting member %s:%d: %v", cfg.Host, cfg.Port, p)
		}
	}()
	c.StartMember()
	return &incarnation{c: c, place: place, pids: make([]atomic.Pointer[cachedPID], cfg.Accounts)}, nil
}

// stopFailed stops what a member that failed to start had started.
// protoactor's shutdowns panic on what never started (a remote that never
// listened, an automanaged provider that never served).
func stopFailed(c *protocluster.Cluster, sess Session) {
	func() {
		defer func() { _ = recover() }()
		if c.Remote != nil {
			c.Shutdown(false)
		}
	}()
	func() {
		defer func() { _ = recover() }()
		_ = sess.Shutdown(false)
	}()
}

// stopCluster stops a running incarnation's actor system. protoactor's
// remote can panic while stopping ("send on closed channel" in
// endpointManager.stop: an endpoint reader whose stream just failed closes
// its disconnect channel before removing it from the map the manager
// ranges over), typically when peers stop at the same moment. The member
// is stopping either way: the panic is logged, not passed on to crash the
// process with a stack trace and exit status 2.
func (b *Bank) stopCluster(c *protocluster.Cluster, graceful bool) {
	defer func() {
		if p := recover(); p != nil {
			b.cfg.Logger.Warn("cluster: protoactor panicked while stopping this member; it is stopped", "panic", fmt.Sprint(p))
		}
	}()
	c.Shutdown(graceful)
}

// keepMember watches the current incarnation's membership: when it is
// lost, it stops the incarnation — its activations end, calls fail with
// errNotMember — and starts a new one as soon as the membership service
// answers, until Close.
func (b *Bank) keepMember(inc *incarnation, sess Session) {
	defer b.rejoin.Done()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-sess.Lost():
		}
		b.inc.Store(nil)
		lostAt := time.Now()
		b.cfg.Logger.Warn("cluster: left the cluster; joining again as a new member once the membership service answers",
			"old_member", inc.c.ActorSystem.ID)
		b.stopCluster(inc.c, false)
		_ = sess.Shutdown(false)
		for inc = nil; inc == nil; {
			var err error
			sess, err = b.cfg.Membership.Session(b.ctx)
			if err == nil {
				inc, err = b.start(sess)
			}
			if err == nil {
				break
			}
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(rejoinPause):
			}
		}
		select {
		case <-b.ctx.Done():
			// Close came while starting: it found no incarnation to stop.
			b.stopCluster(inc.c, true)
			return
		default:
		}
		b.inc.Store(inc)
		b.cfg.Logger.Warn("cluster: joined the cluster again", "member", inc.c.ActorSystem.ID,
			"out_for", time.Since(lostAt).Round(time.Millisecond))
	}
}
