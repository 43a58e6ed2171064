package zongzi

import (
	"context"
	"time"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// leaderAffinityInterval is how often the prime shard's leader asks for the
// leadership of the guest shards it does not lead yet (WithLeaderAffinity),
// besides each time a leader changes. A transfer takes a round trip once
// the replica has caught up; asking again before then does no harm.
const leaderAffinityInterval = time.Second

// leaderAffinityGap is the least time between two passes. It bounds the
// requests while two hosts each still believe they lead the prime shard,
// for at most a heartbeat after a change.
const leaderAffinityGap = 50 * time.Millisecond

// runLeaderAffinity gathers guest shard leaders on the prime shard's leader,
// when the agent was given WithLeaderAffinity. It asks as soon as a shard
// elects a leader elsewhere, or this host comes to lead the prime shard: a
// shard takes no proposals while its leadership moves, and a proposal a
// follower forwarded to the old leader then is dropped without a word (its
// write times out, outcome unknown). Moving leaders right after an election,
// before clients find the shard, keeps that window out of their way.
func (a *Agent) runLeaderAffinity(ctx context.Context) {
	if !a.leaderAffinity {
		return
	}
	every(ctx, leaderAffinityInterval, nil, a.leaderMoved, func() {
		a.gatherLeaders()
		_ = sleep(ctx, leaderAffinityGap) // every returns once ctx is done
	})
}

// gatherLeaders asks, while this host leads the prime shard, for the
// leadership of every guest shard of which it runs a voting replica that
// the registry lists, does not lead and has caught up (catchUp, which
// wakes it then). Dragonboat hands each request to the shard's leader. A
// replica still applying committed entries skips the campaign a transfer
// asks of it, and the leader drops every proposal until the transfer
// times out, an election timeout later.
func (a *Agent) gatherLeaders() {
	nh := a.NodeHost()
	prime, ok := a.localLeader(0)
	if nh == nil || !ok || prime.leader != a.primeID.Load() {
		return
	}
	st := a.store.State()
	for shardID, lr := range a.local.Snapshot() {
		if lr.nonVoting || !lr.caughtUp.Load() {
			continue
		}
		if r, ok := st.Replica(lr.replicaID); !ok || r.HostID != a.hostID {
			continue // deleted: it hands its leadership over (handOver)
		}
		if li, ok := a.localLeader(shardID); !ok || li.leader == lr.replicaID {
			continue // no leader to hand over yet, or this replica leads
		}
		if err := nh.RequestLeaderTransfer(shardID, lr.replicaID); err != nil {
			a.log.Debug("zongzi: leader transfer", "shard", shardID, "replica", lr.replicaID, "err", err)
		}
	}
}

// LeadersGathered reports whether the guest shards' leaders have gathered
// on the host that leads the prime shard, as this host's copy of the
// registry sees it: every guest shard of which that host has a voting
// replica is led by that replica, which is active (it has caught up).
// Without WithLeaderAffinity it is always true. A server may hold back
// its readiness on it for a while after it starts (kv1's /healthz does),
// so that clients do not meet the moves.
func (a *Agent) LeadersGathered() bool {
	if !a.leaderAffinity {
		return true
	}
	st := a.store.State()
	prime, ok := st.Shard(0)
	if !ok {
		return false
	}
	leader, ok := st.Replica(prime.Leader)
	if !ok {
		return false
	}
	for _, r := range st.HostReplicas(leader.HostID) {
		if r.ShardID == 0 || r.IsNonVoting || r.IsWitness {
			continue
		}
		if s, ok := st.Shard(r.ShardID); !ok || s.Leader != r.ID || r.Status != registry.ReplicaStatusActive {
			return false
		}
	}
	return true
}
