// Package cluster serves the bank's accounts as virtual actors ("grains")
// of a Proto.Actor cluster, so that several data-server members share the
// accounts: the cluster places each account on one member and finds it
// from any other, and a member's HTTP endpoint answers for every account
// by forwarding to it.
//
// State follows the account: whichever member activates an account claims
// it from a store every member reaches (PostgreSQL), which gives the
// activation a new version and fence epoch. Every write is conditional on
// the version the activation holds, so a second activation of the same
// account — which Proto.Actor's Go cluster can create while members join
// or leave — is refused by the store instead of overwriting a balance,
// and retires. Fences stay monotonic across activations because each one
// builds them on its own, larger epoch.
//
// A Bank is a member's view of the accounts; it offers what a single data
// server's actors.Bank offers, so the HTTP layer is the same.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store"
)

// Kind is the cluster kind of account grains.
const Kind = "account"

// Store is what members need of the store they share.
type Store interface {
	// Claim makes the caller the account's only writer, creating it with
	// initial when missing.
	Claim(id, initial int64) (store.Claimed, error)
	// CommitVersioned writes balances atomically, each conditional on its
	// version, with rec; store.ErrSuperseded when a version moved on.
	CommitVersioned(writes []store.VersionedWrite, rec *store.Record) error
}

// Config describes one member.
type Config struct {
	// Name is the cluster's name; members of other clusters are ignored.
	// Empty means "gobank".
	Name string
	// Accounts is the number of accounts, numbered 1..Accounts. Every
	// member must be given the same number.
	Accounts int
	// InitialBalance is a new account's balance.
	InitialBalance int64
	// Store is the store every member reaches. Required.
	Store Store
	// Host and Port are this member's cluster (gRPC) address, which the
	// other members dial: not a wildcard address.
	Host string
	Port int
	// Advertise is the host:port the other members dial to reach this
	// one, when it differs from Host:Port (a proxy or NAT in between).
	// Empty: Host:Port.
	Advertise string
	// Provider finds the members (see Automanaged), or Membership does
	// (see Etcd): exactly one of the two.
	Provider protocluster.ClusterProvider
	// Membership is a membership service that can drop this member
	// (etcd, when its lease expires): the member then leaves and joins
	// again as a new incarnation, as soon as the service answers.
	Membership Membership
	// Timeout bounds a call to an account, like actors.Config.Timeout,
	// and includes the hop to the member that hosts it. Zero: 2 s.
	Timeout time.Duration
	// PinTimeout is how long a grain holds a pinned write for the member
	// that pinned it before it concludes that member died and reloads the
	// account from the store. Zero: 10 s.
	PinTimeout time.Duration
	// Logger receives the members' and protoactor's logs; nil discards.
	Logger *slog.Logger
	// Observer receives lock and store measurements; may be nil.
	Observer actors.Observer
	// DeadlockDetection runs a detector over the waits of the lock
	// requests that ask for it, as actors.Config.DeadlockDetection does,
	// over the grains this member hosts: a cycle through accounts of
	// several members is not seen, and left to the waits' timeouts.
	DeadlockDetection bool

	deadlocks *actors.Deadlocks // made by Join when DeadlockDetection
}

// Bank is one member's access to every account of the cluster. It is safe
// for concurrent use.
type Bank struct {
	inc    atomic.Pointer[incarnation] // nil while this member is out of the cluster
	pool   workers
	cfg    Config
	idents []*protocluster.ClusterIdentity // idents[i] names account i+1
	closed atomic.Bool
	// ops[i] counts the operations asked of account i+1 through this
	// member, for observers that rank accounts by heat.
	ops    []atomic.Uint64
	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	rejoin sync.WaitGroup
}

// incarnation is one life of this member in the cluster: an actor system
// with an id of its own, and what it knows of the accounts.
type incarnation struct {
	c     *protocluster.Cluster
	place *placement
	pids  []atomic.Pointer[cachedPID] // pids[i]: account i+1's activation, if known
}

// errNotMember reports a call made while this member is out of the
// cluster (it lost its membership and has not joined again yet): nothing
// was sent, nothing applied.
var errNotMember = fmt.Errorf("cluster: this member lost its membership and is joining again: %w", actors.ErrClosed)

