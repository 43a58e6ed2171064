package zongzi_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// testOpenCloseType is a persistent test state machine whose Close takes
// openCloseDelay, and which records an Open made on a host while a state
// machine of the same shard is still open there.
const testOpenCloseType = "zongzi://github.com/zongzi-kv/zongzi/test/open-close"

// openCloseDelay is longer than the waits of a host controller pass that
// can end while a stopped replica's state machine closes (SyncRemoveData's,
// twice): a pass that does not wait for Close starts the next replica
// before it.
const openCloseDelay = 10 * time.Second

// openTracker counts a host's open state machines by shard.
type openTracker struct {
	mu       sync.Mutex
	open     map[uint64][]uint64 // shard → replicas open
	overlaps []string
}

// openCloseSM is a diskSM that reports to its host's openTracker.
type openCloseSM struct {
	*diskSM
	tr             *openTracker
	shard, replica uint64
	opened         bool
}

func (s *openCloseSM) Open(stopc <-chan struct{}) (uint64, error) {
	s.tr.mu.Lock()
	if open := s.tr.open[s.shard]; len(open) > 0 {
		s.tr.overlaps = append(s.tr.overlaps, fmt.Sprintf("replica %d of shard %d opened while replicas %v were open", s.replica, s.shard, open))
	}
	s.tr.open[s.shard] = append(s.tr.open[s.shard], s.replica)
	s.opened = true
	s.tr.mu.Unlock()
	return s.diskSM.Open(stopc)
}

func (s *openCloseSM) Close() error {
	if !s.opened {
		return nil
	}
	time.Sleep(openCloseDelay)
	s.tr.mu.Lock()
	defer s.tr.mu.Unlock()
	s.tr.open[s.shard] = slices.DeleteFunc(s.tr.open[s.shard], func(id uint64) bool { return id == s.replica })
	return nil
}

// registerOpenClose registers testOpenCloseType on every node of c, each
// with its own tracker.
func registerOpenClose(c *cluster) map[*node]*openTracker {
	trackers := map[*node]*openTracker{}
	for _, n := range c.nodes {
		tr := &openTracker{open: map[uint64][]uint64{}}
		trackers[n] = tr
		n.register = func(a *zongzi.Agent) error {
			disk := newDiskSM(n.dir)
			return a.StateMachineRegisterPersistent(testOpenCloseType, func(shardID, replicaID uint64) zongzi.StateMachinePersistent {
				return &openCloseSM{diskSM: disk(shardID, replicaID).(*diskSM), tr: tr, shard: shardID, replica: replicaID}
			})
		}
	}
	return trackers
}

// TestReplicaOpensAfterPreviousClose: a replica of a shard that starts on
// a host right after another replica of that shard stopped there opens
// its state machine only once the old one has closed. Dragonboat closes a
// stopped replica's state machine later, on its own goroutine: a cover
// replica removed and placed again on the same host had its new state
// machine opened while the old one's Close ran, and a persistent state
// machine keeping its files by shard would have opened them twice.
func TestReplicaOpensAfterPreviousClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	spare := c.addNode("a")
	trackers := registerOpenClose(c)
	for _, n := range c.nodes { // what starts the new replica is its old one's Close, not a sweep
		n.opts = append(n.opts, zongzi.WithSweep(time.Hour))
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	a := c.nodes[1].agent // zone b: always a member
	s := c.createActive(ctx, a, testOpenCloseType, "open-close")
	for _, r := range a.State().ShardReplicas(s.ID) {
		if r.HostID == spare.agent.HostID() {
			spare = c.nodes[0]
		}
	}
	onSpare := func() (zongzi.Replica, bool) {
		for _, r := range a.State().ShardReplicas(s.ID) {
			if r.HostID == spare.agent.HostID() {
				return r, true
			}
		}
		return zongzi.Replica{}, false
	}

	if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithPlacementCover("geo:zone=a")); err != nil {
		t.Fatal(err)
	}
	var old zongzi.Replica
	waitFor(t, settle, "a cover replica active on the spare host", func() bool {
		r, ok := onSpare()
		old = r
		return ok && r.Status == "active"
	})
	if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithoutTag(zongzi.TagPlacementCover)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the cover replica deleted", func() bool {
		_, ok := onSpare()
		return !ok
	})
	if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithPlacementCover("geo:zone=a")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "a new cover replica active on the spare host", func() bool {
		r, ok := onSpare()
		return ok && r.ID != old.ID && r.Status == "active"
	})
	for n, tr := range trackers {
		tr.mu.Lock()
		for _, o := range tr.overlaps {
			t.Errorf("host %s: %s", n.api, o)
		}
		tr.mu.Unlock()
	}
}
