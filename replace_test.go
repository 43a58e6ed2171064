package zongzi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/zongzi-kv/zongzi"
)

// TestHostDeleteReplacesReplicas: when a host is gone and deleted from the
// registry, its member is replaced on a spare host of the same zone and the
// dead member leaves the shard's Raft membership.
func TestHostDeleteReplacesReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, s, gone, spare := startWithSpare(ctx, t, "replace")
	defer c.stop()
	a2 := c.nodes[1].agent // zone b: never the host deleted

	// Stop the zone-a member's host and delete it.
	goneID := gone.agent.HostID()
	gone.agent.Stop()
	if err := a2.HostDelete(ctx, goneID); err != nil {
		t.Fatal(err)
	}

	waitFor(t, settle, "member replaced on the spare host", func() bool {
		st := a2.State()
		if !allActive(st, s.ID, 3) {
			return false
		}
		voting, _ := zonesOf(st, s.ID)
		hosts := []string{}
		for _, r := range st.ShardReplicas(s.ID) {
			hosts = append(hosts, r.HostID)
		}
		return slices.Equal(sorted(voting), []string{"a", "b", "c"}) &&
			slices.Contains(hosts, spare.agent.HostID()) && !slices.Contains(hosts, goneID)
	})
	waitFor(t, settle, "dead member removed from the Raft membership", func() bool {
		m, ok := membership(ctx, a2.NodeHost(), s.ID)
		return ok && len(m.Nodes) == 3 && len(m.NonVotings) == 0
	})
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	if _, _, err := spare.agent.Client(s.ID).Apply(actx, []byte("after-replace")); err != nil {
		t.Fatalf("apply after replacement: %v", err)
	}
}

// TestWipedPeerRejoins: a peer whose data was wiped comes back with a new
// host ID; it replaces its old self in the registry and the prime shard's
// voting set instead of forming a second cluster, and gets its guest
// replicas back.
func TestWipedPeerRejoins(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	s := c.createActive(ctx, a1, testType, "wiped")

	n3 := c.nodes[2]
	oldID := n3.agent.HostID()
	n3.agent.Stop()
	if err := os.RemoveAll(n3.dir); err != nil {
		t.Fatal(err)
	}
	c.startAll(ctx, n3)
	newID := n3.agent.HostID()
	if newID == oldID {
		t.Fatal("wiped host kept its ID")
	}
	waitReplacedSelf(t, a1, oldID, s.ID)
	waitFor(t, settle, "prime shard back to 3 voters", func() bool {
		m, ok := membership(ctx, a1.NodeHost(), 0)
		return ok && len(m.Nodes) == 3 && len(m.NonVotings) == 0
	})
}

// TestShardUpdateAddsNonVotingCover: updating a shard's tags with a cover
// rule puts a non-voting replica on the matching host that has none; it
// joins the shard's Raft membership as non-voting and serves stale reads
// from its own copy.
func TestShardUpdateAddsNonVotingCover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, s, _, spare := startWithSpare(ctx, t, "cover")
	defer c.stop()
	a1 := c.nodes[1].agent // zone b: always a member
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	if _, _, err := a1.Client(s.ID).Apply(actx, []byte("before-cover")); err != nil {
		t.Fatal(err)
	}

	// The zone-a host without the zone's member gets the cover replica.
	if _, err := a1.ShardUpdate(ctx, s.ID, zongzi.WithPlacementCover("geo:zone=a")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "a non-voting cover replica on the spare host", func() bool {
		for _, r := range a1.State().ShardReplicas(s.ID) {
			if r.HostID == spare.agent.HostID() {
				return r.IsNonVoting && r.Status == "active"
			}
		}
		return false
	})
	waitFor(t, settle, "the spare host in the shard's membership as non-voting", func() bool {
		m, ok := membership(ctx, c.nodes[1].agent.NodeHost(), s.ID)
		return ok && len(m.Nodes) == 3 && len(m.NonVotings) == 1
	})
	waitFor(t, settle, "the spare host's own replica to catch up", func() bool {
		if _, _, ok, _ := spare.agent.NodeHost().GetLeaderID(s.ID); !ok {
			return false
		}
		v, err := spare.agent.NodeHost().StaleRead(s.ID, []byte(nil))
		r, _ := v.(*zongzi.Result)
		return err == nil && r != nil && string(r.Data) == "before-cover"
	})

	// Without the rule the replica is excess: removed from the registry,
	// the membership and the spare host.
	if _, err := a1.ShardUpdate(ctx, s.ID, zongzi.WithoutTag(zongzi.TagPlacementCover)); err != nil {
		t.Fatal(err)
	}
	member := a1
	waitFor(t, settle, "the cover replica removed everywhere", func() bool {
		if reps := a1.State().ShardReplicas(s.ID); len(reps) != 3 {
			return false
		}
		mctx, mcancel := context.WithTimeout(ctx, time.Second)
		defer mcancel()
		m, err := member.NodeHost().SyncGetShardMembership(mctx, s.ID)
		_, staleErr := spare.agent.NodeHost().StaleRead(s.ID, []byte(nil))
		return err == nil && len(m.NonVotings) == 0 && staleErr != nil
	})
}

