package zongzi_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestUnsatisfiedPlacementLoggedAndCleared: a shard whose placement cannot
// be met says why in its status, and the reason is logged, as the design
// says; it was only in the status. Once the request can be met the status
// is cleared and the replicas placed.
func TestUnsatisfiedPlacementLoggedAndCleared(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logs := &warnings{inner: slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn})}
	c := newCluster(t, "a", "b", "c")
	for _, n := range c.nodes {
		n.opts = append(n.opts, zongzi.WithLogger(slog.New(logs)))
	}
	defer c.stop()
	c.startAll(ctx, c.nodes...)
	a := c.nodes[0].agent
	s, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("four"),
		zongzi.WithPlacementMembers(4), zongzi.WithPlacementVary("geo:zone"))
	if err != nil {
		t.Fatal(err)
	}
	const reason = "members need 4 hosts with distinct geo:zone, have 3"
	waitFor(t, settle, "the reason in the shard's status", func() bool {
		got, _ := a.State().Shard(s.ID)
		return got.Status == zongzi.ShardStatusUnsatisfied+": "+reason
	})
	waitFor(t, settle, "the reason logged", func() bool { return logs.count(reason) > 0 })
	if n := len(a.State().ShardReplicas(s.ID)); n != 0 {
		t.Fatalf("%d replicas placed for an unsatisfiable shard, want none", n)
	}

	if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(3)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the shard active on 3 hosts", func() bool {
		got, _ := a.State().Shard(s.ID)
		return got.Status == zongzi.ShardStatusActive && allActive(a.State(), s.ID, 3)
	})
}
