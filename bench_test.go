package zongzi_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// benchConcurrency is how many requests the library benchmarks keep in
// flight, as `hey -c 64` does in make bench.
const benchConcurrency = 64

// BenchmarkShardClient measures ShardClient next to the raw Dragonboat
// calls it wraps, on one in-process cluster and in the same run: three
// voting hosts with a three-member shard, and a fourth host without a
// replica that forwards over the message bus. Sub-benchmarks are named
// op=…/on=…/via=raw|client, so that `benchstat -col /via` compares each
// client call with its raw call (make bench does).
func BenchmarkShardClient(b *testing.B) {
	if testing.Short() {
		b.Skip("starts a cluster")
	}
	bc := newBenchCluster(b)
	cmd := []byte("benchmark-command")
	query := []byte("q")
	// raw runs first, so benchstat takes it as the base column.
	pair := func(name string, client, raw func(ctx context.Context) error) {
		if raw != nil {
			b.Run(name+"/via=raw", func(b *testing.B) { runParallel(b, bc.term, raw) })
		}
		b.Run(name+"/via=client", func(b *testing.B) { runParallel(b, bc.term, client) })
	}
	hosts := []struct {
		role  string
		agent *zongzi.Agent
	}{{"leader", bc.leader}, {"follower", bc.follower}}
	for _, h := range hosts {
		c, nh := h.agent.Client(bc.shardID), h.agent.NodeHost()
		pair("op=Apply/on="+h.role,
			func(ctx context.Context) error { _, _, err := c.Apply(ctx, cmd); return err },
			func(ctx context.Context) error {
				_, err := nh.SyncPropose(ctx, nh.GetNoOPSession(bc.shardID), cmd)
				return err
			})
	}
	for _, h := range hosts {
		c, nh := h.agent.Client(bc.shardID), h.agent.NodeHost()
		pair("op=Read/on="+h.role,
			func(ctx context.Context) error { _, _, err := c.Read(ctx, query, false); return err },
			func(ctx context.Context) error { _, err := nh.SyncRead(ctx, bc.shardID, query); return err })
	}
	c, nh := bc.follower.Client(bc.shardID), bc.follower.NodeHost()
	pair("op=ReadStale/on=follower",
		func(ctx context.Context) error { _, _, err := c.Read(ctx, query, true); return err },
		func(context.Context) error { _, err := nh.StaleRead(bc.shardID, query); return err })
	fwd := bc.forwarder.Client(bc.shardID)
	pair("op=Apply/on=forwarder", func(ctx context.Context) error { _, _, err := fwd.Apply(ctx, cmd); return err }, nil)
	pair("op=Read/on=forwarder", func(ctx context.Context) error { _, _, err := fwd.Read(ctx, query, false); return err }, nil)
	pair("op=ReadStale/on=forwarder", func(ctx context.Context) error { _, _, err := fwd.Read(ctx, query, true); return err }, nil)
}

// runParallel runs op from benchConcurrency goroutines, each call with a
// deadline, and reports operations per second. Failed calls fail the
// benchmark, saying whether the shard's term changed meanwhile (term
// returns it): an election drops the proposals in flight, which then time
// out with their outcome unknown.
//
// It first waits, untimed, until op succeeds once. The stale reads before
// it are calls that never block: 64 goroutines of them starve the raft
// goroutines of this in-process cluster on two cores past the 200 ms
// election timeout, and the election that follows would otherwise take
// the next sub-benchmark's first calls with it.
func runParallel(b *testing.B, term func() uint64, op func(ctx context.Context) error) {
	waitFor(b, settle, "a first successful call", succeeds(op))
	before := term()
	b.SetParallelism((benchConcurrency + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var failed atomic.Int64
	var once sync.Once
	var first error
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := op(ctx)
			cancel()
			if err != nil {
				failed.Add(1)
				once.Do(func() { first = err })
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	if n := failed.Load(); n > 0 {
		b.Errorf("%d of %d calls failed (the shard's term: %d before, %d after); the first: %v", n, b.N, before, term(), first)
	}
}

// succeeds returns a condition for waitFor: a call of op, bounded by a
// second, succeeds.
func succeeds(op func(ctx context.Context) error) func() bool {
	return func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return op(ctx) == nil
	}
}

// benchCluster is the benchmarks' cluster: agents in zones a, b and c
// (the peers) and a fourth in zone a, one shard with a member in each
// zone, and the roles its hosts play for that shard.
type benchCluster struct {
	shardID   uint64
	leader    *zongzi.Agent // has the shard's leader replica
	follower  *zongzi.Agent // has a follower replica
	forwarder *zongzi.Agent // has no replica: forwards over the bus
}

// term returns the shard's term as the leader's host last saw it.
func (bc *benchCluster) term() uint64 {
	_, t := bc.leader.Client(bc.shardID).Leader()
	return t
}

// newBenchCluster starts the cluster, stopped when b ends.
func newBenchCluster(b *testing.B) *benchCluster {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, b)
	b.Cleanup(c.stop)
	s := c.createActive(ctx, c.nodes[0].agent, testType, "bench")
	n4 := c.addNode("a")
	c.startAll(ctx, n4)
	agents := []*zongzi.Agent{c.nodes[0].agent, c.nodes[1].agent, c.nodes[2].agent, n4.agent}
	bc := &benchCluster{shardID: s.ID}
	waitFor(b, settle, "host 4 active and the shard's leader known", func() bool {
		st := agents[0].State()
		h4, ok := st.Host(n4.agent.HostID())
		leader, _ := agents[0].Client(s.ID).Leader()
		if ok && h4.Status == "active" && leader != 0 {
			bc.assignRoles(st, agents, leader)
			return bc.leader != nil && bc.follower != nil && bc.forwarder != nil
		}
		return false
	})
	// One write from each role, retried until the cluster serves it.
	for _, a := range []*zongzi.Agent{bc.leader, bc.follower, bc.forwarder} {
		waitFor(b, settle, "a warm-up write from "+a.HostID(), succeeds(func(ctx context.Context) error {
			_, _, err := a.Client(s.ID).Apply(ctx, []byte("warm-up"))
			return err
		}))
	}
	// The first seconds of writes on a fresh cluster are slower, and would
	// count against whichever sub-benchmark ran first: load it beforehand.
	warm := bc.leader.Client(s.ID)
	warmUp(ctx, 2*time.Second, func(ctx context.Context) { _, _, _ = warm.Apply(ctx, []byte("warm-up")) })
	return bc
}

// warmUp calls op from benchConcurrency goroutines for d.
func warmUp(ctx context.Context, d time.Duration, op func(ctx context.Context)) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for range benchConcurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				op(ctx)
			}
		})
	}
	wg.Wait()
}

// assignRoles finds the hosts that lead, follow and have no replica of
// the shard whose leader replica is leader.
func (bc *benchCluster) assignRoles(st *zongzi.State, agents []*zongzi.Agent, leader uint64) {
	byHost := map[string]uint64{}
	for _, r := range st.ShardReplicas(bc.shardID) {
		byHost[r.HostID] = r.ID
	}
	for _, a := range agents {
		switch id, ok := byHost[a.HostID()]; {
		case !ok:
			bc.forwarder = a
		case id == leader:
			bc.leader = a
		default:
			bc.follower = a
		}
	}
}
