package zongzi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi"
)

// TestGossipRestartOnNewRaftAddress: with gossip, replicas are addressed by
// host ID, so a host may come back on another raft address. It rejoins with
// its replicas, catches up, and the registry records its new address.
func TestGossipRestartOnNewRaftAddress(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	for _, n := range c.nodes {
		n.gossip = freeAddrs(t, 1)[0]
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	a1 := c.nodes[0].agent
	s := c.createActive(ctx, a1, testType, "g")

	n3 := c.nodes[2]
	hostID := n3.agent.HostID()
	before := replicaIDs(a1.State(), hostID)
	n3.agent.Stop()
	waitFor(t, settle, "a write acknowledged with one host down", func() bool {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		defer wcancel()
		_, _, err := a1.Client(s.ID).Apply(wctx, []byte("while-down"))
		if err != nil && !errors.Is(err, zongzi.ErrTimeout) && !errors.Is(err, zongzi.ErrShardNotReady) {
			t.Fatalf("apply with one host down: %v", err)
		}
		return err == nil
	})

	old := n3.raft
	n3.raft = freeAddrs(t, 1)[0]
	c.startAll(ctx, n3)
	if n3.agent.HostID() != hostID {
		t.Fatalf("restarted host has ID %s, want %s", n3.agent.HostID(), hostID)
	}
	if after := replicaIDs(n3.agent.State(), hostID); after != before {
		t.Fatalf("replicas after restart %s, before %s", after, before)
	}
	waitFor(t, settle, "the registry to record the new raft address "+n3.raft+" (was "+old+")", func() bool {
		h, ok := a1.State().Host(hostID)
		return ok && h.RaftAddress == n3.raft
	})
	// Only the new address reaches the host: catching up shows that the
	// leader found it there.
	waitFor(t, settle, "restarted replica to catch up", func() bool {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		defer rcancel()
		_, last, err := n3.agent.Client(s.ID).Read(rctx, nil, true)
		return err == nil && string(last) == "while-down"
	})
	// A linearizable read on the restarted host takes a round with the
	// leader, wherever the leader is.
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	if _, _, err := n3.agent.Client(s.ID).Read(rctx, nil, false); err != nil {
		t.Fatalf("linearizable read on the restarted host: %v", err)
	}
}
