package zongzi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/raftio"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
)

// A voting member that joins a guest shard joins it as a non-voting
// replica, a learner, and becomes a voter only once it has caught up
// (promote): until then the shard's quorum does not count it. Added as a
// voter at once, a member whose host goes down before it has the log, or
// that takes long to catch up, would leave the shard with more voters
// and no more of them able to vote: of a shard of one member, a second
// one down or behind stops every write.
//
// Dragonboat starts a replica in the role its config names, and panics
// when the log it replays adds it as non-voting while its config says it
// votes (or a snapshot says so): a replica that joined as a learner
// starts as non-voting at every start, for good, and Raft makes it a
// voter again as it replays its promotion or a snapshot that has it (a
// non-voting replica that finds itself among the voters becomes a
// follower). A marker file in the host dir records that it joined so,
// written before the join is asked for.

// learnerFormat names the marker of a replica that joined its shard as a
// learner, by shard and replica ID.
const learnerFormat = "zongzi-learner-%d-%d"

// learnerFile is the marker of a replica that joined its shard as a
// learner.
func (a *Agent) learnerFile(shardID, replicaID uint64) string {
	return filepath.Join(a.hostConfig.NodeHostDir, fmt.Sprintf(learnerFormat, shardID, replicaID))
}

// isLearner reports whether the replica joined its shard as a learner
// (learnerFile).
func (a *Agent) isLearner(shardID, replicaID uint64) bool {
	_, err := os.Stat(a.learnerFile(shardID, replicaID))
	return err == nil
}

// markLearner records, durably, that the replica joins as a learner.
func (a *Agent) markLearner(shardID, replicaID uint64) error {
	if err := writeFileDurably(a.learnerFile(shardID, replicaID), nil); err != nil {
		return fmt.Errorf("record replica %d of shard %d as a learner: %w", replicaID, shardID, err)
	}
	return nil
}

// unmarkLearner removes the marker of a replica whose data was removed.
func (a *Agent) unmarkLearner(shardID, replicaID uint64) {
	if err := os.Remove(a.learnerFile(shardID, replicaID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("zongzi: remove learner marker", "shard", shardID, "replica", replicaID, "err", err)
	}
}

// sweepLearnerMarks removes the markers of replicas the registry deleted
// that left no data here (logInfo lists the replicas with data): the
// marker is written before the join is asked for, and a replica deleted
// after its join failed, before it ever started, has no data whose
// removal (removeDeletedData) would remove its marker too. Replica IDs
// only grow, so one allocated but no longer listed is gone for good.
func (a *Agent) sweepLearnerMarks(st *State, logInfo []raftio.NodeInfo) {
	if a.NodeHost() == nil { // logInfo was not read
		return
	}
	names, _ := filepath.Glob(filepath.Join(a.hostConfig.NodeHostDir, "zongzi-learner-*")) // only a bad pattern fails
	for _, name := range names {
		var ni raftio.NodeInfo
		_, err := fmt.Sscanf(filepath.Base(name), learnerFormat, &ni.ShardID, &ni.ReplicaID)
		if err != nil || name != a.learnerFile(ni.ShardID, ni.ReplicaID) { // a temporary file, say
			continue
		}
		if _, listed := st.Replica(ni.ReplicaID); listed || ni.ReplicaID > st.LastReplicaID() || slices.Contains(logInfo, ni) {
			continue
		}
		a.unmarkLearner(ni.ShardID, ni.ReplicaID)
	}
}

// promote makes lr, this host's learner of shardID, a voting member,
// asking a host with an active replica of the shard, again until one
// does or the replica stops. It returns once its own replica reads the
// membership with it as a voter: asked for its leadership before it
// applied its promotion (WithLeaderAffinity), it would drop the request.
// A replica that is a voter already, or that the registry no longer lists
// as a voting member, is left as it is: a promoted learner restarted asks
// nobody, as there may be nobody to ask (the shard's only member).
func (a *Agent) promote(nh *dragonboat.NodeHost, shardID uint64, lr *localReplica) {
	asked := false // a host promoted it: its own replica has yet to apply that
	for lr.stopped.Err() == nil {
		for a.holdPromotion != nil && a.holdPromotion(shardID) && lr.stopped.Err() == nil {
			_ = sleep(lr.stopped, 10*time.Millisecond)
		}
		st := a.store.State()
		r, ok := st.Replica(lr.replicaID)
		if !ok || r.IsNonVoting {
			return
		}
		ctx, cancel := context.WithTimeout(lr.stopped, 5*time.Second)
		if m, err := nh.SyncGetShardMembership(ctx, shardID); err == nil {
			if _, voting := m.Nodes[lr.replicaID]; voting {
				cancel()
				return
			}
		}
		if asked {
			cancel()
			_ = sleep(lr.stopped, 20*time.Millisecond)
			continue
		}
		req := &pb.MembershipRequest{ShardId: shardID, ReplicaId: r.ID, HostId: r.HostID}
		err := a.askShardHosts(ctx, st, shardID, func(ctx context.Context, addr string) error {
			return a.pool.Membership(ctx, addr, req)
		})
		cancel()
		if asked = err == nil; asked {
			continue
		}
		a.logErr(err, "promote learner", shardID)
		_ = sleep(lr.stopped, time.Second)
	}
}