// startWithSpare starts three peers in zones a, b and c and a fourth host
// in zone a, creates a shard with one member per zone, and returns the
// zone-a host that holds the member and the one that does not. The caller
// stops the cluster.
func startWithSpare(ctx context.Context, t *testing.T, name string) (c *cluster, s zongzi.Shard, member, spare *node) {
	t.Helper()
	c = startThreeZones(ctx, t)
	n4 := c.addNode("a")
	c.startAll(ctx, n4)
	s = c.createActive(ctx, c.nodes[1].agent, testType, name)
	member, spare = c.nodes[0], n4
	for _, r := range c.nodes[1].agent.State().ShardReplicas(s.ID) {
		if r.HostID == n4.agent.HostID() {
			member, spare = n4, c.nodes[0]
		}
	}
	return c, s, member, spare
}

// TestMembersMoveKeepTheirData moves a shard's only member from zone a to
// zone b with ShardUpdate: the new member joins the shard, and the writes
// made before the move are there after it. Replaced in the same plan as
// the old, the new member used to start a new, empty shard.
func TestMembersMoveKeepTheirData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	s, _, err := a1.ShardCreate(ctx, testType, zongzi.WithName("moving"), zongzi.WithPlacementMembers(1, "geo:zone=a"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the shard active", func() bool { return allActive(a1.State(), s.ID, 1) })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	for range 5 {
		if _, _, err := a1.Client(s.ID).Apply(wctx, []byte("before")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a1.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(1, "geo:zone=b")); err != nil {
		t.Fatal(err)
	}
	b := c.nodes[1].agent // zone b
	waitFor(t, settle, "the member moved to zone b", func() bool {
		reps := b.State().ShardReplicas(s.ID)
		return len(reps) == 1 && reps[0].HostID == b.HostID() && reps[0].Status == zongzi.ReplicaStatusActive
	})
	var count uint64
	waitFor(t, settle, "a read of the moved shard", func() bool {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		defer rcancel()
		n, _, err := b.Client(s.ID).Read(rctx, nil, false)
		count = n
		return err == nil
	})
	if count < 5 {
		t.Fatalf("the moved shard has %d entries, want the 5 written before the move", count)
	}
}

// TestMemberAfterCover creates a shard whose member has no host yet but
// whose cover has one: the cover replica is placed first. When a host for
// the member comes, the member starts the shard and the cover replica joins
// it. The member, newer than the cover replica, used to wait to join a
// shard that nobody had started.
func TestMemberAfterCover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	s, _, err := a1.ShardCreate(ctx, testType, zongzi.WithName("cover-first"),
		zongzi.WithPlacementMembers(1, "geo:zone=d"), zongzi.WithPlacementCover("geo:zone=a"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the cover replica placed", func() bool { return len(a1.State().ShardReplicas(s.ID)) == 1 })
	n4 := c.addNode("d")
	c.startAll(ctx, n4)
	waitFor(t, settle, "the member and the cover replica active", func() bool { return allActive(a1.State(), s.ID, 2) })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, _, err := a1.Client(s.ID).Apply(wctx, []byte("w")); err != nil {
		t.Fatal(err)
	}
}

// pinHostIDs gives every node of c a fixed Dragonboat host ID, as a user
// who addresses hosts by ID does, so a host whose data is wiped comes back
// under the same ID.
func pinHostIDs(c *cluster) {
	for i, n := range c.nodes {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012x", i+1)
		n.opts = append(n.opts, zongzi.WithHostConfig(config.NodeHostConfig{NodeHostID: id}))
	}
}

// TestWipedMemberKeepsAcknowledgedWrites: a member whose data was wiped
// while its host kept its ID must not vote again under its old replica ID
// with an empty log. Members A, B and C; B is down while writes are
// acknowledged by A and C; then C loses its data and A goes down. B and
// the wiped C come back: if C's empty replica votes, B leads without the
// acknowledged writes and they are lost, also on A once it is back.
func TestWipedMemberKeepsAcknowledgedWrites(t *testing.T) {
	testWipedMember(t, false)
}

// TestMemberWipedBeforeActiveKeepsAcknowledgedWrites is the same with C's
// data lost before its host marked C's replica active (its host is held
// from doing so): the replica had started, so it may hold acknowledged
// writes, and it must be replaced as an active one is.
func TestMemberWipedBeforeActiveKeepsAcknowledgedWrites(t *testing.T) {
	testWipedMember(t, true)
}

func testWipedMember(t *testing.T, beforeActive bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c", "d", "e") // d and e keep the prime shard's quorum
	pinHostIDs(c)
	for _, n := range c.nodes[:3] {
		n.opts = append(n.opts, zongzi.WithHostTags("tier=data"))
	}
	A, B, C := c.nodes[0], c.nodes[1], c.nodes[2]
	var held atomic.Bool
	held.Store(beforeActive)
	C.opts = append(C.opts, zongzi.WithActiveHeld(func(r zongzi.Replica) bool { return r.ShardID != 0 && held.Load() }))
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	d := c.nodes[3].agent
	s, _, err := d.ShardCreate(ctx, testType, zongzi.WithName("wiped-member"),
		zongzi.WithPlacementMembers(3, "tier=data"), zongzi.WithPlacementVary("geo:zone"))
	if err != nil {
		t.Fatal(err)
	}
	hostC := C.agent.HostID()
	waitFor(t, settle, "the shard running, C's replica held from active if asked", func() bool {
		reps := d.State().ShardReplicas(s.ID)
		for _, r := range reps {
			want := zongzi.ReplicaStatusActive
			if r.HostID == hostC && beforeActive {
				want = zongzi.ReplicaStatusStarted
			}
			if r.Status != want {
				return false
			}
		}
		_, _, led, _ := C.agent.NodeHost().GetLeaderID(s.ID)
		return len(reps) == 3 && led
	})
	var oldC uint64
	for _, r := range d.State().ShardReplicas(s.ID) {
		if r.HostID == hostC {
			oldC = r.ID
		}
	}
	write := func(n int) { // n acknowledged writes; a leader change may fail some
		t.Helper()
		for range n {
			writeEventually(ctx, t, A.agent, s.ID, "an acknowledged write")
		}
	}
	write(3)
	B.agent.Stop()
	write(3) // acknowledged by A and C only
	C.agent.Stop()
	if err := os.RemoveAll(C.dir); err != nil {
		t.Fatal(err)
	}
	A.agent.Stop()
	held.Store(false)

	c.startAll(ctx, B, C)
	if C.agent.HostID() != hostC {
		t.Fatalf("wiped host came back as %s, want %s", C.agent.HostID(), hostC)
	}
	waitFor(t, settle, "the shard led without A, or C's member replaced", func() bool {
		if _, _, ok, _ := B.agent.NodeHost().GetLeaderID(s.ID); ok {
			return true
		}
		for _, r := range d.State().ShardReplicas(s.ID) {
			if r.HostID == hostC && r.ID != oldC {
				return true
			}
		}
		return false
	})
	c.startAll(ctx, A)
	var count uint64
	waitFor(t, settle, "a linearizable read of the shard", func() bool {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		defer rcancel()
		n, _, err := A.agent.Client(s.ID).Read(rctx, nil, false)
		count = n
		return err == nil
	})
	if count < 6 {
		t.Fatalf("the shard has %d entries, want the 6 acknowledged", count)
	}
	waitFor(t, settle, "the wiped member replaced under a new ID", func() bool {
		st := d.State()
		if !allActive(st, s.ID, 3) {
			return false
		}
		for _, r := range st.ShardReplicas(s.ID) {
			if r.ID == oldC {
				return false
			}
		}
		return true
	})
}

// TestWipedPinnedPeerGetsANewPrimeReplica: a peer whose data was wiped
// while its host kept its ID rejoins the prime shard under a new replica
// ID; its old replica, whose log and vote are gone, leaves the voting set
// instead of voting again with an empty log.
func TestWipedPinnedPeerGetsANewPrimeReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreePinned(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	n3 := c.nodes[2]
	hostID := n3.agent.HostID()
	primeOf := func(st *zongzi.State) uint64 {
		for _, r := range st.HostReplicas(hostID) {
			if r.ShardID == 0 {
				return r.ID
			}
		}
		return 0
	}
	old := primeOf(a1.State())
	n3.agent.Stop()
	if err := os.RemoveAll(n3.dir); err != nil {
		t.Fatal(err)
	}
	c.startAll(ctx, n3)
	if n3.agent.HostID() != hostID {
		t.Fatalf("wiped host came back as %s, want %s", n3.agent.HostID(), hostID)
	}
	if id := primeOf(a1.State()); id == old {
		t.Fatalf("the wiped peer's prime replica kept its ID %d", id)
	}
	waitFor(t, settle, "the prime shard's voters without the wiped replica", func() bool {
		m, ok := membership(ctx, a1.NodeHost(), 0)
		if !ok {
			return false
		}
		_, stale := m.Nodes[old]
		return len(m.Nodes) == 3 && !stale && len(m.NonVotings) == 0
	})
}

// TestLateMemberJoinsWhenInitialMembersAreGone: a member placed on a host
// that is down, while the shard's first members are replaced one after the
// other (their hosts deleted), becomes the shard's oldest member. When its
// host comes back it must join the running shard, not start a new group
// of its own beside it (two groups of one shard, the new one empty).
func TestLateMemberJoinsWhenInitialMembersAreGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "a", "a", "a") // hD, hE, hF, hG: the peers
	for i, n := range c.nodes {
		n.opts = append(n.opts, zongzi.WithHostConfig(config.NodeHostConfig{NodeHostID: fmt.Sprintf("00000000-0000-4000-8000-%012x", 0x11+i)}))
	}
	firsts := []*node{c.addNode("a"), c.addNode("a"), c.addNode("a")} // h1, h2, h3: lowest IDs
	for i, n := range firsts {
		n.opts = append(n.opts, zongzi.WithHostConfig(config.NodeHostConfig{NodeHostID: fmt.Sprintf("00000000-0000-4000-8000-%012x", 1+i)}))
	}
	c.startAll(ctx, c.nodes[:4]...)
	c.startAll(ctx, firsts...)
	defer c.stop()
	hD, e := c.nodes[0], c.nodes[1].agent
	s, _, err := e.ShardCreate(ctx, testType, zongzi.WithName("late-member"), zongzi.WithPlacementMembers(3))
	if err != nil {
		t.Fatal(err)
	}
	on := func(n *node) (zongzi.Replica, bool) {
		for _, r := range e.State().ShardReplicas(s.ID) {
			if r.HostID == n.agent.HostID() {
				return r, true
			}
		}
		return zongzi.Replica{}, false
	}
	waitFor(t, settle, "the first members on h1, h2, h3", func() bool {
		for _, n := range firsts {
			if r, ok := on(n); !ok || r.Status != zongzi.ReplicaStatusActive {
				return false
			}
		}
		return true
	})
	for range 5 {
		writeEventually(ctx, t, e, s.ID, "an acknowledged write")
	}
	hDID := hD.agent.HostID()
	hD.agent.Stop()
	replaceFirst := func(n *node, by *node) {
		t.Helper()
		id := n.agent.HostID()
		n.agent.Stop()
		if err := e.HostDelete(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitFor(t, settle, "a member placed instead of "+id, func() bool {
			r, ok := on(by)
			return ok && (by == hD || r.Status == zongzi.ReplicaStatusActive)
		})
	}
	replaceFirst(firsts[0], hD) // hD is down: its member is never started
	if _, err := e.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(4)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "a fourth member active on hE", func() bool {
		r, ok := on(c.nodes[1])
		return ok && r.Status == zongzi.ReplicaStatusActive
	})
	replaceFirst(firsts[1], c.nodes[2])
	replaceFirst(firsts[2], c.nodes[3])

	c.startAll(ctx, hD)
	if hD.agent.HostID() != hDID {
		t.Fatalf("hD came back as %s", hD.agent.HostID())
	}
	waitFor(t, settle, "hD's member to have the shard's writes", func() bool {
		v, err := hD.agent.NodeHost().StaleRead(s.ID, []byte(nil))
		r, _ := v.(*zongzi.Result)
		return err == nil && r != nil && r.Value >= 5
	})
}

