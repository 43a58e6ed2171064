package zongzi_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
	"github.com/zongzi-kv/zongzi/internal/bus"
)

// testCatchType is logSM registered by the catch-up test: slow to apply
// on the host that joins late, fast elsewhere.
const testCatchType = "zongzi://github.com/zongzi-kv/zongzi/test/catch"

// slowApplySM is logSM with a pause before each entry it applies, but
// for the commands of fastCmd.
type slowApplySM struct {
	*logSM
	pause time.Duration
}

// fastCmd is a command that slowApplySM applies without its pause.
const fastCmd = "fast"

func (s slowApplySM) Update(entries []zongzi.Entry) []zongzi.Entry {
	for _, e := range entries {
		if string(e.Cmd) != fastCmd {
			time.Sleep(s.pause)
		}
	}
	return s.logSM.Update(entries)
}

// registerCatch registers testCatchType, applying each entry after pause.
// made, when not nil, gets the last state machine made.
func registerCatch(pause time.Duration, made *atomic.Pointer[logSM]) func(*zongzi.Agent) error {
	return func(a *zongzi.Agent) error {
		return a.StateMachineRegister(testCatchType, func(shardID, replicaID uint64) zongzi.StateMachine {
			s := newLogSM(shardID, replicaID).(*logSM)
			if made != nil {
				made.Store(s)
			}
			return slowApplySM{logSM: s, pause: pause}
		})
	}
}

