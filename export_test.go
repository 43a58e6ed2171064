package zongzi

import (
	"context"
	"time"

	"github.com/lni/dragonboat/v4"
)

// WithActiveHeld keeps the replicas for which held returns true from
// being marked active by this host, so that a test can act in the window
// between a replica's first start and its activation.
func WithActiveHeld(held func(Replica) bool) AgentOption {
	return func(a *Agent) error {
		a.holdActive = held
		return nil
	}
}

// WithLeaderHeld keeps this host from recording in the registry that its
// replica of a shard for which held returns true became the leader, so
// that a test can act while the registry names an old leader.
func WithLeaderHeld(held func(shardID uint64) bool) AgentOption {
	return func(a *Agent) error {
		a.holdLeader = held
		return nil
	}
}

// WithBeforeReady runs f as Start is about to succeed, after its last
// wait, so that a test can stop the agent there.
func WithBeforeReady(f func()) AgentOption {
	return func(a *Agent) error {
		a.beforeReady = f
		return nil
	}
}

// StopCalled reports whether Stop was called on a.
func StopCalled(a *Agent) bool {
	a.life.Lock()
	defer a.life.Unlock()
	return a.stopped
}

// WithPromotionHeld keeps this host's learners of the shards for which
// held returns true from being promoted to voting members, so that a test
// can act while a joining member does not vote yet.
func WithPromotionHeld(held func(shardID uint64) bool) AgentOption {
	return func(a *Agent) error {
		a.holdPromotion = held
		return nil
	}
}

// WithBeforeRemoval runs f before the agent proposes the removal of a
// voting member, once the member handed its leadership over if it led: a
// test can widen that window.
func WithBeforeRemoval(f func()) AgentOption {
	return func(a *Agent) error {
		a.beforeRemoval = f
		return nil
	}
}

// WithSweep sets how often the agent's host and shard controllers
// reconcile when nothing changes, so that a test can show that something
// happens without a sweep.
func WithSweep(d time.Duration) AgentOption {
	return func(a *Agent) error {
		a.sweep = d
		return nil
	}
}

// WithLeaderSweep sets how often the agent's leader worker reports again
// the leaders of its replicas when nothing changes, so that a test can
// show that a leader is recorded without that sweep.
func WithLeaderSweep(d time.Duration) AgentOption {
	return func(a *Agent) error {
		a.leaderSweep = d
		return nil
	}
}

// WithFormRetry sets how often a peer that has not formed the prime
// shard asks its peers again (formOrJoin), so that a test can have it
// find the others ready before it could form with them.
func WithFormRetry(d time.Duration) AgentOption {
	return func(a *Agent) error {
		a.formRetry = d
		return nil
	}
}

// WithRegistryAttempt sets how long one attempt of a registry proposal
// waits (registryAttempt), so that a test can show that an attempt ends
// without it.
func WithRegistryAttempt(d time.Duration) AgentOption {
	return func(a *Agent) error {
		a.registry.attemptTimeout = d
		return nil
	}
}

// BusCodes is how the agent's bus maps errors to gRPC codes, for tests
// that call a host's bus as another host does.
var BusCodes = busCodes

// RegistrySessionID returns the client ID of the agent's registry
// session, 0 when it has none, once no registry proposal runs.
func RegistrySessionID(a *Agent) uint64 {
	a.registry.turn <- struct{}{}
	defer func() { <-a.registry.turn }()
	if a.registry.session == nil {
		return 0
	}
	return a.registry.session.ClientID
}

// UpMajorityWithout is the check the agent makes before it removes the
// voting member id from m, the membership of shardID.
func UpMajorityWithout(ctx context.Context, a *Agent, shardID uint64, m *dragonboat.Membership, id uint64) bool {
	return majorityUp(m, a.upVotersWithout(ctx, shardID, m, id))
}

// RouteOf returns the API addresses of the hosts that a's requests to the
// shard are forwarded to, in the order tried, nil when it has no route.
func RouteOf(a *Agent, shardID uint64) []string {
	rt, err := a.route(shardID)
	if err != nil {
		return nil
	}
	return rt.addrs
}

// BusConnected says whether a's bus holds a connection to addr.
func BusConnected(a *Agent, addr string) bool { return a.pool.Has(addr) }

// RoundTrip returns the round trip a's bus last measured to addr, and
// whether it has one.
func RoundTrip(a *Agent, addr string) (time.Duration, bool) { return a.pool.RTT(addr) }

// RunsReplica reports whether the agent lists a replica of the shard as
// running here (it may still be opening its state machine).
func RunsReplica(a *Agent, shardID uint64) bool {
	_, _, ok := a.localReplicaOf(shardID)
	return ok
}

// CaughtUp reports whether the agent's replica of the shard has caught up
// with its shard (Agent.catchUp): false while it has none.
func CaughtUp(a *Agent, shardID uint64) bool {
	_, lr, ok := a.localReplicaOf(shardID)
	return ok && lr.caughtUp.Load()
}
