package zongzi_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi"
)

// TestApplyPendingAtClose proposes on a shard's leader after its followers
// have stopped, so the proposal is in the leader's log but cannot commit,
// then stops the leader's host. The proposal may yet commit when the hosts
// come back, so Apply must report an unknown outcome, not the "shard not
// ready" that would have it sent to another host and applied twice.
func TestApplyPendingAtClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	// The leader must stay leader without its followers for as long as the
	// proposal waits; with CheckQuorum it would step down after an
	// election timeout (which leaves the proposal pending all the same,
	// but drops a proposal made after it).
	cfg := zongzi.DefaultReplicaConfig()
	cfg.CheckQuorum = false
	for _, n := range c.nodes {
		n.opts = []zongzi.AgentOption{zongzi.WithReplicaConfig(cfg)}
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	s := c.createActive(ctx, c.nodes[0].agent, testType, "pending")
	var lead *node
	waitFor(t, settle, "the shard's leader", func() bool {
		id := leaderHost(c.nodes, s.ID)
		for _, n := range c.nodes {
			if id != "" && n.agent.HostID() == id {
				lead = n
			}
		}
		return lead != nil
	})
	client := lead.agent.Client(s.ID)
	if _, _, err := client.Apply(ctx, []byte("first")); err != nil {
		t.Fatalf("first write: %v", err)
	}

	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if n != lead {
			wg.Go(n.agent.Stop)
		}
	}
	wg.Wait()
	actx, acancel := context.WithTimeout(ctx, 30*time.Second)
	defer acancel()
	errs := make(chan error, 1)
	go func() {
		_, _, err := client.Apply(actx, []byte("pending"))
		errs <- err
	}()
	time.Sleep(500 * time.Millisecond) // long enough to be in the log, far from the deadline
	select {
	case err := <-errs:
		t.Fatalf("the write returned without a quorum: %v", err)
	default:
	}
	lead.agent.Stop()
	err := <-errs
	if !errors.Is(err, zongzi.ErrOutcomeUnknown) || errors.Is(err, zongzi.ErrShardNotReady) {
		t.Fatalf("apply pending when its host stopped: %v, want %v", err, zongzi.ErrOutcomeUnknown)
	}
	// Forwarded writes fail with "bus <address>: …"; this one must have
	// gone to no other host.
	if strings.Contains(err.Error(), "bus ") {
		t.Fatalf("the pending write was sent on to another host: %v", err)
	}
	if actx.Err() != nil {
		t.Fatalf("apply returned only at its deadline: %v", err)
	}
}
