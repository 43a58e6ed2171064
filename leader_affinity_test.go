package zongzi_test

import (
	"context"
	"fmt"
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
			return true
		}
	}
	waitFor(t, settle, "guest shard leaders on the prime shard's leader", gathered(c.nodes))

	// Moved away by hand, a leadership comes back.
	lead := leaderHost(c.nodes, 0)
	away := c.nodes[0]
	if away.agent.HostID() == lead {
		away = c.nodes[1]
	}
	target := replicaOn(t, away.agent, shards[0])
	waitFor(t, settle, "shard moved away from the prime shard's leader", func() bool {
		_ = away.agent.NodeHost().RequestLeaderTransfer(shards[0], target)
		return leaderHost(c.nodes, shards[0]) == away.agent.HostID()
	})
	waitFor(t, settle, "the moved shard back on the prime shard's leader", gathered(c.nodes))

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