// joinTimeout bounds the wait for the membership service at start, which
// may still be starting itself.
const joinTimeout = 10 * time.Second

// rejoinPause spaces a member's attempts to join again.
const rejoinPause = time.Second

// Join starts this member and joins the cluster. Accounts are activated on
// first use, on whichever member the cluster places them.
func Join(cfg Config) (*Bank, error) {
	if cfg.Accounts < 0 || cfg.Store == nil || (cfg.Provider == nil) == (cfg.Membership == nil) || cfg.Host == "" || cfg.Port <= 0 {
		return nil, errors.New("cluster: a member needs accounts >= 0, a store, a provider or a membership (one), a host and a port")
	}
	if cfg.Membership == nil {
		cfg.Membership = fixed{cfg.Provider}
	}
	if cfg.Name == "" {
		cfg.Name = "gobank"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.DeadlockDetection {
		cfg.deadlocks = actors.NewDeadlocks(cfg.Observer)
	}
	if cfg.PinTimeout == 0 {
		cfg.PinTimeout = 10 * time.Second
	}
	cfg.Logger = logger(cfg.Logger)
	b := &Bank{pool: newWorkers(64), cfg: cfg, idents: make([]*protocluster.ClusterIdentity, cfg.Accounts),
		ops: make([]atomic.Uint64, cfg.Accounts)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	for i := range b.idents {
		b.idents[i] = protocluster.NewClusterIdentity(strconv.Itoa(i+1), Kind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	sess, err := cfg.Membership.Session(ctx)
	for err != nil && ctx.Err() == nil {
		cfg.Logger.Warn("cluster: the membership service does not answer yet; trying again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(rejoinPause / 4):
			sess, err = cfg.Membership.Session(ctx)
		}
	}
	if err != nil {
		b.cancel()
		b.pool.stop()
		return nil, err
	}
	inc, err := b.start(sess)
	if err != nil {
		b.cancel()
		b.pool.stop()
		return nil, err
	}
	b.inc.Store(inc)
	b.rejoin.Add(1)
	go b.keepMember(inc, sess)
	return b, nil
}

// Len returns the number of accounts.
func (b *Bank) Len() int { return len(b.idents) }

// Has reports whether id names an account.
func (b *Bank) Has(id int64) bool { return id >= 1 && id <= int64(len(b.idents)) }

// Members returns the cluster addresses of the members this one knows,
// sorted.
// None while it is out of the cluster.
func (b *Bank) Members() []string {
	if inc := b.inc.Load(); inc != nil {
		return inc.place.Members()
	}
	return nil
}

// Address returns this member's cluster address, as the others dial it.
func (b *Bank) Address() string {
	if b.cfg.Advertise != "" {
		return b.cfg.Advertise
	}
	return net.JoinHostPort(b.cfg.Host, strconv.Itoa(b.cfg.Port))
}

// Placement returns the address of the member that hosts account id,
// activating it if needed; empty if it cannot be placed now.
func (b *Bank) Placement(id int64) string {
	if !b.Has(id) {
		return ""
	}
	inc := b.inc.Load()
	if inc == nil {
		return ""
	}
	pid := b.pid(inc, id)
	if pid == nil {
		return ""
	}
	return pid.Address
}

// Owner returns the address of the member that the placement gives
// account id to, as of the last topology this member saw, without asking
// any member (empty when no member serves accounts, or id is none).
func (b *Bank) Owner(id int64) string {
	if !b.Has(id) {
		return ""
	}
	inc := b.inc.Load()
	if inc == nil {
		return ""
	}
	return ownerOf(*inc.place.owners.Load(), b.idents[id-1].Identity)
}

// Inspect returns account id's state, read by its activation (which it
// activates if needed), as actors.Bank.Inspect does; not counted in Ops.
func (b *Bank) Inspect(_ context.Context, id int64) (actors.Reply, error) {
	r, err := b.call(id, call{req: actors.Request{Op: actors.OpInspect}}, b.cfg.Timeout)
	return r.rep, err
}

// Ops appends to dst the number of operations asked of each account
// through this member so far, accounts 1..Len in order.
func (b *Bank) Ops(dst []uint64) []uint64 {
	for i := range b.ops {
		dst = append(dst, b.ops[i].Load())
	}
	return dst
}

// Do applies req to account id, on whichever member hosts it. Errors are
// those of actors.Bank.Do; a call whose answer was lost (the hosting
// member died, the cluster could not place the account in time) returns
// an error wrapping none of them: its outcome is unknown.
func (b *Bank) Do(id int64, req actors.Request) (actors.Reply, error) {
	if req.Op >= actors.OpPin {
		return actors.Reply{}, fmt.Errorf("cluster: operation %v is internal", req.Op)
	}
	timeout := b.cfg.Timeout
	if req.Op == actors.OpLock && req.Wait > 0 {
		timeout += req.Wait
	}
	if b.Has(id) {
		b.ops[id-1].Add(1)
	}
	r, err := b.call(id, call{req: req}, timeout)
	return r.rep, err
}

func (b *Bank) call(id int64, c call, timeout time.Duration) (reply, error) {
	if !b.Has(id) {
		return reply{}, actors.ErrNotFound
	}
	if b.closed.Load() {
		return reply{}, actors.ErrClosed
	}
	// The grain gives up on a queued lock a little before its caller does,
	// so that a grant is never handed to a caller that has left.
	c.timeout = timeout - timeout/10
	msg := encodeCall(c)
	deadline := time.Now().Add(timeout)
	var err error
	for attempt := 0; ; attempt++ {
		inc := b.inc.Load()
		if inc == nil {
			return reply{}, errNotMember
		}
		pid := b.pid(inc, id)
		if pid == nil {
			err = errUnplaced
		} else {
			var res any
			res, err = inc.c.ActorSystem.Root.RequestFuture(pid, msg, time.Until(deadline)).Result()
			if err == nil {
				m, ok := res.(*wrapperspb.BytesValue)
				if !ok {
					return reply{}, fmt.Errorf("cluster: account %d answered %T", id, res)
				}
				r, err := decodeReply(m.Value)
				if err != nil {
					return reply{}, fmt.Errorf("cluster: account %d: %w", id, err)
				}
				return r, r.err
			}
			inc.forget(id, pid)
			if !errors.Is(err, actor.ErrDeadLetter) && !errors.Is(err, remote.ErrDeadLetter) {
				// A timeout: the grain may have applied the call.
				return reply{}, fmt.Errorf("cluster: account %d: %w", id, err)
			}
		}
		// Not delivered (the activation ended, its member left, or the
		// cluster has no member for it yet): safe to send again, to
		// wherever the account lives now.
		if attempt == 2 || time.Until(deadline) < retryPause {
			return reply{}, fmt.Errorf("cluster: account %d: not delivered: %w", id, err)
		}
		time.Sleep(retryPause * time.Duration(attempt+1))
	}
}

// errUnplaced reports an account that no member can host right now.
var errUnplaced = errors.New("no member hosts the account")

// retryPause spaces the attempts to deliver a call.
const retryPause = 10 * time.Millisecond

// pid returns the activation of account id, from the cache or from the
// placement. The cache spares a placement request (a round trip to the
// owner) per call; it is dropped whenever the topology changes, and an
// entry whenever a call to it fails.
func (b *Bank) pid(inc *incarnation, id int64) *actor.PID {
	gen := inc.place.gen.Load()
	if e := inc.pids[id-1].Load(); e != nil && e.gen == gen {
		return e.pid
	}
	pid := inc.place.Get(b.idents[id-1])
	if pid != nil {
		inc.pids[id-1].Store(&cachedPID{pid: pid, gen: gen})
	}
	return pid
}

// forget drops account id's cached activation if it is still pid.
func (inc *incarnation) forget(id int64, pid *actor.PID) {
	if e := inc.pids[id-1].Load(); e != nil && e.pid == pid {
		inc.pids[id-1].CompareAndSwap(e, nil)
	}
}

// cachedPID is an activation as of a topology generation.
type cachedPID struct {
	pid *actor.PID
	gen uint64
}

// Close leaves the cluster gracefully: the other members take over this
// member's accounts. Calls made afterwards fail with actors.ErrClosed.
func (b *Bank) Close() {
	if b.closed.Swap(true) {
		return
	}
	b.cancel()
	b.rejoin.Wait()
	if inc := b.inc.Swap(nil); inc != nil {
		b.stopCluster(inc.c, true)
	}
	b.pool.stop()
}
