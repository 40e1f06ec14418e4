package cluster

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
)

// placement decides which member hosts an account and activates it there:
// rendezvous hashing over the members that serve the kind, as
// protoactor's disthash lookup does, rebuilt here because disthash
// replaces its member table while callers read it (a data race under
// -race) and serializes every lookup on one shared hasher. Here the table
// is an immutable snapshot swapped atomically on each topology change.
type placement struct {
	c         *protocluster.Cluster
	owners    atomic.Pointer[[]string] // addresses of the members serving Kind, sorted
	activator *actor.PID
	sub       *eventstream.Subscription
	// gen counts topology changes, so that callers caching activations
	// know when their entries became stale.
	gen atomic.Uint64
}

// activatorName names each member's placement actor, which activates the
// accounts the member hosts; other members address it by this name.
const activatorName = "gobank-placement"

// activationTimeout bounds a request to a member's placement actor.
const activationTimeout = 5 * time.Second

var _ protocluster.IdentityLookup = (*placement)(nil)

func newPlacement() *placement {
	p := &placement{}
	p.owners.Store(&[]string{})
	return p
}

// Setup implements protocluster.IdentityLookup.
func (p *placement) Setup(c *protocluster.Cluster, _ []string, _ bool) {
	p.c = c
	a := &activator{p: p, grains: map[string]*actor.PID{}}
	p.activator, _ = c.ActorSystem.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return a }), activatorName)
	p.sub = c.ActorSystem.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*protocluster.ClusterTopology); ok {
			var owners []string
			for _, m := range t.Members {
				if m.HasKind(Kind) {
					owners = append(owners, m.Address())
				}
			}
			slices.Sort(owners)
			p.owners.Store(&owners)
			p.gen.Add(1)
			c.ActorSystem.Root.Send(p.activator, t)
		}
	})
}

// Members returns the addresses of the members that serve accounts, as
// of the last topology this member saw.
func (p *placement) Members() []string { return slices.Clone(*p.owners.Load()) }

// ownerOf returns the address of the member that hosts identity among
// owners: the one with the highest FNV-1a hash of identity and address.
// Every member computes the same owner from the same member list.
func ownerOf(owners []string, identity string) string {
	var best string
	var bestScore uint32
	for _, o := range owners {
		h := uint32(2166136261)
		for i := 0; i < len(identity); i++ {
			h = (h ^ uint32(identity[i])) * 16777619
		}
		for i := 0; i < len(o); i++ {
			h = (h ^ uint32(o[i])) * 16777619
		}
		if best == "" || h > bestScore {
			best, bestScore = o, h
		}
	}
	return best
}

// Get implements protocluster.IdentityLookup: it asks the owner's
// placement actor for the account's activation. protoactor caches the
// answer until the activation ends or its member leaves.
func (p *placement) Get(ci *protocluster.ClusterIdentity) *actor.PID {
	owner := ownerOf(*p.owners.Load(), ci.Identity)
	if owner == "" {
		return nil
	}
	res, err := p.c.ActorSystem.Root.RequestFuture(actor.NewPID(owner, activatorName),
		&protocluster.ActivationRequest{ClusterIdentity: ci}, activationTimeout).Result()
	if err != nil {
		return nil
	}
	if r, ok := res.(*protocluster.ActivationResponse); ok && r.Pid != nil {
		return r.Pid
	}
	return nil
}

// RemovePid implements protocluster.IdentityLookup.
func (p *placement) RemovePid(ci *protocluster.ClusterIdentity, pid *actor.PID) {
	p.c.MemberList.BroadcastEvent(&protocluster.ActivationTerminated{Pid: pid, ClusterIdentity: ci}, true)
}

// Shutdown implements protocluster.IdentityLookup.
// Stopping the placement actor stops the activations, its children.
func (p *placement) Shutdown() {
	if p.sub != nil {
		p.c.ActorSystem.EventStream.Unsubscribe(p.sub)
	}
	if p.activator != nil {
		_ = p.c.ActorSystem.Root.PoisonFuture(p.activator).Wait()
	}
}

// activator is a member's placement actor: it spawns the activations of
// the accounts it is asked for, and stops those that the topology has
// moved to another member.
type activator struct {
	p      *placement
	grains map[string]*actor.PID // by identity
}

// Receive implements actor.Actor.
func (a *activator) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *protocluster.ActivationRequest:
		id := m.ClusterIdentity.Identity
		pid, ok := a.grains[id]
		if !ok {
			kind := a.p.c.GetClusterKind(m.ClusterIdentity.Kind)
			if kind == nil {
				ctx.Respond(&protocluster.ActivationResponse{Failed: true})
				return
			}
			pid = ctx.SpawnPrefix(protocluster.WithClusterIdentity(kind.Props, m.ClusterIdentity), id)
			kind.Inc()
			a.grains[id] = pid
		}
		ctx.Respond(&protocluster.ActivationResponse{Pid: pid})
	case *actor.Terminated:
		for id, pid := range a.grains {
			if pid.Equal(m.Who) {
				delete(a.grains, id)
				if kind := a.p.c.GetClusterKind(Kind); kind != nil {
					kind.Dec()
				}
				a.p.c.MemberList.BroadcastEvent(&protocluster.ActivationTerminated{
					Pid: pid, ClusterIdentity: protocluster.NewClusterIdentity(id, Kind)}, true)
				break
			}
		}
	case *protocluster.ClusterTopology:
		owners := *a.p.owners.Load()
		me := a.p.c.ActorSystem.Address()
		for id, pid := range a.grains {
			if ownerOf(owners, id) != me {
				// The account moved: its next request activates it on its
				// new member, which claims it from the store; this
				// activation could no longer write anyway.
				ctx.Poison(pid)
			}
		}
	}
}
