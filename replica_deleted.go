package zongzi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/raftio"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
)

// errRemovalHeld: a voting member's removal waits, as it would leave no
// majority of the other members up (changeMembership).
var errRemovalHeld error = &childError{msg: "zongzi: shard not ready: removal held", parent: ErrShardNotReady}

// removeDeletedData removes the data this host keeps for guest replicas
// the registry deleted: those stopReplica just stopped, and those deleted
// while they did not run here (the host was down) or whose removal failed
// before. Replica IDs only grow, so one the registry allocated but no
// longer lists is gone for good. A replica still running is left alone.
//
// A deleted replica can still be a voting member of its shard: its
// removal from the membership waits while it would leave no majority of
// the other members up, and its host may restart meanwhile. The shard
// still counts its vote, so its data stays and it starts again from it
// (restartHeld), until stopReplica can take it out. The shard's other
// hosts are asked (voteElsewhere); its data goes only once one of them
// reads the membership linearizably without it as a voter. The data of a
// deleted shard's replicas is removed at once. logInfo lists the replicas
// with data on this host.
func (a *Agent) removeDeletedData(ctx context.Context, st *State, logInfo []raftio.NodeInfo) {
	nh := a.NodeHost()
	if nh == nil {
		return
	}
	running := a.local.Snapshot()
	for _, ni := range logInfo {
		if ni.ShardID == 0 || ni.ReplicaID > st.LastReplicaID() {
			continue
		}
		if _, listed := st.Replica(ni.ReplicaID); listed {
			continue
		}
		if lr, ok := running[ni.ShardID]; ok && lr.replicaID == ni.ReplicaID {
			continue
		}
		if _, ok := st.Shard(ni.ShardID); ok {
			v, err := a.voteElsewhere(ctx, st, ni.ShardID, ni.ReplicaID)
			if v == voteCounted {
				err = a.restartHeld(ctx, nh, st, ni.ShardID, ni.ReplicaID)
			}
			if v != voteGone {
				a.logErr(err, fmt.Sprintf("keep the data of deleted replica %d", ni.ReplicaID), ni.ShardID)
				continue
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := nh.SyncRemoveData(rctx, ni.ShardID, ni.ReplicaID)
		cancel()
		if err == nil {
			a.unmarkLearner(ni.ShardID, ni.ReplicaID)
			a.log.Info("zongzi: replica removed", "shard", ni.ShardID, "replica", ni.ReplicaID)
		}
		a.logErr(mapError(err), fmt.Sprintf("remove the data of deleted replica %d", ni.ReplicaID), ni.ShardID)
	}
}

// vote is what the shard's other hosts know of a replica's vote.
type vote int

const (
	// voteUnknown: no host answered, or only from a stale view of the
	// membership (its shard has no leader) that lacks the replica; or the
	// replica is a witness.
	voteUnknown vote = iota
	// voteCounted: the replica is a voting member, by a linearizable read
	// or by a stale view.
	voteCounted
	// voteGone: a linearizable read of the membership does not count the
	// replica's vote: it was removed, or never voted.
	voteGone
)

// voteElsewhere asks the shard's other hosts whether it counts the vote
// of replicaID: the first that reads the membership linearizably, or else
// the stale view of one that answered. The error says why the vote is
// unknown. A witness's is unknown too: zongzi places none, and restartHeld
// would start one as a full voter.
func (a *Agent) voteElsewhere(ctx context.Context, st *State, shardID, replicaID uint64) (vote, error) {
	var m, stale *pb.MembersResponse
	err := a.askShardHosts(ctx, st, shardID, func(ctx context.Context, addr string) error {
		res, err := a.pool.Members(ctx, addr, shardID)
		if err == nil && res.Stale {
			stale = res
			return fmt.Errorf("%w: shard %d has no leader", ErrShardNotReady, shardID)
		}
		m = res
		return err
	})
	if err != nil && stale != nil {
		m, err = stale, nil
	}
	switch {
	case err != nil:
		return voteUnknown, fmt.Errorf("shard %d: does replica %d vote: %w", shardID, replicaID, err)
	case slices.Contains(m.Voting, replicaID):
		return voteCounted, nil
	case slices.Contains(m.Witnesses, replicaID):
		return voteUnknown, fmt.Errorf("shard %d: replica %d is a witness, which this host does not start", shardID, replicaID)
	case m.Stale:
		return voteUnknown, fmt.Errorf("%w: shard %d has no leader, and replica %d is not in its last known membership",
			ErrShardNotReady, shardID, replicaID)
	}
	return voteGone, nil
}

// goneElsewhere reports whether a replica this host runs, whose removal
// from the shard failed with err, no longer has a vote by the shard's
// other hosts: one that left the membership without learning so
// (restartHeld started it as it was removed) has no leader, cannot read
// the membership itself, and would otherwise run forever.
func (a *Agent) goneElsewhere(ctx context.Context, st *State, shardID, replicaID uint64, err error) bool {
	if errors.Is(err, errRemovalHeld) {
		return false
	}
	v, _ := a.voteElsewhere(ctx, st, shardID, replicaID)
	return v == voteGone
}

// restartHeld starts again, from its data, a replica the registry deleted
// that is still a voting member of its shard (see removeDeletedData).
func (a *Agent) restartHeld(ctx context.Context, nh *dragonboat.NodeHost, st *State, shardID, replicaID uint64) error {
	if lr, ok := a.local.Snapshot()[shardID]; ok {
		return fmt.Errorf("%w: shard %d: replica %d runs here, so voting member %d cannot start again",
			ErrShardNotReady, shardID, lr.replicaID, replicaID)
	}
	t, err := a.shardType(st, shardID)
	if err != nil {
		return err
	}
	if err := a.waitClosed(ctx, shardID); err != nil {
		return fmt.Errorf("restart deleted voting member %d of shard %d: %w", replicaID, shardID, err)
	}
	r := Replica{ID: replicaID, ShardID: shardID, HostID: a.hostID}
	g, err := newReplicaGuest(t, r, a.log)
	if err != nil {
		return fmt.Errorf("restart deleted voting member %d of shard %d: %w", replicaID, shardID, err)
	}
	a.log.Info("zongzi: deleted replica is still a voting member; starting it again until it can leave",
		"shard", shardID, "replica", replicaID)
	return a.runReplica(nh, r, g, nil, false, false)
}

// Members implements bus.Handler: the shard's membership, read
// linearizably by the replica here. When the shard cannot serve that read
// (it has no leader: too few of its voters are up), the voting members as
// this replica last applied them, marked stale.
func (h busHandler) Members(ctx context.Context, shardID uint64) (*pb.MembersResponse, error) {
	nh, err := h.a.localHost(shardID)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m, err := nh.SyncGetShardMembership(rctx, shardID)
	if err == nil {
		return &pb.MembersResponse{
			Voting:    slices.Sorted(maps.Keys(m.Nodes)),
			NonVoting: slices.Sorted(maps.Keys(m.NonVotings)),
			Witnesses: slices.Sorted(maps.Keys(m.Witnesses)),
		}, nil
	}
	for _, si := range nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true}).ShardInfoList {
		if si.ShardID == shardID && !si.Pending {
			return &pb.MembersResponse{Voting: slices.Sorted(maps.Keys(si.Replicas)), Stale: true}, nil
		}
	}
	return nil, fmt.Errorf("shard %d: membership: %w", shardID, mapError(err))
}
