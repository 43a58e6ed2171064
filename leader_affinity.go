package zongzi

import (
	"context"
	"time"
)

// leaderAffinityInterval is how often the prime shard's leader asks for the
// leadership of the guest shards it does not lead yet (WithLeaderAffinity).
// A transfer takes a round trip once the replica has caught up; asking again
// before then does no harm.
const leaderAffinityInterval = time.Second

// runLeaderAffinity gathers guest shard leaders on the prime shard's leader,
// when the agent was given WithLeaderAffinity.
func (a *Agent) runLeaderAffinity(ctx context.Context) {
	if !a.leaderAffinity {
		return
	}
	every(ctx, leaderAffinityInterval, a.gatherLeaders)
}

// gatherLeaders asks, while this host leads the prime shard, for the
// leadership of every guest shard of which it runs a voting replica that
// does not lead. Dragonboat hands each request to the shard's leader.
func (a *Agent) gatherLeaders() {
	nh := a.NodeHost()
	prime, ok := a.localLeader(0)
	if nh == nil || !ok || prime.leader != a.primeID.Load() {
		return
	}
	for shardID, lr := range a.local.Snapshot() {
		if lr.nonVoting {
			continue
		}
		if li, ok := a.localLeader(shardID); !ok || li.leader == lr.replicaID {
			continue // no leader to hand over yet, or this replica leads
		}
		if err := nh.RequestLeaderTransfer(shardID, lr.replicaID); err != nil {
			a.log.Debug("zongzi: leader transfer", "shard", shardID, "replica", lr.replicaID, "err", err)
		}
	}
}
