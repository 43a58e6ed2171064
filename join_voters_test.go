package zongzi_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestWipedPeerJoinsThroughAFollower: a wiped peer rejoins through a
// peer that does not lead the prime shard. The old replica of the wiped
// peer must leave the prime shard's membership before the new one joins,
// so that the voting set never counts a dead member next to the new one:
// with 4 voters, 3 of them (every live member, the new one included
// before it ran) were needed to commit. Only the leader's host
// controller removed the old member, racing with the join, which added
// the new member first in most rounds. Each round wipes the lowest peer
// while the highest leads, so that the join goes to the middle one, and
// watches the leader's membership.
func TestWipedPeerJoinsThroughAFollower(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	nodes := slices.SortedFunc(slices.Values(c.nodes), func(x, y *node) int { return strings.Compare(x.api, y.api) })
	low, high := nodes[0], nodes[2]
	for round := range 4 {
		self := primeOf(high.agent)
		waitFor(t, settle, "the highest peer leading the prime shard", func() bool {
			l, _, ok, _ := high.agent.NodeHost().GetLeaderID(0)
			if ok && l == self {
				return true
			}
			for _, n := range nodes { // the leader hands over
				if ok && primeOf(n.agent) == l {
					_ = n.agent.NodeHost().RequestLeaderTransfer(0, self)
				}
			}
			time.Sleep(100 * time.Millisecond)
			return false
		})
		var most atomic.Int64
		watch, stopWatch := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			for watch.Err() == nil {
				mctx, mcancel := context.WithTimeout(watch, time.Second)
				m, err := high.agent.NodeHost().SyncGetShardMembership(mctx, 0)
				mcancel()
				if err == nil && int64(len(m.Nodes)) > most.Load() {
					most.Store(int64(len(m.Nodes)))
				}
			}
		}()
		low.agent.Stop()
		if err := os.RemoveAll(low.dir); err != nil {
			t.Fatal(err)
		}
		c.startAll(ctx, low)
		waitFor(t, settle, "the prime shard back to 3 voters", func() bool {
			m, ok := membership(ctx, high.agent.NodeHost(), 0)
			return ok && len(m.Nodes) == 3 && len(m.NonVotings) == 0
		})
		stopWatch()
		<-watched
		if n := most.Load(); n != 3 {
			t.Fatalf("round %d: the prime shard had %d voters while the wiped peer rejoined, want 3", round, n)
		}
	}
}

// primeOf returns the ID of a's prime replica as its registry lists it.
func primeOf(a *zongzi.Agent) uint64 {
	for _, r := range a.State().HostReplicas(a.HostID()) {
		if r.ShardID == 0 {
			return r.ID
		}
	}
	return 0
}
