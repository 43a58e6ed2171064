package zongzi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestReplicaStartsBesideStuckStops: a replica the registry assigns to a
// host starts and is marked active while the host fails, pass after pass,
// to take its replicas of shards that lost their quorum out of their
// membership: each try waits 3 s for a membership read. Made one after
// another before any start, eight such tries held every pass of the
// host's controller for 24 s.
func TestReplicaStartsBesideStuckStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a := c.nodes[0].agent
	var stuck []zongzi.Shard
	for i := range 8 {
		s, _, err := a.ShardCreate(ctx, testType, zongzi.WithName(fmt.Sprintf("stuck-%d", i)),
			zongzi.WithPlacementMembers(1, "geo:zone=b"), zongzi.WithPlacementCover("geo:zone=a"))
		if err != nil {
			t.Fatal(err)
		}
		stuck = append(stuck, s)
	}
	for _, s := range stuck {
		waitFor(t, settle, "a member and a cover replica of "+s.Name, func() bool { return allActive(a.State(), s.ID, 2) })
	}
	c.nodes[1].agent.Stop() // the shards' only member
	for _, s := range stuck {
		if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithoutTag(zongzi.TagPlacementCover)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range stuck {
		waitFor(t, settle, "the cover replica of "+s.Name+" removed", func() bool { return len(a.State().ShardReplicas(s.ID)) == 1 })
	}
	start := time.Now()
	s, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("new"), zongzi.WithPlacementMembers(1, "geo:zone=a"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the new shard's member active", func() bool { return allActive(a.State(), s.ID, 1) })
	t.Logf("active after %v", time.Since(start))
}
