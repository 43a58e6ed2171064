package zongzi

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/lni/dragonboat/v4/raftio"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// raftEvents receives Dragonboat's raft events. It never blocks the raft
// goroutine: it records the leader locally and hands the registry update to
// the agent's leader worker through a buffered channel.
type raftEvents struct{ a *Agent }

// LeaderUpdated implements raftio.IRaftEventListener.
func (e raftEvents) LeaderUpdated(info raftio.LeaderInfo) {
	li := leaderInfo{shardID: info.ShardID, replicaID: info.ReplicaID, leader: info.LeaderID, term: info.Term}
	e.a.leaders.Update(func(m map[uint64]leaderInfo) {
		if cur, ok := m[info.ShardID]; !ok || cur.term <= info.Term {
			m[info.ShardID] = li
		}
	})
	if info.ShardID == 0 {
		e.a.registry.leaderMoved.fire() // a registry proposal pending with the old leader is made again
	}
	select {
	case e.a.events <- li:
	default: // the periodic sweep of the leader worker catches up
	}
	if e.a.leaderAffinity {
		kick(e.a.leaderMoved)
	}
	if r, ok := e.a.store.State().Replica(info.ReplicaID); info.LeaderID != 0 && ok && r.Status != registry.ReplicaStatusActive {
		kick(e.a.hostKick) // markActive can act now
	}
}

// kick sends a wake-up on c, a channel buffered for one, without blocking.
func kick(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// localLeader returns the leader of a shard as seen by this host's replica.
func (a *Agent) localLeader(shardID uint64) (leaderInfo, bool) {
	li, ok := a.leaders.Load(shardID)
	return li, ok && li.leader != 0
}

// leaderSweep is how often the leader worker reports again the leaders
// of this host's replicas, whatever happened.
const leaderSweep = 5 * time.Second

// leaderRetry is how long the leader worker waits before it reports again
// a leader whose report failed: the prime shard had no leader, say. No
// event would bring the report back: its shard's leader has not changed.
const leaderRetry = time.Second

// runLeaderWorker records in the registry the leaders this host's replicas
// became: only the new leader reports itself, so each change is proposed
// once, and again after leaderRetry while that fails.
func (a *Agent) runLeaderWorker(ctx context.Context) {
	sweep := time.NewTicker(a.leaderSweep)
	defer sweep.Stop()
	retry := time.NewTimer(leaderRetry)
	retry.Stop()
	failed := map[uint64]bool{} // shards whose report failed; retry runs while there are some
	report := func(li leaderInfo) {
		if a.reportLeader(ctx, li) {
			delete(failed, li.shardID)
			return
		}
		if len(failed) == 0 {
			retry.Reset(leaderRetry)
		}
		failed[li.shardID] = true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case li := <-a.events:
			report(li)
		case <-retry.C:
			shards := slices.Collect(maps.Keys(failed))
			clear(failed)
			for _, id := range shards {
				if li, ok := a.leaders.Load(id); ok { // as it is now
					report(li)
				}
			}
		case <-sweep.C:
			for _, li := range a.leaders.Snapshot() {
				report(li)
			}
		}
	}
}

// reportLeader records li's leader in the registry when it is this host's
// replica and the registry says otherwise. It returns false when the
// record failed and is to be made again.
func (a *Agent) reportLeader(ctx context.Context, li leaderInfo) bool {
	if li.leader == 0 || li.leader != li.replicaID || a.holdLeader != nil && a.holdLeader(li.shardID) {
		return true
	}
	if s, ok := a.store.State().Shard(li.shardID); !ok || (s.Leader == li.leader && s.Term == li.term) {
		return true
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := a.proposeRegistry(pctx, registry.Command{Op: registry.OpShardLeader, ShardID: li.shardID, Leader: li.leader, Term: li.term})
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrRejected) { // rejected: the shard is gone
		return true
	}
	a.log.Debug("zongzi: record leader", "shard", li.shardID, "err", err)
	return false
}
