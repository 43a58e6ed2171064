package zongzi_test

import (
	"context"
	"testing"
	"time"
)

// TestStateLinearizableWaitsForALeader: a linearizable read of the
// registry made while the prime shard has no leader (two of its three
// voters down) is tried again while its deadline leaves time, as a
// ShardClient's reads are, and is served once a voter is back. It used to
// fail at once; kv1's /_registry answered 503 in 0.09 s while a key's GET
// waited for its deadline.
func TestStateLinearizableWaitsForALeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	a, B := c.nodes[0].agent, c.nodes[1]
	B.agent.Stop()
	c.nodes[2].agent.Stop()
	read := make(chan error, 1)
	go func() {
		rctx, rcancel := context.WithTimeout(ctx, settle)
		defer rcancel()
		_, err := a.StateLinearizable(rctx)
		read <- err
	}()
	select {
	case err := <-read:
		t.Fatalf("registry read without a prime leader ended before a voter came back: %v", err)
	case <-time.After(time.Second):
	}
	c.startAll(ctx, B)
	if err := <-read; err != nil {
		t.Fatalf("registry read once a voter was back: %v", err)
	}
}
