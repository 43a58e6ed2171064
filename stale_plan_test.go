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

func newStaleController() *staleController {
	return &staleController{planning: make(chan struct{}), release: make(chan struct{})}
}

// planning starts three hosts whose shard controller is ctrl, with sc its
// state and opts besides, creates the shard "planned", and returns once
// the controller makes its plan for it, which waits for sc.release.
func planning(ctx context.Context, t *testing.T, ctrl zongzi.ShardController, sc *staleController, opts ...zongzi.AgentOption) (*cluster, zongzi.Shard) {
	t.Helper()
	c := newCluster(t, "a", "b", "c")
	for _, n := range c.nodes {
		n.opts = append(append(n.opts, zongzi.WithShardController(ctrl)), opts...)
	}
	t.Cleanup(c.stop)
	c.startAll(ctx, c.nodes...)
	a := c.nodes[0].agent
	s, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("planned"))
	if err != nil {
		t.Fatal(err)
	}
	sc.shardID.Store(s.ID)
	if _, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("wakes-the-controller")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sc.planning:
	case <-time.After(30 * time.Second):
		close(sc.release)
		t.Fatal("the controller made no plan")
	}
	return c, s
}

// TestStalePlanRefused: a placement plan made from the registry as it was
// before another write applied is refused, not applied beside that write.
// A plan whose proposal timed out may commit after the next plan was made
// without it; the two must not both act (remove a member each, say).
func TestStalePlanRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrl := newStaleController()
	c, s := planning(ctx, t, ctrl, ctrl)
	defer c.stop()
	a := c.nodes[0].agent
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

// unchangedController plans shard shardID's status "placed" until it has
// it; its first such plan waits for the test to write to the registry.
type unchangedController struct {
	*staleController
}

func (c *unchangedController) Reconcile(st *zongzi.State) zongzi.Plan {
	c.calls.Add(1)
	id := c.shardID.Load()
	if s, ok := st.Shard(id); id == 0 || !ok || s.Status == "placed" {
		return zongzi.Plan{}
	}
	c.once.Do(func() {
		close(c.planning)
		<-c.release
	})
	return zongzi.Plan{Status: map[uint64]string{id: "placed"}}
}

// TestPlanRefusedByAnEntryThatChangedNothing: a plan refused because an
// entry applied after it was made is made again at once, even when that
// entry changed no record and so woke no one. kv1's nodes each create the
// same shards at start, and all but the first ShardCreate of a name are
// such entries: the replicas were placed a sweep (3 s) late.
func TestPlanRefusedByAnEntryThatChangedNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrl := &unchangedController{newStaleController()}
	// No sweep within the test: only a change or the retry can place.
	c, s := planning(ctx, t, ctrl, ctrl.staleController, zongzi.WithSweep(time.Hour))
	defer c.stop()
	a := c.nodes[0].agent
	index := a.State().Index()
	again, created, err := a.ShardCreate(ctx, testType, zongzi.WithName("planned"))
	close(ctrl.release)
	if err != nil {
		t.Fatal(err)
	}
	if created || again.ID != s.ID || again.Updated > index {
		t.Fatalf("creating the shard again changed it: %+v (created %v), registry at %d before", again, created, index)
	}
	waitFor(t, settle, "the shard's status set by a plan made again", func() bool {
		got, _ := a.State().Shard(s.ID)
		return got.Status == "placed"
	})
}
