package zongzi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// A watch forwarded to another host ends with ErrShardNotFound when its
// shard is deleted, as Watch says, as a watch on a local replica does
// (TestShardDelete): the host that served it knows why its replica
// stopped, and the caller's route, taken when the watch began, lists no
// other host that could tell.
func TestRemoteWatchOfDeletedShard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	s := createMembers(ctx, t, a1, "watched-away", 1)
	var caller *zongzi.Agent
	for _, n := range c.nodes {
		if len(replicasOn(n.agent, s.ID)) == 0 {
			caller = n.agent
			break
		}
	}
	watched := startWatch(ctx, t, caller.Client(s.ID))
	if err := a1.ShardDelete(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-watched:
		if !errors.Is(err, zongzi.ErrShardNotFound) {
			t.Errorf("remote watch of the deleted shard: %v, want ErrShardNotFound", err)
		}
	case <-time.After(settle):
		t.Error("the remote watch of the deleted shard goes on")
	}
}

// A watch forwarded to another host goes on at the host its shard's
// replica moves to, as Watch says: the caller takes its route again once
// the host it watched through can no longer serve it, instead of trying
// only the hosts that served the shard when the watch began.
func TestRemoteWatchFollowsMovedReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	s, _, err := a1.ShardCreate(ctx, testType, zongzi.WithName("moving"), zongzi.WithPlacementMembers(1, "geo:zone=a"))
	if err != nil {
		t.Fatal(err)
	}
	caller := c.nodes[2].agent // zone c: never a replica of the shard
	waitFor(t, settle, "the shard's member in zone a", func() bool { return allActive(caller.State(), s.ID, 1) })
	watched := startWatch(ctx, t, caller.Client(s.ID))
	if _, err := a1.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(1, "geo:zone=b")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the shard's member to move to zone b", func() bool {
		return len(replicasOn(c.nodes[0].agent, s.ID)) == 0 && len(replicasOn(c.nodes[1].agent, s.ID)) == 1 &&
			allActive(a1.State(), s.ID, 1)
	})
	select {
	case <-watching: // the watch went on at host b
	case err := <-watched:
		t.Fatalf("the watch ended when the replica moved: %v", err)
	case <-time.After(settle):
		t.Fatal("the watch did not go on at host b")
	}
	select {
	case err := <-watched:
		t.Fatalf("the watch ended: %v", err)
	default:
	}
}
