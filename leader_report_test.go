package zongzi_test

import (
	"context"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestLeaderRecordedOncePrimeIsBack: a guest shard's new leader is
// recorded in the registry once the prime shard can take the record
// again, not at the leader worker's next sweep. The shard's members (on
// peer b and non-peer d, zone x) keep their quorum while the prime shard's
// two other voters (peers a and c) are down, and its leadership moves
// meanwhile: the new leader's report fails, as the prime shard has no
// leader. The leader worker's sweep is set to minutes here, so that only
// a report made again after the failed one can record the leader in time.
func TestLeaderRecordedOncePrimeIsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "x", "c")
	d := c.addNode("x")
	for _, n := range c.nodes {
		n.opts = append(n.opts, zongzi.WithLeaderSweep(10*time.Minute))
	}
	defer c.stop()
	c.startAll(ctx, c.nodes[:3]...)
	c.startAll(ctx, d)
	pa, pb, pc := c.nodes[0], c.nodes[1], c.nodes[2]
	s, _, err := pb.agent.ShardCreate(ctx, testType, zongzi.WithName("zone-x"), zongzi.WithPlacementMembers(2, "geo:zone=x"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the shard's members active", func() bool { return allActive(pb.agent.State(), s.ID, 2) })
	members := map[uint64]*zongzi.Agent{replicaOn(t, pb.agent, s.ID): pb.agent, replicaOn(t, d.agent, s.ID): d.agent}
	if len(members) != 2 {
		t.Fatalf("the shard's members are not on b and d: %v", pb.agent.State().ShardReplicas(s.ID))
	}

	// The prime shard is led by a, so that b's prime replica, left alone,
	// holds no proposal that would commit once a and c are back.
	primeA := replicaOn(t, pa.agent, 0)
	waitFor(t, settle, "a leads the prime shard", func() bool {
		if leader, _ := pa.agent.Client(0).Leader(); leader == primeA {
			return true
		}
		_ = pa.agent.NodeHost().RequestLeaderTransfer(0, primeA)
		return false
	})
	pa.agent.Stop()
	pc.agent.Stop()
	waitFor(t, settle, "the prime shard without a leader", func() bool {
		leader, _ := pb.agent.Client(0).Leader()
		return leader == 0
	})

	// The shard's leadership moves to its other member.
	old, _ := pb.agent.Client(s.ID).Leader()
	var next uint64
	for id := range members {
		if id != old {
			next = id
		}
	}
	waitFor(t, settle, "the shard's leadership moved", func() bool {
		if leader, _ := members[next].Client(s.ID).Leader(); leader == next {
			return true
		}
		_ = members[next].NodeHost().RequestLeaderTransfer(s.ID, next)
		return false
	})
	// The new leader's report fails once its attempt (2 s) ends; the
	// prime shard must not be back before.
	time.Sleep(3 * time.Second)
	if rec, _ := members[next].State().Shard(s.ID); rec.Leader == next {
		t.Fatal("the new leader was recorded while the prime shard had no leader")
	}

	c.startAll(ctx, pa, pc)
	waitFor(t, settle, "the new leader recorded", func() bool {
		rec, _ := pb.agent.State().Shard(s.ID)
		return rec.Leader == next
	})
}
