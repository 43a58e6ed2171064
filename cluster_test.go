package zongzi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4"
	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi"
)

// settle is how long a test waits for the cluster to converge.
const settle = 30 * time.Second

// guestShards returns the replicas of the shard in the given state, with
// the zone of each replica's host.
func zonesOf(st *zongzi.State, shardID uint64) (voting, nonVoting []string) {
	for _, r := range st.ShardReplicas(shardID) {
		h, _ := st.Host(r.HostID)
		if r.IsNonVoting {
			nonVoting = append(nonVoting, h.Tags["geo:zone"])
		} else {
			voting = append(voting, h.Tags["geo:zone"])
		}
	}
	return voting, nonVoting
}

// allActive reports whether the shard has n replicas, all active.
func allActive(st *zongzi.State, shardID uint64, n int) bool {
	reps := st.ShardReplicas(shardID)
	for _, r := range reps {
		if r.Status != "active" {
			return false
		}
	}
	return len(reps) == n
}

func TestClusterPlacementJoinAndSnapshot(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()

	var shards []zongzi.Shard
	for i := range 2 {
		s, created, err := c.nodes[i].agent.ShardCreate(ctx, testType, zongzi.WithName(fmt.Sprintf("g%d", i)),
			zongzi.WithPlacementMembers(3, "geo:region=r1"), zongzi.WithPlacementVary("geo:zone"))
		if err != nil || !created || s.ID == 0 {
			t.Fatalf("create shard: %+v created=%v err=%v", s, created, err)
		}
		shards = append(shards, s)
	}
	a1 := c.nodes[0].agent
	for _, s := range shards {
		waitFor(t, settle, fmt.Sprintf("shard %d active on 3 hosts", s.ID), func() bool { return allActive(a1.State(), s.ID, 3) })
		voting, nonVoting := zonesOf(a1.State(), s.ID)
		if strings.Join(sorted(voting), ",") != "a,b,c" || len(nonVoting) != 0 {
			t.Fatalf("shard %d: voting zones %v, non-voting %v; want one member in each of a,b,c", s.ID, voting, nonVoting)
		}
	}

	// A fourth host in zone a is not a peer: it joins the prime shard as
	// non-voting and gets no member of the guest shards.
	n4 := c.addNode("a")
	c.startAll(ctx, n4)
	a4 := n4.agent
	waitFor(t, settle, "host 4 active in the registry", func() bool {
		h, ok := a1.State().Host(a4.HostID())
		return ok && h.Status == "active"
	})
	var primeReps int
	for _, r := range a1.State().HostReplicas(a4.HostID()) {
		if r.ShardID != 0 {
			t.Fatalf("host 4 got a replica of guest shard %d", r.ShardID)
		}
		if !r.IsNonVoting {
			t.Fatalf("host 4's prime replica %d is voting", r.ID)
		}
		primeReps++
	}
	if primeReps != 1 {
		t.Fatalf("host 4 has %d prime replicas, want 1", primeReps)
	}

	// Host 4 serves the guest shards by forwarding.
	for _, s := range shards {
		cl := a4.Client(s.ID)
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		idx, _, err := cl.Apply(cctx, []byte("from-4"))
		if err != nil || idx == 0 {
			t.Fatalf("apply through host 4: index %d, %v", idx, err)
		}
		for _, stale := range []bool{false, true} {
			n, last, err := cl.Read(cctx, nil, stale)
			if err != nil || (!stale && (n == 0 || string(last) != "from-4")) {
				t.Fatalf("read (stale=%v) through host 4: %d %q %v", stale, n, last, err)
			}
		}
		if _, last, err := cl.LeaderRead(cctx, nil); err != nil || string(last) != "from-4" {
			t.Fatalf("leader read through host 4: %q %v", last, err)
		}
		ccancel()
	}
	// A command over the bus's message limit is not sent, and says so.
	if _, _, err := a4.Client(shards[0].ID).Apply(ctx, make([]byte, 5<<20)); !errors.Is(err, zongzi.ErrTooLarge) {
		t.Fatalf("apply of 5 MiB through host 4: %v, want ErrTooLarge", err)
	}

	// A deadline closer than one raft tick (20 ms) is a timeout: Dragonboat
	// refuses such a proposal as too small a timeout.
	for _, commit := range []bool{false, true} {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Millisecond)
		var err error
		if commit {
			err = a1.Client(shards[0].ID).Commit(cctx, []byte("late"))
		} else {
			_, _, err = a1.Client(shards[0].ID).Apply(cctx, []byte("late"))
		}
		ccancel()
		if !errors.Is(err, zongzi.ErrTimeout) {
			t.Fatalf("write (commit=%v) with 5 ms left: %v, want ErrTimeout", commit, err)
		}
	}

	// A write from host 4 goes to the leader's host first, wherever the
	// leader is: the test state machine answers with the ID of the replica
	// that proposed it. The leader moves to each replica in turn.
	s0 := shards[0]
	cl := a4.Client(s0.ID)
	for _, r := range a1.State().ShardReplicas(s0.ID) {
		waitFor(t, settle, fmt.Sprintf("replica %d to lead shard %d, as host 4 sees it", r.ID, s0.ID), func() bool {
			if leader, _ := cl.Leader(); leader == r.ID {
				return true
			}
			_ = a1.NodeHost().RequestLeaderTransfer(s0.ID, r.ID)
			return false
		})
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		_, served, err := cl.Apply(cctx, []byte("from-4"))
		ccancel()
		if err != nil {
			t.Fatalf("apply through host 4: %v", err)
		}
		if leader, _ := cl.Leader(); leader == r.ID && string(served) != strconv.FormatUint(r.ID, 10) {
			t.Fatalf("a write from host 4 was proposed by replica %s, want the leader %d", served, r.ID)
		}
	}

	// The registry snapshot: header, 4 hosts, prime + guest shards, replicas.
	waitFor(t, settle, "host 4's registry to catch up", func() bool {
		return a4.State().Index() >= a1.State().Index()
	})
	st := a1.State()
	var buf bytes.Buffer
	if err := st.Save(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	var header struct {
		Index, Hosts, Shards, Replicas uint64
	}
	if err := json.Unmarshal([]byte(lines[0]), &header); err != nil {
		t.Fatalf("header %q: %v", lines[0], err)
	}
	wantReplicas := 4 + 3*len(shards)
	if header.Hosts != 4 || header.Shards != uint64(1+len(shards)) || header.Replicas != uint64(wantReplicas) {
		t.Fatalf("header %s: want 4 hosts, %d shards, %d replicas", lines[0], 1+len(shards), wantReplicas)
	}
	if len(lines) != 1+4+1+len(shards)+wantReplicas {
		t.Fatalf("snapshot has %d lines:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[5], `"id":0,`) || !strings.Contains(lines[5], `"name":"zongzi"`) {
		t.Fatalf("first shard line is not the prime shard: %s", lines[5])
	}
	loaded, err := zongzi.LoadState(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := loaded.Save(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != buf.String() {
		t.Fatalf("loaded state saves differently:\n%s\nvs\n%s", again.String(), buf.String())
	}
}

func TestShardCreateRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	for i := range rounds {
		name := fmt.Sprintf("race-%d", i)
		type res struct {
			s       zongzi.Shard
			created bool
			err     error
		}
		out := make([]res, len(c.nodes))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for j, n := range c.nodes {
			wg.Go(func() {
				<-start
				s, created, err := n.agent.ShardCreate(ctx, testType, zongzi.WithName(name))
				out[j] = res{s, created, err}
			})
		}
		close(start)
		wg.Wait()
		creators := 0
		for j, r := range out {
			if r.err != nil || r.s.ID == 0 || r.s.ID != out[0].s.ID || r.s.Name != name {
				t.Fatalf("round %d host %d: shard %+v, err %v; first host got %d", i, j, r.s, r.err, out[0].s.ID)
			}
			if r.created {
				creators++
			}
		}
		if creators != 1 {
			t.Fatalf("round %d: %d callers created the shard, want 1", i, creators)
		}
	}
}

// TestRestartRejoins stops a host and starts it again on another raft
// address: it rejoins with its replicas and catches up, and the registry
// records the new address. Replicas are addressed by host ID; the others
// find the host at its new address through gossip, or, without gossip,
// because its raft connections say where it listens (hostResolver), as
// the registry still has the old address until the host's update commits.
func TestRestartRejoins(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, gossip := range []bool{false, true} {
		t.Run(fmt.Sprintf("gossip=%v", gossip), func(t *testing.T) { testRestartRejoins(t, gossip) })
	}
}

func testRestartRejoins(t *testing.T, gossip bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	if gossip {
		for _, n := range c.nodes {
			n.gossip = freeAddrs(t, 1)[0]
		}
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	a1 := c.nodes[0].agent
	s := c.createActive(ctx, a1, testType, "r")

	n3 := c.nodes[2]
	hostID := n3.agent.HostID()
	before := replicaIDs(a1.State(), hostID)
	n3.agent.Stop()
	if got := n3.agent.Status(); got != zongzi.AgentStatusStopped {
		t.Fatalf("status after Stop: %v", got)
	}
	// Writes continue on the two others. A proposal forwarded to a leader
	// that just died is lost and times out (outcome unknown); the command
	// is idempotent here, so it is retried until one is acknowledged.
	waitFor(t, settle, "a write acknowledged with one host down", func() bool {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		defer wcancel()
		_, _, err := a1.Client(s.ID).Apply(wctx, []byte("while-down"))
		if err != nil && !errors.Is(err, zongzi.ErrTimeout) && !errors.Is(err, zongzi.ErrShardNotReady) {
			t.Fatalf("apply with one host down: %v", err)
		}
		return err == nil
	})

	// The host comes back on another raft address: the others learn it
	// from the host itself, by gossip or from its raft connections.
	n3.raft = freeAddrs(t, 1)[0]
	c.startAll(ctx, n3)
	if n3.agent.HostID() != hostID {
		t.Fatalf("restarted host has ID %s, want %s", n3.agent.HostID(), hostID)
	}
	if after := replicaIDs(n3.agent.State(), hostID); after != before {
		t.Fatalf("replicas after restart %s, before %s", after, before)
	}
	waitFor(t, settle, "the registry to record the raft address "+n3.raft, func() bool {
		h, ok := a1.State().Host(hostID)
		return ok && h.RaftAddress == n3.raft
	})
	// The restarted host catches up with the write made while it was down.
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
	waitFor(t, settle, "registries to converge", func() bool {
		return saved(t, a1.State()) == saved(t, n3.agent.State())
	})
}

func replicaIDs(st *zongzi.State, hostID string) string {
	var ids []string
	for _, r := range st.HostReplicas(hostID) {
		ids = append(ids, fmt.Sprintf("%d:%d", r.ShardID, r.ID))
	}
	return strings.Join(ids, ",")
}

func saved(t *testing.T, st *zongzi.State) string {
	var b bytes.Buffer
	if err := st.Save(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// TestJoinFromRegistrySnapshot: after more registry entries than the prime
// shard keeps in its log, a new host receives the registry as a Raft
// snapshot (the JSON-lines format) and ends up with the same registry.
func TestJoinFromRegistrySnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1,200 registry entries")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	for i := range 1200 {
		if _, _, err := a1.ShardCreate(ctx, testType, zongzi.WithName(fmt.Sprintf("s%04d", i))); err != nil {
			t.Fatal(err)
		}
	}
	n4 := c.addNode("a")
	c.startAll(ctx, n4)
	waitFor(t, settle, "host 4's registry equal to host 1's", func() bool {
		return saved(t, n4.agent.State()) == saved(t, a1.State())
	})
	if got := n4.agent.State().ShardCount(); got != 1201 {
		t.Fatalf("host 4 sees %d shards, want 1201", got)
	}
	// Host 4's log starts right after a snapshot: it took the registry as
	// one, not by replaying the log from its first entry.
	logs, err := n4.agent.NodeHost().GetLogReader(0)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := logs.GetRange()
	if snap := logs.Snapshot(); snap.Index == 0 || first != snap.Index+1 {
		t.Fatalf("host 4's prime log starts at %d after a snapshot at %d, want a snapshot just before it", first, snap.Index)
	}
}

// TestShardDelete deletes a guest shard: every host stops its replica and
// removes its data, the registry forgets it, and a watch of it ends.
// Deleting it again, or a shard that never was, is ErrShardNotFound.
func TestShardDelete(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	s := c.createActive(ctx, a1, testType, "doomed")
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, _, err := a1.Client(s.ID).Apply(wctx, []byte("w")); err != nil {
		t.Fatal(err)
	}
	replicas := map[*node]uint64{}
	for _, n := range c.nodes {
		ids := replicasOn(n.agent, s.ID)
		if len(ids) != 1 {
			t.Fatalf("host %s has replicas %v of the shard, want one", n.api, ids)
		}
		replicas[n] = ids[0]
	}
	// A watch on the shard ends when the replica serving it stops.
	watched := startWatch(ctx, t, a1.Client(s.ID))
	if err := a1.ShardDelete(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	running := func(nh *dragonboat.NodeHost, shardID uint64) bool {
		for _, si := range nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true}).ShardInfoList {
			if si.ShardID == shardID {
				return true
			}
		}
		return false
	}
	waitFor(t, settle, "every host to stop the shard and remove its data", func() bool {
		for n, id := range replicas {
			nh := n.agent.NodeHost()
			if _, ok := n.agent.State().Shard(s.ID); ok || running(nh, s.ID) || nh.HasNodeInfo(s.ID, id) {
				return false
			}
		}
		return true
	})
	select {
	case err := <-watched:
		if !errors.Is(err, zongzi.ErrShardNotFound) {
			t.Errorf("watch of the deleted shard: %v, want ErrShardNotFound", err)
		}
	case <-time.After(settle):
		t.Error("the watch of the deleted shard goes on")
	}
	for _, id := range []uint64{s.ID, s.ID + 1000} {
		if err := a1.ShardDelete(ctx, id); !errors.Is(err, zongzi.ErrShardNotFound) {
			t.Errorf("delete shard %d: %v, want ErrShardNotFound", id, err)
		}
	}
}

// TestIndexAfterSnapshotRecovery restarts a host whose replica recovers
// from a snapshot with no entry after it: its Index is the index it
// recovered to, not 0. Dragonboat applies no entry a snapshot covers, so
// the index travels in the snapshot.
func TestIndexAfterSnapshotRecovery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1, n3 := c.nodes[0].agent, c.nodes[2]
	s := c.createActive(ctx, a1, testType, "indexed")
	call := func() context.Context { // each call has its own deadline
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		t.Cleanup(ccancel)
		return cctx
	}
	var last uint64
	for range 5 {
		idx, _, err := a1.Client(s.ID).Apply(call(), []byte("w"))
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	// The test state machine answers a write with its count of entries:
	// read the index instead, on host 3, once it has applied them all.
	var want uint64
	waitFor(t, settle, "host 3 to apply the writes", func() bool {
		i, err := n3.agent.Client(s.ID).Index(call())
		want = i
		return err == nil && i >= last
	})
	if _, err := n3.agent.NodeHost().SyncRequestSnapshot(call(), s.ID, dragonboat.SnapshotOption{}); err != nil {
		t.Fatal(err)
	}
	n3.agent.Stop()
	c.startAll(ctx, n3)
	waitFor(t, settle, "host 3 to run its replica again", func() bool {
		_, _, ok, err := n3.agent.NodeHost().GetLeaderID(s.ID)
		return err == nil && ok
	})
	// A call made in the moment before host 3 lists its replica is
	// forwarded; the later ones are served by the recovered replica.
	for range 20 {
		got, err := n3.agent.Client(s.ID).Index(call())
		if err != nil || got < want {
			t.Fatalf("index on host 3 after it recovered from its snapshot: %d, %v; it was %d", got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestShardDeletedWhileHostDown deletes a shard while one of its hosts is
// stopped: when that host comes back, it removes its replica's data too.
func TestShardDeletedWhileHostDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1, n3 := c.nodes[0].agent, c.nodes[2]
	s := c.createActive(ctx, a1, testType, "deleted-while-down")
	ids := replicasOn(n3.agent, s.ID)
	if len(ids) != 1 {
		t.Fatalf("host 3 has replicas %v of the shard, want one", ids)
	}
	n3.agent.Stop()
	if err := a1.ShardDelete(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	c.startAll(ctx, n3)
	waitFor(t, settle, "host 3 to remove the deleted replica's data", func() bool {
		return !n3.agent.NodeHost().HasNodeInfo(s.ID, ids[0])
	})
}

// TestShardUpdatesKeepEachOther: ShardUpdate calls made at the same time
// on two hosts, each changing its own tag, all succeed and all their
// changes stay: none writes back the tags it read before the other's
// change.
func TestShardUpdatesKeepEachOther(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1, a2 := c.nodes[0].agent, c.nodes[1].agent
	s, _, err := a1.ShardCreate(ctx, testType, zongzi.WithName("updated"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the shard on the second host", func() bool { _, ok := a2.State().Shard(s.ID); return ok })
	const rounds = 10
	for i := range rounds {
		var wg sync.WaitGroup
		for j, a := range []*zongzi.Agent{a1, a2} {
			wg.Go(func() {
				if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithTag(fmt.Sprintf("k%d-%d", j, i), "v")); err != nil {
					t.Errorf("update %d on host %d: %v", i, j, err)
				}
			})
		}
		wg.Wait()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, _ := c.nodes[2].agent.State().Shard(s.ID)
		var missing []string
		for i := range rounds {
			for j := range 2 {
				if k := fmt.Sprintf("k%d-%d", j, i); got.Tags[k] != "v" {
					missing = append(missing, k)
				}
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("updated tags lost: %v", missing)
		}
	}
}