// TestWipedPeerRejoinsAfterFullRestart: the whole cluster restarts and one
// peer's data was wiped. The other peers rejoin from their data; the wiped
// one must join them as a new host, not form the prime shard again (it
// would start the old peer's replica ID with an empty log, and its own
// record would never be in the registry).
func TestWipedPeerRejoinsAfterFullRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	s := c.createActive(ctx, c.nodes[0].agent, testType, "wiped-restart")
	n3 := c.nodes[2]
	oldID := n3.agent.HostID()
	c.stop()
	if err := os.RemoveAll(n3.dir); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 45*time.Second)
	defer scancel()
	c.startAll(sctx, c.nodes...)
	a1 := c.nodes[0].agent
	waitReplacedSelf(t, a1, oldID, s.ID)
}

// nopSM is a regular state machine that keeps nothing.
type nopSM struct{}

func (nopSM) Update(e sm.Entry) (sm.Result, error)                                      { return sm.Result{Value: 1}, nil }
func (nopSM) Lookup(any) (any, error)                                                   { return nil, nil }
func (nopSM) SaveSnapshot(io.Writer, sm.ISnapshotFileCollection, <-chan struct{}) error { return nil }
func (nopSM) RecoverFromSnapshot(io.Reader, []sm.SnapshotFile, <-chan struct{}) error   { return nil }
func (nopSM) Close() error                                                              { return nil }

