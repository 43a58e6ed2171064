package zongzi_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestJoiningMemberIsALearner: a member that joins a running shard (here
// the second of a shard of one) joins it as a non-voting learner, and
// becomes a voter only once it has caught up. Until then the shard's
// quorum does not count it: its host going down leaves writes going on,
// where a voter added at once would have stopped them. Restarted, the
// learner is promoted and marked active; restarted again, as a voter, it
// starts (non-voting, which Raft corrects as it replays its promotion)
// and serves.
func TestJoiningMemberIsALearner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	var held atomic.Bool
	held.Store(true)
	for _, n := range c.nodes {
		n.opts = append(n.opts, zongzi.WithPromotionHeld(func(uint64) bool { return held.Load() }))
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	a1 := c.nodes[0].agent
	s, _, err := a1.ShardCreate(ctx, testType, zongzi.WithName("learner"),
		zongzi.WithPlacementMembers(1), zongzi.WithPlacementVary("geo:zone"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "one active member", func() bool { return allActive(a1.State(), s.ID, 1) })
	firstHost := a1.State().ShardReplicas(s.ID)[0].HostID
	first, _ := nodeOf(c, firstHost)
	writeEventually(ctx, t, first.agent, s.ID, "a write to the shard of one")
	if _, err := a1.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(2), zongzi.WithPlacementVary("geo:zone")); err != nil {
		t.Fatal(err)
	}
	var second *node
	var id uint64
	waitFor(t, settle, "the second member running", func() bool {
		for _, r := range a1.State().ShardReplicas(s.ID) {
			if n, ok := nodeOf(c, r.HostID); ok && r.HostID != firstHost && zongzi.RunsReplica(n.agent, s.ID) {
				second, id = n, r.ID
				return true
			}
		}
		return false
	})
	role := func(a *zongzi.Agent) (voting, nonVoting bool) {
		m, ok := membership(ctx, a.NodeHost(), s.ID)
		if !ok {
			return false, false
		}
		_, voting = m.Nodes[id]
		_, nonVoting = m.NonVotings[id]
		return voting, nonVoting
	}
	waitFor(t, settle, "the second member in the shard's membership", func() bool {
		v, nv := role(first.agent)
		return v || nv
	})
	if v, nv := role(first.agent); v || !nv {
		t.Fatalf("the joining member is voting %v, non-voting %v: want a non-voting learner", v, nv)
	}
	second.agent.Stop()
	for i := range 3 {
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
		_, _, err := first.agent.Client(s.ID).Apply(wctx, []byte("w"))
		wcancel()
		if err != nil {
			t.Fatalf("write %d with the learner's host down: %v", i, err)
		}
	}

	held.Store(false)
	c.startAll(ctx, second)
	// first's view: a1 may be the agent of the second member's host, stopped.
	waitFor(t, settle, "two active members", func() bool { return allActive(first.agent.State(), s.ID, 2) })
	if v, nv := role(first.agent); !v || nv {
		t.Fatalf("the active member is voting %v, non-voting %v: want promoted", v, nv)
	}
	writeEventually(ctx, t, second.agent, s.ID, "a write through the promoted member")

	second.agent.Stop()
	c.startAll(ctx, second)
	waitFor(t, settle, "the voter restarted, caught up", func() bool { return zongzi.CaughtUp(second.agent, s.ID) })
	writeEventually(ctx, t, second.agent, s.ID, "a write through the restarted voter")
	if v, nv := role(second.agent); !v || nv {
		t.Errorf("the restarted member is voting %v, non-voting %v: want a voter", v, nv)
	}
}

// nodeOf returns the node of c whose agent has the host ID.
func nodeOf(c *cluster, hostID string) (*node, bool) {
	for _, n := range c.nodes {
		if n.agent != nil && n.agent.HostID() == hostID {
			return n, true
		}
	}
	return nil, false
}

// TestMovedMemberRestartsAlone: a shard's only member moves from zone a
// to zone b, so the member in b joined as a learner and was promoted.
// Restarted, it is the shard's only replica: it must catch up and serve
// the requests other hosts forward to it. Its promotion used to be asked
// again at every start, of a host with another active replica of the
// shard: there is none, so it was asked every second forever, the
// replica never caught up, and every request forwarded to it was refused.
func TestMovedMemberRestartsAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a, b := c.nodes[0], c.nodes[1] // zones a and b
	s, _, err := a.agent.ShardCreate(ctx, testType, zongzi.WithName("moving"), zongzi.WithPlacementMembers(1, "geo:zone=a"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the shard active", func() bool { return allActive(a.agent.State(), s.ID, 1) })
	if _, err := a.agent.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(1, "geo:zone=b")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the member moved to zone b", func() bool {
		reps := a.agent.State().ShardReplicas(s.ID)
		return len(reps) == 1 && reps[0].HostID == b.agent.HostID() && reps[0].Status == zongzi.ReplicaStatusActive
	})
	b.agent.Stop()
	c.startAll(ctx, b)
	waitFor(t, settle, "the restarted member caught up", func() bool { return zongzi.CaughtUp(b.agent, s.ID) })
	writeEventually(ctx, t, a.agent, s.ID, "a write forwarded from zone a")
}

// TestLearnerMarkerOfDeletedReplicaGoes: a member placed on a host writes
// its learner marker before it asks to join; the join fails (the shard's
// only member is down) and the shard is deleted before the member ever
// started. Its marker must go: it left no data, so removing the data of
// deleted replicas, which removes the markers too, never came to it, and
// the marker stayed for good.
func TestLearnerMarkerOfDeletedReplicaGoes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a, b := c.nodes[0], c.nodes[1]
	s, _, err := b.agent.ShardCreate(ctx, testType, zongzi.WithName("marked"), zongzi.WithPlacementMembers(1, "geo:zone=a"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the shard active", func() bool { return allActive(b.agent.State(), s.ID, 1) })
	a.agent.Stop()
	if _, err := b.agent.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(2), zongzi.WithPlacementVary("geo:zone")); err != nil {
		t.Fatal(err)
	}
	markers := func() []string {
		var all []string
		for _, n := range c.nodes[1:] {
			m, _ := filepath.Glob(filepath.Join(n.dir, fmt.Sprintf("zongzi-learner-%d-*", s.ID)))
			all = append(all, m...)
		}
		return all
	}
	waitFor(t, settle, "a learner marker for the joining member", func() bool { return len(markers()) > 0 })
	if err := b.agent.ShardDelete(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the learner marker removed", func() bool { return len(markers()) == 0 })
}
