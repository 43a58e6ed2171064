package zongzi_test

import (
	"context"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestJoinerActiveWithoutSweep: a replica that joins a running shard is
// marked active once it hears the shard's leader, not at the next sweep.
// The shard's leader stays, so no registry entry follows the joiner's
// start once it was marked started: its host must wake on the leader it
// learns. Heartbeats half a second apart leave the joiner without a leader
// when its host first looks.
func TestJoinerActiveWithoutSweep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := zongzi.DefaultReplicaConfig()
	cfg.ElectionRTT, cfg.HeartbeatRTT = 100, 25 // ticks of 20 ms
	c := newCluster(t, "a", "b", "c")
	for _, n := range c.nodes {
		// No sweep within the test: only a change or a wake-up can act.
		n.opts = append(n.opts, zongzi.WithSweep(time.Hour), zongzi.WithReplicaConfig(cfg))
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	a := c.nodes[0].agent
	s := createMembers(ctx, t, a, "joined", 1)
	if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(2)); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("replicas as host %s sees them: %+v", n.agent.HostID(), n.agent.State().ShardReplicas(s.ID))
			}
		}
	}()
	waitFor(t, settle, "the member that joined active", func() bool { return allActive(a.State(), s.ID, 2) })
}
