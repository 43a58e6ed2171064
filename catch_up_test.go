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

// slowApplySM is logSM with a pause before each entry it applies.
type slowApplySM struct {
	*logSM
	pause time.Duration
}

func (s slowApplySM) Update(entries []zongzi.Entry) []zongzi.Entry {
	time.Sleep(time.Duration(len(entries)) * s.pause)
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
	c := newCluster(t, "a", "b", "c")
	for _, n := range c.nodes {
		n.register = registerCatch(0, nil)
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	a1 := c.nodes[0].agent
	s, _, err := a1.ShardCreate(ctx, testCatchType, zongzi.WithName("catch"),
		zongzi.WithPlacementMembers(3), zongzi.WithPlacementCover("geo:zone=d"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "three active members", func() bool { return allActive(a1.State(), s.ID, 3) })
	const writes = 30
	for i := range writes {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, _, err := a1.Client(s.ID).Apply(actx, fmt.Appendf(nil, "w%d", i))
		acancel()
		if err != nil {
			t.Fatal(err)
		}
	}

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
