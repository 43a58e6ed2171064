package zongzi_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi"
)

// TestLeaderAffinity gives every agent WithLeaderAffinity: the guest shards'
// leaders gather on the host that leads the prime shard, come back there
// when one is moved away, and follow the prime shard's leader to another
// host when its host stops.
func TestLeaderAffinity(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	for _, n := range c.nodes {
		n.opts = []zongzi.AgentOption{zongzi.WithLeaderAffinity()}
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	var shards []uint64
	for i := range 3 {
		shards = append(shards, c.createActive(ctx, c.nodes[0].agent, testType, fmt.Sprintf("affinity-%d", i)).ID)
	}
	gathered := func(live []*node) func() bool {
		return func() bool {
			lead := leaderHost(live, 0)
			if lead == "" {
				return false
			}
			for _, id := range shards {
				if leaderHost(live, id) != lead {
					return false
				}
			}
			for _, n := range live {
				if !n.agent.LeadersGathered() {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, settle, "guest shard leaders on the prime shard's leader", gathered(c.nodes))

	// Moved away by hand, a leadership comes back: each move is an
	// election, so the term goes up by two at least. The move back may come
	// before a check could see the leader away.
	lead := leaderHost(c.nodes, 0)
	away := c.nodes[0]
	if away.agent.HostID() == lead {
		away = c.nodes[1]
	}
	target := replicaOn(t, away.agent, shards[0])
	_, term0 := away.agent.Client(shards[0]).Leader()
	waitFor(t, settle, "shard moved away from the prime shard's leader", func() bool {
		_ = away.agent.NodeHost().RequestLeaderTransfer(shards[0], target)
		_, term := away.agent.Client(shards[0]).Leader()
		return term > term0
	})
	waitFor(t, settle, "the moved shard back on the prime shard's leader", func() bool {
		_, term := away.agent.Client(shards[0]).Leader()
		return term >= term0+2 && gathered(c.nodes)()
	})

	// The prime shard's leader stops: the leaders follow its successor.
	var live []*node
	for _, n := range c.nodes {
		if n.agent.HostID() == lead {
			n.agent.Stop()
			continue
		}
		live = append(live, n)
	}
	waitFor(t, settle, "guest shard leaders on the new prime shard's leader", gathered(live))
}

// TestLeadersGathered checks LeadersGathered against leaders moved by hand.
// Only one agent has WithLeaderAffinity, and another leads the prime shard,
// so no agent moves leaders: the registry shows wherever the test put them.
func TestLeadersGathered(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	watcher := c.nodes[2]
	watcher.opts = []zongzi.AgentOption{zongzi.WithLeaderAffinity()}
	// Host 1 marks no replica of a shard created after the first active.
	var first atomic.Uint64
	c.nodes[0].opts = []zongzi.AgentOption{zongzi.WithActiveHeld(func(r zongzi.Replica) bool {
		return first.Load() != 0 && r.ShardID > first.Load()
	})}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	if !c.nodes[0].agent.LeadersGathered() {
		t.Errorf("LeadersGathered is false on an agent without WithLeaderAffinity")
	}
	moveLeader := func(shardID uint64, to *node) {
		t.Helper()
		target := replicaOn(t, to.agent, shardID)
		waitFor(t, settle, fmt.Sprintf("shard %d led from %s", shardID, to.agent.HostID()), func() bool {
			_ = to.agent.NodeHost().RequestLeaderTransfer(shardID, target)
			s, ok := watcher.agent.State().Shard(shardID)
			return ok && s.Leader == target && leaderHost(c.nodes, shardID) == to.agent.HostID()
		})
	}
	shardID := c.createActive(ctx, c.nodes[0].agent, testType, "gathered").ID
	first.Store(shardID)
	// check puts the prime shard's leader on host 1 and the guest shard's on
	// guest, then wants LeadersGathered on the watcher to answer want while
	// its registry shows them there. On a busy machine an election can move
	// a leader on its own (to the watcher too, which then gathers the
	// leaders): a registry that changed during the call, or shows another
	// leader, says nothing of the answer, and the leaders are moved again.
	// Nor does one that lags behind the shard's creation, with a replica
	// not yet active (which LeadersGathered counts as not gathered).
	check := func(guest *node, want bool, what string) {
		t.Helper()
		primeOn, guestOn := replicaOn(t, c.nodes[0].agent, 0), replicaOn(t, guest.agent, shardID)
		waitFor(t, settle, "LeadersGathered asked with "+what, func() bool {
			moveLeader(0, c.nodes[0])
			moveLeader(shardID, guest)
			before := watcher.agent.State()
			got := watcher.agent.LeadersGathered()
			after := watcher.agent.State()
			prime, _ := after.Shard(0)
			s, _ := after.Shard(shardID)
			if before.Index() != after.Index() || prime.Leader != primeOn || s.Leader != guestOn ||
				!allActive(after, shardID, 3) {
				return false
			}
			if got != want {
				t.Fatalf("LeadersGathered is %v with %s", got, what)
			}
			return true
		})
	}
	check(c.nodes[1], false, fmt.Sprintf("shard %d led away from the prime shard's leader", shardID))
	check(c.nodes[0], true, "every shard led from the prime shard's leader")

	// A member on the prime shard's leader that is not active yet (it may
	// be catching up) leads nothing yet: the leaders have not gathered.
	late, _, err := c.nodes[0].agent.ShardCreate(ctx, testType, zongzi.WithName("late"), zongzi.WithPlacementMembers(3))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the late shard's members on hosts 2 and 3 active, host 1's started", func() bool {
		active := 0
		for _, r := range watcher.agent.State().ShardReplicas(late.ID) {
			switch {
			case r.Status == zongzi.ReplicaStatusActive:
				active++
			case r.HostID != c.nodes[0].agent.HostID() || r.Status != zongzi.ReplicaStatusStarted:
				return false
			}
		}
		return active == 2
	})
	moveLeader(0, c.nodes[0])
	moveLeader(shardID, c.nodes[0])
	if watcher.agent.LeadersGathered() {
		t.Errorf("LeadersGathered is true while a member on the prime shard's leader is not active")
	}
}

// leaderHost returns the ID of the host whose replica leads the shard, as
// the live nodes see it, or "" when they do not agree on one.
func leaderHost(live []*node, shardID uint64) string {
	host := ""
	for _, n := range live {
		leader, _ := n.agent.Client(shardID).Leader()
		r, ok := n.agent.State().Replica(leader)
		if !ok || (host != "" && r.HostID != host) {
			return ""
		}
		host = r.HostID
	}
	return host
}

// replicaOn returns the ID of a's replica of the shard.
func replicaOn(t *testing.T, a *zongzi.Agent, shardID uint64) uint64 {
	t.Helper()
	ids := replicasOn(a, shardID)
	if len(ids) == 0 {
		t.Fatalf("host %s has no replica of shard %d", a.HostID(), shardID)
	}
	return ids[0]
}