// catchCluster starts hosts in zones a, b and c with testCatchType
// applying at once, and creates a shard of it with a member in each zone
// and a cover replica on a host of zone d, once its members are active.
// prepare, unless nil, gets the cluster before it starts.
func catchCluster(ctx context.Context, t *testing.T, name string, prepare func(*cluster)) (*cluster, zongzi.Shard) {
	t.Helper()
	c := newCluster(t, "a", "b", "c")
	if prepare != nil {
		prepare(c)
	}
	for _, n := range c.nodes {
		n.register = registerCatch(0, nil)
	}
	c.startAll(ctx, c.nodes...)
	t.Cleanup(c.stop)
	a1 := c.nodes[0].agent
	s, _, err := a1.ShardCreate(ctx, testCatchType, zongzi.WithName(name),
		zongzi.WithPlacementMembers(3), zongzi.WithPlacementVary("geo:zone"), zongzi.WithPlacementCover("geo:zone=d"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "three active members", func() bool { return allActive(a1.State(), s.ID, 3) })
	return c, s
}

// applyAll applies n commands to the shard through a, each within 5 s.
func applyAll(ctx context.Context, t *testing.T, a *zongzi.Agent, shardID uint64, n int) {
	t.Helper()
	for i := range n {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, _, err := a.Client(shardID).Apply(actx, fmt.Appendf(nil, "w%d", i))
		acancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// stopLeaderHost stops the node whose replica leads the shard, as the
// nodes agree, and returns its host ID and the nodes left running.
func stopLeaderHost(t *testing.T, nodes []*node, shardID uint64) (lead string, live []*node) {
	t.Helper()
	waitFor(t, settle, "the nodes to agree on the shard's leader", func() bool {
		lead = leaderHost(nodes, shardID)
		return lead != ""
	})
	for _, n := range nodes {
		if n.agent.HostID() == lead {
			n.agent.Stop()
		} else {
			live = append(live, n)
		}
	}
	return lead, live
}

// waitActiveOn waits until a's registry records the shard's replica on
// host hostID as active.
func waitActiveOn(t *testing.T, a *zongzi.Agent, shardID uint64, hostID, what string) {
	t.Helper()
	waitFor(t, settle, what, func() bool {
		for _, r := range a.State().ShardReplicas(shardID) {
			if r.HostID == hostID {
				return r.Status == zongzi.ReplicaStatusActive
			}
		}
		return false
	})
}

// TestCatchingUpReplicaLeavesRequestsToOthers: a replica that starts on a
// host and is still applying the shard's log leaves that host's requests
// to the replicas of other hosts, which have applied it: a stale read
// there sees the writes made before the replica started, and a write
// there does not wait for the replica to apply the whole log first. Other
// hosts' requests forwarded to that host are refused, and go elsewhere;
// the registry records the replica as active only once it caught up.
func TestCatchingUpReplicaLeavesRequestsToOthers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, s := catchCluster(ctx, t, "catch", nil)
	a1 := c.nodes[0].agent
	const writes = 30
	applyAll(ctx, t, a1, s.ID, writes)

	n4 := c.addNode("d")
	var sm4 atomic.Pointer[logSM]
	n4.register = registerCatch(100*time.Millisecond, &sm4) // 3 s to apply the log
	c.startAll(ctx, n4)
	a4 := n4.agent
	waitFor(t, settle, "the cover replica runs on the new host", func() bool { return zongzi.RunsReplica(a4, s.ID) })
	pool := bus.NewPool(zongzi.BusCodes)
	defer pool.Close()
	bctx, bcancel := context.WithTimeout(ctx, time.Second)
	count, _, err := pool.Read(bctx, n4.api, s.ID, nil, true, false)
	bcancel()
	if !errors.Is(err, zongzi.ErrShardNotReady) {
		t.Fatalf("stale read from another host of the new host's replica: %d commands, %v; want ErrShardNotReady", count, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, time.Second)
	count, last, err := a4.Client(s.ID).Read(rctx, nil, true)
	rcancel()
	if err != nil || count != writes {
		t.Fatalf("stale read on the new host: %d commands (last %q), %v; want %d", count, last, err, writes)
	}
	actx, acancel := context.WithTimeout(ctx, time.Second)
	_, _, err = a4.Client(s.ID).Apply(actx, []byte("from the new host"))
	acancel()
	if err != nil {
		t.Fatalf("write on the new host: %v", err)
	}
	// Marked active, it is one that others send requests to: only once it
	// has applied the log. What it applied is read just after the mark is
	// seen: marked as it started applying, it would have applied a few
	// commands by then, far from all.
	var applied uint64
	waitFor(t, settle, "the new host's replica marked active", func() bool {
		for _, r := range a1.State().ShardReplicas(s.ID) {
			if r.HostID == a4.HostID() && r.Status == zongzi.ReplicaStatusActive {
				applied = sm4.Load().Query(ctx, nil).Value
				return true
			}
		}
		return false
	})
	if applied < writes {
		t.Fatalf("the new host's replica was marked active when it had applied %d of %d commands", applied, writes)
	}
}

// TestLeadershipWaitsForCatchUp: with WithLeaderAffinity, the prime
// shard's leader asks for the leadership of a guest shard only once its
// replica there has caught up. A replica still applying the log skips the
// campaign a transfer asks of it (Dragonboat does while it has committed
// entries to apply), and the shard's leader drops every proposal until the
// transfer times out, an election timeout later; asked again every
// second, for as long as the replica caught up. Here a host restarts and
// replays the shard's log slowly, then leads the prime shard; the shard's
// leader, elsewhere, must drop no proposal while that replica catches up
// (it dropped nine in ten).
func TestLeadershipWaitsForCatchUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	for _, n := range c.nodes {
		n.opts = []zongzi.AgentOption{zongzi.WithLeaderAffinity()}
		n.register = registerCatch(0, nil)
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	s := c.createActive(ctx, c.nodes[0].agent, testCatchType, "lead-late")
	waitFor(t, settle, "the shard's leader on the prime shard's", func() bool {
		lead := leaderHost(c.nodes, 0)
		return lead != "" && leaderHost(c.nodes, s.ID) == lead
	})
	for i := range 60 { // what the restarted host replays: 6 s
		writeEventually(ctx, t, c.nodes[0].agent, s.ID, fmt.Sprintf("write %d", i))
	}

	// The host restarts, and replays the log at 100 ms a command.
	slow := c.nodes[0]
	for _, n := range c.nodes {
		if n.agent.HostID() != leaderHost(c.nodes, s.ID) {
			slow = n
		}
	}
	slow.agent.Stop()
	slow.register = registerCatch(100*time.Millisecond, nil)
	c.startAll(ctx, slow)
	var others []*node
	for _, n := range c.nodes {
		if n != slow {
			others = append(others, n)
		}
	}
	waitFor(t, settle, "the restarted host's replica running, and behind", func() bool {
		return zongzi.RunsReplica(slow.agent, s.ID) && !zongzi.CaughtUp(slow.agent, s.ID)
	})
	primeOn := replicaOn(t, slow.agent, 0)
	waitFor(t, settle, "the restarted host leading the prime shard", func() bool {
		_ = slow.agent.NodeHost().RequestLeaderTransfer(0, primeOn)
		leader, _ := slow.agent.Client(0).Leader()
		return leader == primeOn
	})

	// Proposals on the shard's leader, while the replica catches up (the
	// replica applies them without a pause). One dropped while the leader
	// changed (an election on a busy machine) does not count.
	var dropped, made int
	for end := time.Now().Add(settle); !zongzi.CaughtUp(slow.agent, s.ID); {
		if time.Now().After(end) {
			t.Fatalf("the restarted replica did not catch up within %v", settle)
		}
		var on *zongzi.Agent
		for _, n := range others {
			if n.agent.HostID() == leaderHost(others, s.ID) {
				on = n.agent
			}
		}
		if on == nil { // an election
			time.Sleep(10 * time.Millisecond)
			continue
		}
		leader, term := on.Client(s.ID).Leader()
		nh := on.NodeHost()
		rs, err := nh.Propose(nh.GetNoOPSession(s.ID), []byte(fastCmd), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		r := <-rs.ResultC()
		rs.Release()
		if zongzi.CaughtUp(slow.agent, s.ID) {
			break // a transfer may be under way now
		}
		if l, tm := on.Client(s.ID).Leader(); l != leader || tm != term {
			continue
		}
		made++
		if r.Dropped() {
			dropped++
		}
	}
	t.Logf("%d of %d proposals dropped while the restarted replica caught up", dropped, made)
	if made == 0 {
		t.Fatal("the restarted replica caught up before a proposal was made: the test showed nothing")
	}
	if dropped > 0 {
		t.Errorf("the shard's leader dropped %d of %d proposals while the replica on the prime shard's leader caught up", dropped, made)
	}
}
