package zongzi_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestNonVotingCatchesUpAfterLeaderLoss: a non-voting replica, which
// takes no part in elections and forwards its ReadIndex to the leader it
// believes in, restarts after its shard's leader went down and another
// voter took its place: it passes its read barrier on the new leader and
// is marked active within settle (it was held from being marked before).
func TestNonVotingCatchesUpAfterLeaderLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	a1 := c.nodes[0].agent
	s, _, err := a1.ShardCreate(ctx, testType, zongzi.WithName("nv"),
		zongzi.WithPlacementMembers(3), zongzi.WithPlacementVary("geo:zone"), zongzi.WithPlacementCover("geo:zone=d"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "three active members", func() bool { return allActive(a1.State(), s.ID, 3) })
	var held atomic.Bool
	held.Store(true)
	d := c.addNode("d")
	d.opts = []zongzi.AgentOption{zongzi.WithActiveHeld(func(r zongzi.Replica) bool { return r.ShardID == s.ID && held.Load() })}
	c.startAll(ctx, d)
	waitFor(t, settle, "the non-voting replica caught up on host d", func() bool { return zongzi.CaughtUp(d.agent, s.ID) })
	writeEventually(ctx, t, a1, s.ID, "a write")

	d.agent.Stop()
	lead, live := stopLeaderHost(t, c.nodes[:3], s.ID)
	waitFor(t, settle, "a new leader", func() bool { h := leaderHost(live, s.ID); return h != "" && h != lead })
	writeEventually(ctx, t, live[0].agent, s.ID, "a write to the new leader")
	held.Store(false)
	c.startAll(ctx, d)
	start := time.Now()
	waitFor(t, settle, "the restarted non-voting replica caught up", func() bool { return zongzi.CaughtUp(d.agent, s.ID) })
	t.Logf("caught up %v after restart", time.Since(start))
	waitActiveOn(t, live[0].agent, s.ID, d.agent.HostID(), "the restarted non-voting replica marked active")
	t.Logf("active %v after restart", time.Since(start))
}

// TestNonVotingCatchesUpThroughLeaderLoss: a non-voting replica still
// applying its shard's log, whose read barrier asks the leader for a new
// read index every round, loses that leader (its host stops, another
// voter takes over) while it catches up: it catches up on the new leader
// and is marked active within settle.
func TestNonVotingCatchesUpThroughLeaderLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, s := catchCluster(ctx, t, "nv-lost", nil)
	a1 := c.nodes[0].agent
	const writes = 60 // 6 s for host d to apply
	for i := range writes {
		writeEventually(ctx, t, a1, s.ID, fmt.Sprintf("write %d", i))
	}
	d := c.addNode("d")
	d.register = registerCatch(100*time.Millisecond, nil)
	c.startAll(ctx, d)
	waitFor(t, settle, "host d's non-voting replica running, behind, knowing the leader", func() bool {
		leader, _ := d.agent.Client(s.ID).Leader()
		return zongzi.RunsReplica(d.agent, s.ID) && !zongzi.CaughtUp(d.agent, s.ID) && leader != 0
	})
	_, live := stopLeaderHost(t, c.nodes[:3], s.ID)
	if zongzi.CaughtUp(d.agent, s.ID) {
		t.Fatal("host d's replica caught up before the leader's host stopped: the test shows nothing")
	}
	start := time.Now()
	waitFor(t, settle, "host d's non-voting replica caught up", func() bool { return zongzi.CaughtUp(d.agent, s.ID) })
	t.Logf("caught up %v after the leader's host stopped", time.Since(start))
	waitActiveOn(t, live[0].agent, s.ID, d.agent.HostID(), "host d's non-voting replica marked active")
}
