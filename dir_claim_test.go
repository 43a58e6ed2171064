package zongzi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestSecondAgentOnTheSameRaftDir: a second agent of the process given
// the raft dir of a running one (a flag copied by mistake) fails to start,
// clearly, and the first one goes on. Dragonboat's lock on the dir is an
// fcntl lock, which a process always gets again: the second agent used to
// reach the log storage, whose own lock then made Pebble panic, and the
// whole process crashed. Once the first agent stops, the dir is free again.
func TestSecondAgentOnTheSameRaftDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, a := startOne(ctx, t)
	defer c.stop()
	n := c.addNode("b")
	n.dir = c.nodes[0].dir
	b, err := c.newAgent(n)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	err = b.Start(sctx)
	scancel()
	if !errors.Is(err, zongzi.ErrBootstrap) || !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Fatalf("Start of a second agent on the same raft dir: %v, want ErrBootstrap and ErrInvalidConfig", err)
	}
	if _, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("after")); err != nil {
		t.Fatalf("the first agent after the second failed: %v", err)
	}
	a.Stop()
	c.startAll(ctx, c.nodes[0])
	if _, ok := c.nodes[0].agent.State().ShardByName("after"); !ok {
		t.Fatal("the first agent's data, restarted on its dir, lost the shard created before")
	}
}
