package zongzi

import (
	"context"
	"fmt"
	"time"

	"github.com/lni/dragonboat/v4"
)

// handOverWait bounds the wait for one voting member to take over a
// shard's leadership (handOver): a transfer takes a round trip once the
// member has caught up, and Dragonboat gives up on one after an election
// timeout (200–400 ms).
const handOverWait = time.Second

// handOver moves the shard's leadership away from replica id, a voting
// member about to be removed, when it leads, to one of up, the other
// voting members that run (upVotersWithout), in turn. A leader that
// applies its own removal steps down at once (Dragonboat's removeNode),
// whether or not the others learnt that the removal committed; a member
// that did not still counts the removed one's vote. Of two voters, the
// one left could then elect no leader again: the vote it waits for never
// comes. Led by another member, the removal commits on that member, which
// applies it and leads on. Should no member take over, the removal waits
// (errRemovalHeld) when one voter would be left; with more, they elect a
// leader without the removed one, and it goes ahead.
func (a *Agent) handOver(ctx context.Context, nh *dragonboat.NodeHost, shardID uint64, m *dragonboat.Membership, id uint64, up []uint64) error {
	if leader, ok := leaderOn(nh, shardID); !ok || leader != id {
		return nil // a proposal with no leader known fails on its own
	}
	for _, target := range up {
		if _, voter := m.Nodes[target]; !voter {
			continue // a witness cannot lead
		}
		if err := nh.RequestLeaderTransfer(shardID, target); err != nil {
			return fmt.Errorf("shard %d: hand the leadership of replica %d over to %d: %w", shardID, id, target, mapError(err))
		}
		wctx, cancel := context.WithTimeout(ctx, handOverWait)
		leader, ok := leaderOn(nh, shardID)
		for (!ok || leader == id) && sleep(wctx, 10*time.Millisecond) == nil {
			leader, ok = leaderOn(nh, shardID)
		}
		cancel()
		if ok && leader != id {
			a.log.Info("zongzi: leadership handed over before removal", "shard", shardID, "replica", id, "to", leader)
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("shard %d: hand the leadership of replica %d over: %w", shardID, id, err)
	}
	if len(m.Nodes)+len(m.Witnesses) > 2 {
		return nil
	}
	return fmt.Errorf("%w: shard %d: replica %d leads, and no other voting member took over before its removal",
		errRemovalHeld, shardID, id)
}

// leaderOn returns the shard's leader as the replica on nh knows it, and
// whether it knows one.
func leaderOn(nh *dragonboat.NodeHost, shardID uint64) (uint64, bool) {
	leader, _, valid, err := nh.GetLeaderID(shardID)
	return leader, err == nil && valid
}
