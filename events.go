package zongzi

import (
	"context"
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

// runLeaderWorker records in the registry the leaders this host's replicas
// became: only the new leader reports itself, so each change is proposed once.
func (a *Agent) runLeaderWorker(ctx context.Context) {
	sweep := time.NewTicker(5 * time.Second)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case li := <-a.events:
			a.reportLeader(ctx, li)
		case <-sweep.C:
			for _, li := range a.leaders.Snapshot() {
				a.reportLeader(ctx, li)
			}
		}
	}
}

func (a *Agent) reportLeader(ctx context.Context, li leaderInfo) {
	if li.leader == 0 || li.leader != li.replicaID || a.holdLeader != nil && a.holdLeader(li.shardID) {
		return
	}
	if s, ok := a.store.State().Shard(li.shardID); !ok || (s.Leader == li.leader && s.Term == li.term) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := a.proposeRegistry(ctx, registry.Command{Op: registry.OpShardLeader, ShardID: li.shardID, Leader: li.leader, Term: li.term})
	if err != nil && ctx.Err() == nil {
		a.log.Debug("zongzi: record leader", "shard", li.shardID, "err", err)
	}
}
