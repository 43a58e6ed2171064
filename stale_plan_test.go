package zongzi_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// staleController makes one plan while the registry moves on under it:
// once it has a shard, its next call waits until the test has written to
// the registry, then plans the shard's status "stale". Every other call
// plans nothing; calls counts them.
type staleController struct {
	shardID  atomic.Uint64
	calls    atomic.Int64
	planning chan struct{} // closed when the stale plan is being made
	release  chan struct{} // closed by the test after its write
	once     sync.Once
}

func (c *staleController) Reconcile(*zongzi.State) zongzi.Plan {
	c.calls.Add(1)
	id := c.shardID.Load()
	var p zongzi.Plan
	if id == 0 {
		return p
	}
	c.once.Do(func() {
		close(c.planning)
		<-c.release
		p.Status = map[uint64]string{id: "stale"}
	})
	return p
}

// TestStalePlanRefused: a placement plan made from the registry as it was
// before another write applied is refused, not applied beside that write.
// A plan whose proposal timed out may commit after the next plan was made
// without it; the two must not both act (remove a member each, say).
func TestStalePlanRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrl := &staleController{planning: make(chan struct{}), release: make(chan struct{})}
	c := newCluster(t, "a", "b", "c")
	for _, n := range c.nodes {
		n.opts = append(n.opts, zongzi.WithShardController(ctrl))
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	a := c.nodes[0].agent
	s, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("planned"))
	if err != nil {
		t.Fatal(err)
	}
	ctrl.shardID.Store(s.ID)
	if _, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("wakes-the-controller")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctrl.planning:
	case <-time.After(30 * time.Second):
		close(ctrl.release)
		t.Fatal("the controller made no plan")
	}
	if _, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("written-meanwhile")); err != nil {
		close(ctrl.release)
		t.Fatal(err)
	}
	calls := ctrl.calls.Load()
	close(ctrl.release)
	// The controller proposes its plan, which the leader's registry has
	// applied or refused, before it is called again.
	waitFor(t, settle, "the controller's next call", func() bool { return ctrl.calls.Load() > calls })
	for _, n := range c.nodes {
		if got, _ := n.agent.State().Shard(s.ID); got.Status == "stale" {
			t.Fatalf("host %s: the plan made before the last write applied", n.agent.HostID())
		}
	}
}