// nopRegistry resolves no replica: a host that sends nothing.
type nopRegistry struct{}

func (nopRegistry) Create(string, uint64, config.TargetValidator) (raftio.INodeRegistry, error) {
	return nopRegistry{}, nil
}
func (nopRegistry) Close() error               { return nil }
func (nopRegistry) Add(uint64, uint64, string) {}
func (nopRegistry) Remove(uint64, uint64)      {}
func (nopRegistry) RemoveShard(uint64)         {}
func (nopRegistry) Resolve(uint64, uint64) (string, string, error) {
	return "", "", errors.New("no address")
}

// TestPeerStoppedWhileFormingRejoins: a peer that started its replica of
// the new prime shard and stopped before the registry was initialised
// restarts from that replica while the other peers have not formed yet.
// They must still form the prime shard with it, not wait forever for a
// cluster that never existed.
func TestPeerStoppedWhileFormingRejoins(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	pinHostIDs(c)
	peers := slices.Sorted(slices.Values(c.peers))
	x := c.nodes[0]
	members := map[uint64]string{}
	var self uint64
	for i, p := range peers {
		for j, n := range c.nodes {
			if n.api == p {
				members[uint64(i+1)] = fmt.Sprintf("00000000-0000-4000-8000-%012x", j+1)
				if n == x {
					self = uint64(i + 1)
				}
			}
		}
	}
	// x's state after it formed: its prime replica, started with the
	// peers as initial members, and its record of it.
	logDB := config.GetTinyMemLogDBConfig()
	logDB.Shards = 1 // as the agent's
	nh, err := dragonboat.NewNodeHost(config.NodeHostConfig{
		NodeHostDir: x.dir, RTTMillisecond: 20, RaftAddress: x.raft, NodeHostID: members[self],
		Expert: config.ExpertConfig{NodeRegistryFactory: nopRegistry{}, LogDB: logDB},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = nh.StartReplica(members, false, func(uint64, uint64) sm.IStateMachine { return nopSM{} },
		config.Config{ShardID: 0, ReplicaID: self, ElectionRTT: 10, HeartbeatRTT: 2})
	nh.Close()
	if err != nil {
		t.Fatal(err)
	}
	rec := fmt.Sprintf(`{"replicaID":%d,"nonVoting":false}`, self)
	if err := os.WriteFile(filepath.Join(x.dir, "zongzi-prime.json"), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	c.startAll(sctx, c.nodes...)
	defer c.stop()
	if n := c.nodes[1].agent.State().HostCount(); n != 3 {
		t.Fatalf("registry has %d hosts, want 3", n)
	}
}

// waitReplacedSelf waits until a's registry holds no host oldID, three
// hosts, and the shard's three members active, one in each of zones a, b
// and c: a wiped peer has replaced its old self.
func waitReplacedSelf(t *testing.T, a *zongzi.Agent, oldID string, shardID uint64) {
	t.Helper()
	waitFor(t, settle, "wiped peer to replace its old self", func() bool {
		st := a.State()
		_, oldThere := st.Host(oldID)
		voting, _ := zonesOf(st, shardID)
		return !oldThere && st.HostCount() == 3 && allActive(st, shardID, 3) &&
			slices.Equal(sorted(voting), []string{"a", "b", "c"})
	})
}

// TestJoinAtALiveHostsAddressIsRefused: a new host that gives the API
// address of a registered host that still answers there (two processes
// given one address by mistake) is refused; the registered host is not
// taken for a wiped one and deleted with its replicas.
func TestJoinAtALiveHostsAddressIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	id1 := a1.HostID()

	n4 := c.addNode("a")
	logs := &warnings{inner: slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn})}
	n4.opts = []zongzi.AgentOption{zongzi.WithAddrApi(c.nodes[0].api, n4.api), zongzi.WithLogger(slog.New(logs))}
	a4, err := c.newAgent(n4)
	if err != nil {
		t.Fatal(err)
	}
	defer a4.Stop()
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := a4.Start(sctx); err == nil {
		t.Fatal("a host at a live host's API address started")
	}
	if logs.count("still answers") == 0 {
		t.Fatal("the joiner did not log a refusal that says the host at its address still answers")
	}
	for _, n := range c.nodes[:3] {
		if _, ok := n.agent.State().Host(id1); !ok {
			t.Fatalf("host %s was deleted from the registry of %s", id1, n.api)
		}
		if _, ok := n.agent.State().Host(a4.HostID()); ok {
			t.Fatalf("host %s at a live host's address was registered on %s", a4.HostID(), n.api)
		}
	}
}
