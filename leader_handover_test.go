package zongzi_test

import (
	"context"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestRemovedLeaderHandsOverFirst moves a shard's only member to another
// zone: the shard has two voters, the leader and the new member, when the
// leader's is removed. A leader that applies its own removal steps down
// at once, whether or not the other voter learnt that the removal
// committed, and one that did not could elect no leader again: it waits
// for the removed one's vote. The leader now hands its leadership over
// first, so the removal is an entry of the term after the one the old
// member led in, which the new member appended and committed.
func TestRemovedLeaderHandsOverFirst(t *testing.T) {
	testRemovedLeaderHandsOver(t, false)
}

// TestRemovedLeaderHandsOverWithAffinity is TestRemovedLeaderHandsOverFirst
// with WithLeaderAffinity, the member moved away from the host that leads
// the prime shard: that host asked for the leadership back as soon as its
// member had handed it over (gatherLeaders), and when it got it before
// the removal was proposed, the removal was an entry of the term after,
// led by the member being removed.
func TestRemovedLeaderHandsOverWithAffinity(t *testing.T) {
	testRemovedLeaderHandsOver(t, true)
}

func testRemovedLeaderHandsOver(t *testing.T, affinity bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	if affinity {
		// The window between hand-over and removal, where the leadership
		// came back, is made wide enough to show every time.
		wait := zongzi.WithBeforeRemoval(func() { time.Sleep(300 * time.Millisecond) })
		for _, n := range c.nodes {
			n.opts = []zongzi.AgentOption{zongzi.WithLeaderAffinity(), wait}
		}
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	from, to := c.nodes[0], c.nodes[1]
	if affinity {
		var lead string
		waitFor(t, settle, "a leader of the prime shard", func() bool { lead = leaderHost(c.nodes, 0); return lead != "" })
		for i, n := range c.nodes {
			if n.agent.HostID() == lead {
				from, to = n, c.nodes[(i+1)%len(c.nodes)]
			}
		}
	}
	s, _, err := from.agent.ShardCreate(ctx, testType, zongzi.WithName("handover"),
		zongzi.WithPlacementMembers(1, "geo:zone="+from.zone))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the shard active", func() bool { return allActive(from.agent.State(), s.ID, 1) })
	writeEventually(ctx, t, from.agent, s.ID, "a write before the move")
	leader, term, valid, err := from.agent.NodeHost().GetLeaderID(s.ID)
	if err != nil || !valid {
		t.Fatalf("the leader of shard %d on its only member: %d, %v", s.ID, leader, err)
	}
	if _, err := from.agent.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(1, "geo:zone="+to.zone)); err != nil {
		t.Fatal(err)
	}
	nh := to.agent.NodeHost()
	var removal uint64
	waitFor(t, settle, "the old member removed", func() bool {
		m, ok := membership(ctx, nh, s.ID)
		if !ok {
			return false
		}
		_, removed := m.Removed[leader]
		removal = m.ConfigChangeID
		return removed && len(m.Nodes) == 1
	})
	lr, err := nh.GetLogReader(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := lr.Term(removal)
	if err != nil {
		t.Fatalf("term of the removal, entry %d: %v", removal, err)
	}
	if got != term+1 {
		t.Fatalf("replica %d, which led in term %d, was removed by entry %d of term %d, not of the term of the one it handed over to",
			leader, term, removal, got)
	}
	writeEventually(ctx, t, from.agent, s.ID, "a write after the move")
}
