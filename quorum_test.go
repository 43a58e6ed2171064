package zongzi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4"

	"github.com/zongzi-kv/zongzi"
)

// TestShrinkWithAMemberDownKeepsQuorum: members A, B and C (replica IDs
// in that order, by pinned host IDs); B's host is down and the shard
// commits with A and C. ShardUpdate asks for two members, and placement
// removes the newest, C, which is up: it knows nothing of B being down.
// Taken out of the Raft membership then, C would leave {A, B} with B
// down, a shard that can no longer commit (nor remove anyone) until B
// comes back. C must stay a member until its removal leaves a majority
// that is up: here until B is back.
func TestShrinkWithAMemberDownKeepsQuorum(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startThreePinned(ctx, t)
	defer c.stop()
	A, B, C := c.nodes[0], c.nodes[1], c.nodes[2]
	a := A.agent
	s := createMembers(ctx, t, a, "shrink", 3)
	write := func(what string) { t.Helper(); writeEventually(ctx, t, a, s.ID, what) }
	write("a write with every member up")
	B.agent.Stop()
	write("a write with B down")

	if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "C's member out of the registry", func() bool {
		for _, r := range a.State().ShardReplicas(s.ID) {
			if r.HostID == C.agent.HostID() {
				return false
			}
		}
		return len(a.State().ShardReplicas(s.ID)) == 2
	})
	time.Sleep(2 * time.Second) // C's host had time to act on it
	write("a write after the shrink, B still down")

	// Once B is back, C leaves the membership.
	c.startAll(ctx, B)
	waitFor(t, settle, "the membership down to A and B", func() bool {
		m, ok := membership(ctx, a.NodeHost(), s.ID)
		return ok && len(m.Nodes) == 2 && len(m.NonVotings) == 0
	})
	write("a write after C left")
}

// TestShrinkToOneWithAMemberDownRecovers: as above, down to one member.
// Placement drops C, then B: were C's removal to go first, {A, B} is left
// with B down, B's removal needs B, and when B's host comes back it
// removes B's data, since the registry no longer lists B. The shard
// would never commit again. With C kept until B is removed, A ends alone.
func TestShrinkToOneWithAMemberDownRecovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startThreePinned(ctx, t)
	defer c.stop()
	A, B := c.nodes[0], c.nodes[1]
	a := A.agent
	s := createMembers(ctx, t, a, "shrink-to-one", 3)
	B.agent.Stop()
	if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "one member in the registry", func() bool { return len(a.State().ShardReplicas(s.ID)) == 1 })
	time.Sleep(2 * time.Second) // the hosts had time to act on it
	c.startAll(ctx, B)
	writeEventually(ctx, t, a, s.ID, "a write with B back")
	waitFor(t, settle, "the membership down to A", func() bool {
		m, ok := membership(ctx, a.NodeHost(), s.ID)
		return ok && len(m.Nodes) == 1 && len(m.NonVotings) == 0
	})
}

// TestHostDeleteWithAMemberDownKeepsQuorum: HostDelete of a host that
// still runs (C), while another member's host (B) is down, drops C's
// replicas from the registry: its member of a guest shard, and its voter
// of the prime shard. Taken out of their Raft memberships, they would
// leave both shards with A up and B down: the guest shard could commit
// nothing, nor could the registry, of the whole cluster. They must stay
// until B is back.
func TestHostDeleteWithAMemberDownKeepsQuorum(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	A, B, C := c.nodes[0], c.nodes[1], c.nodes[2]
	a := A.agent
	s := createMembers(ctx, t, a, "host-delete", 3)
	B.agent.Stop()
	if err := a.HostDelete(ctx, C.agent.HostID()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // hosts had time to act on it
	writeEventually(ctx, t, a, s.ID, "a write to the guest shard, B down")
	waitFor(t, settle, "a registry write, B down", func() bool {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		defer wcancel()
		_, _, err := a.ShardCreate(wctx, testType, zongzi.WithName("after-delete"))
		return err == nil
	})
}

// TestHostDeletedWhileRunningGetsNoMember: HostDelete of a host that runs
// (C), every host up. Its replicas leave the registry, the prime one too,
// so the prime shard's leader removes C's prime replica from the prime
// shard: C can write the registry no more. C must then not register
// again: placement would put a member on it, which C would add to the
// shard's Raft membership (a host running the shard adds it) but could
// not mark started, nor so start. The shard would keep a voter that never
// runs, and lose its quorum when any other member fails; or, had C lost
// its prime replica before it saw the member, a member in the registry
// only, which placement counts and does not replace.
func TestHostDeletedWhileRunningGetsNoMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a := c.nodes[0].agent
	C := c.nodes[2]
	s := createMembers(ctx, t, a, "deleted-running", 3)
	if err := a.HostDelete(ctx, C.agent.HostID()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(15 * time.Second) // C's prime replica is removed, and anything placed on C tried
	running := map[uint64]bool{}
	for _, n := range c.nodes {
		for _, si := range n.agent.NodeHost().GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true}).ShardInfoList {
			if si.ShardID == s.ID {
				running[si.ReplicaID] = true
			}
		}
	}
	mctx, mcancel := context.WithTimeout(ctx, 5*time.Second)
	defer mcancel()
	m, err := a.NodeHost().SyncGetShardMembership(mctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for id, host := range m.Nodes {
		if !running[id] {
			t.Errorf("voting member %d on host %s does not run", id, host)
		}
	}
	for _, r := range a.State().ShardReplicas(s.ID) {
		if !running[r.ID] {
			t.Errorf("the registry lists replica %d on host %s (%s), which does not run", r.ID, r.HostID, r.Status)
		}
	}
}

// TestHostDeletesOfADownAndARunningHostLeaveOneMember: C is deleted while
// it runs and B is down, so C's members stay (TestHostDeleteWithAMember
// DownKeepsQuorum). B is gone for good and is deleted too. Removing B's
// members leaves A and C, both up: they must go. C's host is no longer in
// the registry, but it still runs and answers; were it taken as down,
// neither B's members (A and C left, C "down") nor C's (A and B left, B
// down) could ever leave, and the prime shard would lose its quorum as
// soon as C, told to be wiped, stops.
func TestHostDeletesOfADownAndARunningHostLeaveOneMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	A, B, C := c.nodes[0], c.nodes[1], c.nodes[2]
	a := A.agent
	s := createMembers(ctx, t, a, "two-deletes", 3)
	bID := B.agent.HostID()
	bReplicas := map[uint64]uint64{} // shard → B's replica
	for _, r := range a.State().HostReplicas(bID) {
		bReplicas[r.ShardID] = r.ID
	}
	if len(bReplicas) != 2 {
		t.Fatalf("B has replicas %v, want one of the prime shard and one of shard %d", bReplicas, s.ID)
	}
	B.agent.Stop()
	if err := a.HostDelete(ctx, C.agent.HostID()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // hosts had time to act on it
	if err := a.HostDelete(ctx, bID); err != nil {
		t.Fatal(err)
	}
	for shardID, id := range bReplicas {
		waitFor(t, settle, fmt.Sprintf("B's replica %d out of shard %d", id, shardID), func() bool {
			m, ok := membership(ctx, a.NodeHost(), shardID)
			if !ok {
				return false
			}
			_, voting := m.Nodes[id]
			return !voting
		})
	}
}

// TestHostDeletesAcrossARestartLeaveOneMember is
// TestHostDeletesOfADownAndARunningHostLeaveOneMember with A restarted
// between the deletes, and leading the prime shard when B is deleted. A
// restarted knew the API address of no host the registry had deleted
// before, so C, deleted while it runs, was down to it: B's prime replica
// (A and C left, C "down") never left while A led, nor C's (A and B left,
// B down), and the prime shard lost its quorum as soon as C stopped.
func TestHostDeletesAcrossARestartLeaveOneMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	A, B, C := c.nodes[0], c.nodes[1], c.nodes[2]
	bID, cID := B.agent.HostID(), C.agent.HostID()
	var pa uint64 // A's prime replica
	for _, r := range A.agent.State().HostReplicas(A.agent.HostID()) {
		if r.ShardID == 0 {
			pa = r.ID
		}
	}
	B.agent.Stop()
	if err := A.agent.HostDelete(ctx, cID); err != nil {
		t.Fatal(err)
	}
	A.agent.Stop()
	c.startAll(ctx, A)
	a := A.agent
	waitFor(t, settle, "A leading the prime shard", func() bool {
		if leader, _, ok, _ := a.NodeHost().GetLeaderID(0); ok && leader == pa {
			return true
		}
		_ = a.NodeHost().RequestLeaderTransfer(0, pa)
		return false
	})
	if err := a.HostDelete(ctx, bID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the prime shard down to A's replica", func() bool {
		m, ok := membership(ctx, a.NodeHost(), 0)
		if !ok {
			return false
		}
		_, self := m.Nodes[pa]
		return len(m.Nodes) == 1 && self
	})
}

// TestMembersByRaftAddressCountAsUp: in data written before replicas were
// addressed by host ID, a member's target is its host's raft address
// (Resolve still sends to it). Such members whose hosts answer are up:
// taken as down, every removal of a voting member in that data would wait
// forever.
func TestMembersByRaftAddressCountAsUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a := c.nodes[0].agent
	m := &dragonboat.Membership{Nodes: map[uint64]string{}} // the prime shard's, by raft address
	var last uint64
	for _, n := range c.nodes {
		for _, r := range a.State().HostReplicas(n.agent.HostID()) {
			if r.ShardID == 0 {
				m.Nodes[r.ID], last = n.raft, r.ID
			}
		}
	}
	if len(m.Nodes) != 3 {
		t.Fatalf("prime replicas %v, want one per host", m.Nodes)
	}
	if !zongzi.UpMajorityWithout(ctx, a, 0, m, last) {
		t.Errorf("with every host up, removing member %d of three recorded by raft address would leave no majority up", last)
	}
}

// TestHeldMemberRestartsAndKeepsItsData: as in TestShrinkWithAMemberDown
// KeepsQuorum, C left the registry but stays a voting member while B is
// down. C's host then restarts. C is still one of the three voters, and
// with B down the shard commits only with A and C: C's host must start C
// again from its data, not remove that data because the registry no
// longer lists C. Once B is back, C leaves the membership, and then its
// data goes.
func TestHeldMemberRestartsAndKeepsItsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startThreePinned(ctx, t)
	defer c.stop()
	A, B, C := c.nodes[0], c.nodes[1], c.nodes[2]
	a := A.agent
	s := createMembers(ctx, t, a, "held-restart", 3)
	cReplica := replicaOn(t, C.agent, s.ID)
	B.agent.Stop()
	if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "C's member out of the registry", func() bool {
		_, listed := a.State().Replica(cReplica)
		return !listed
	})
	time.Sleep(2 * time.Second) // C's host tried to remove it, and was held
	checkHeldRestart(ctx, t, c, a, s.ID, cReplica, C, B, "C")
}

// TestShrinkWithAMemberNotRunningKeepsQuorum: as in TestShrinkWithAMember
// DownKeepsQuorum, but B's host is up and answers, while B's replica does
// not run there (here Dragonboat stopped it behind the agent's back; a
// host without the shard's type registered is another way). B cannot
// vote, so C must stay a member: removed, it would leave {A, B}, a shard
// that commits nothing.
func TestShrinkWithAMemberNotRunningKeepsQuorum(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startThreePinned(ctx, t)
	defer c.stop()
	A, B, C := c.nodes[0], c.nodes[1], c.nodes[2]
	a := A.agent
	s := createMembers(ctx, t, a, "shrink-not-running", 3)
	bReplica, cReplica := replicaOn(t, B.agent, s.ID), replicaOn(t, C.agent, s.ID)
	if err := B.agent.NodeHost().StopReplica(s.ID, bReplica); err != nil {
		t.Fatal(err)
	}
	writeEventually(ctx, t, a, s.ID, "a write with B's replica stopped")

	if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "C's member out of the registry", func() bool {
		_, listed := a.State().Replica(cReplica)
		return !listed
	})
	time.Sleep(2 * time.Second) // C's host tried to remove it
	writeEventually(ctx, t, a, s.ID, "a write after the shrink, B's replica still stopped")
	mctx, mcancel := context.WithTimeout(ctx, 5*time.Second)
	defer mcancel()
	m, err := a.NodeHost().SyncGetShardMembership(mctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Nodes[cReplica]; !ok {
		t.Errorf("C's replica %d left the membership %v while B's did not run", cReplica, m.Nodes)
	}
}

// TestDeletedHostRestartsWithHeldMembers: HostDelete of C, which runs,
// while B is down, drops C's replicas from the registry, but they stay
// voting members of the guest shard and of the prime shard
// (TestHostDeleteWithAMemberDownKeepsQuorum). C's host then restarts. Its
// agent must start, though the registry no longer lists the host, and
// start its guest member again from its data, as for a shard that shrank
// (TestHeldMemberRestartsAndKeepsItsData): with B down, the guest shard
// commits only with A and C. Once B is back, C's member leaves.
func TestDeletedHostRestartsWithHeldMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startThreePinned(ctx, t)
	defer c.stop()
	A, B, C := c.nodes[0], c.nodes[1], c.nodes[2]
	a := A.agent
	s := createMembers(ctx, t, a, "deleted-host-restart", 3)
	cReplica := replicaOn(t, C.agent, s.ID)
	B.agent.Stop()
	if err := a.HostDelete(ctx, C.agent.HostID()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // C's host tried to remove its members, and was held
	checkHeldRestart(ctx, t, c, a, s.ID, cReplica, C, B, "C")
}

// TestDeletedHostRestartsAfterItsPrimeReplicaLeft: as in TestDeletedHost
// RestartsWithHeldMembers, but the prime replica of the deleted host D
// leaves the prime shard at once, while its guest member is held. D is
// not a peer, so its prime replica is non-voting, whose removal waits for
// no one; in a prime shard of five voters, one down, a voter's would not
// wait either. D's host then restarts: its prime replica applies its own
// removal from its log, and the prime shard never gives it a leader. It
// must start anyway and run its held member again: with B down, the guest
// shard commits only with A and D.
func TestDeletedHostRestartsAfterItsPrimeReplicaLeft(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	A, B := c.nodes[0], c.nodes[1]
	D := c.addNode("d") // not a peer: it joins the prime shard as non-voting
	for _, n := range []*node{A, B, D} {
		n.opts = append(n.opts, zongzi.WithHostTags("member"))
	}
	defer c.stop()
	c.startAll(ctx, c.nodes[:3]...)
	c.startAll(ctx, D)
	a := A.agent
	s, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("prime-left"), zongzi.WithPlacementMembers(3, "member"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "three active members", func() bool { return allActive(a.State(), s.ID, 3) })
	dReplica, dPrime := replicaOn(t, D.agent, s.ID), primeReplicaOf(a.State(), D.agent.HostID())
	B.agent.Stop()
	if err := a.HostDelete(ctx, D.agent.HostID()); err != nil {
		t.Fatal(err)
	}
	waitPrimeReplicaOut(ctx, t, a, dPrime, "D")
	writeEventually(ctx, t, a, s.ID, "a write with D deleted and B down")
	checkHeldRestart(ctx, t, c, a, s.ID, dReplica, D, B, "D")
}

// TestHostDeletedWhileDownFailsToStart: a host deleted while down, whose
// prime replica the others took out of the prime shard meanwhile, fails
// to start and says why. Its prime replica never applied its removal, and
// no member sends to it any more: no leader comes, and its registry never
// learns the deletion. Start used to wait for a leader until its ctx
// ended.
func TestHostDeletedWhileDownFailsToStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	D := c.addNode("d") // not a peer: it joins the prime shard as non-voting
	defer c.stop()
	c.startAll(ctx, c.nodes...)
	a := c.nodes[0].agent
	dPrime := primeReplicaOf(a.State(), D.agent.HostID())
	D.agent.Stop()
	if err := a.HostDelete(ctx, D.agent.HostID()); err != nil {
		t.Fatal(err)
	}
	waitPrimeReplicaOut(ctx, t, a, dPrime, "D")
	// The others' raft connections to D dial it again for up to 5 s to send
	// what they had for it (raftnet): D, back sooner, would get the entries
	// that delete it, and learn the deletion, which Start takes in its
	// stride (a warning). This test is of a host that never learns it.
	time.Sleep(6 * time.Second)
	d, err := c.newAgent(D)
	if err != nil {
		t.Fatal(err)
	}
	D.agent = d
	sctx, scancel := context.WithTimeout(ctx, settle)
	defer scancel()
	err = d.Start(sctx)
	if !errors.Is(err, zongzi.ErrBootstrap) || sctx.Err() != nil || !strings.Contains(err.Error(), "was deleted from the cluster") {
		t.Fatalf("Start of a host deleted while down: %v (ctx %v), want ErrBootstrap saying it was deleted", err, sctx.Err())
	}
}

// TestHostDeletedWhileDownRestartsAtOnce: a host deleted while down
// that comes back at once may get, from the others' raft connections, what
// they had queued for it: the entries that delete it, and a leader it
// then knows though it gets nothing more. Its Start ends all the same,
// within settle: with ErrBootstrap saying it was deleted, or, once it
// applied its deletion, ready, its registry without it. Start used to wait
// on its prime replica's read barrier until its ctx ended.
func TestHostDeletedWhileDownRestartsAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	D := c.addNode("d")
	defer c.stop()
	c.startAll(ctx, c.nodes...)
	a := c.nodes[0].agent
	for round := range 3 {
		dPrime := primeReplicaOf(a.State(), D.agent.HostID())
		D.agent.Stop()
		if err := a.HostDelete(ctx, D.agent.HostID()); err != nil {
			t.Fatal(err)
		}
		waitPrimeReplicaOut(ctx, t, a, dPrime, "D")
		d, err := c.newAgent(D)
		if err != nil {
			t.Fatal(err)
		}
		sctx, scancel := context.WithTimeout(ctx, settle)
		err = d.Start(sctx)
		scancel()
		_, listed := d.State().Host(d.HostID())
		switch {
		case err == nil && !listed:
		case errors.Is(err, zongzi.ErrBootstrap) && strings.Contains(err.Error(), "was deleted from the cluster"):
		default:
			t.Fatalf("round %d: Start of a host deleted while down, back at once: %v (listed %v), want it "+
				"to say it was deleted, or to be ready knowing it", round, err, listed)
		}
		d.Stop()
		// A new host in D's place, for the next round.
		D.dir = filepath.Join(t.TempDir(), "raft")
		c.startAll(ctx, D)
	}
}

// checkHeldRestart restarts the host of held, whose member id of the shard
// the registry deleted but whose removal waits while down's host is down. With
// down still down, the shard must commit through a (held's member runs
// again and votes), and held's host must keep that member's data. Once
// down is back, held's member leaves the membership, then its data goes.
func checkHeldRestart(ctx context.Context, t *testing.T, c *cluster, a *zongzi.Agent, shardID, id uint64, held, down *node, name string) {
	t.Helper()
	held.agent.Stop()
	sctx, scancel := context.WithTimeout(ctx, settle)
	defer scancel()
	c.startAll(sctx, held)
	writeEventually(ctx, t, a, shardID, fmt.Sprintf("a write with %s restarted and its peer down", name))
	if !held.agent.NodeHost().HasNodeInfo(shardID, id) {
		t.Fatalf("%s's host removed the data of replica %d, a voting member", name, id)
	}

	c.startAll(ctx, down)
	waitFor(t, settle, name+" out of the membership", func() bool {
		m, ok := membership(ctx, a.NodeHost(), shardID)
		if !ok {
			return false
		}
		_, member := m.Nodes[id]
		return !member && len(m.Nodes) == 2
	})
	waitFor(t, settle, name+"'s data removed", func() bool { return !held.agent.NodeHost().HasNodeInfo(shardID, id) })
	writeEventually(ctx, t, a, shardID, "a write after "+name+" left")
}

// waitPrimeReplicaOut waits until a's linearizable read of the prime
// shard's membership lists replica id, that of the host named name, in no
// role.
func waitPrimeReplicaOut(ctx context.Context, t *testing.T, a *zongzi.Agent, id uint64, name string) {
	t.Helper()
	if id == 0 {
		t.Fatalf("%s has no prime replica", name)
	}
	waitFor(t, settle, name+"'s prime replica out of the prime shard", func() bool {
		m, ok := membership(ctx, a.NodeHost(), 0)
		if !ok {
			return false
		}
		_, voting := m.Nodes[id]
		_, nonVoting := m.NonVotings[id]
		_, witness := m.Witnesses[id]
		return !voting && !nonVoting && !witness
	})
}

// primeReplicaOf returns the ID of the host's prime replica in st, 0 if none.
func primeReplicaOf(st *zongzi.State, hostID string) uint64 {
	for _, r := range st.HostReplicas(hostID) {
		if r.ShardID == 0 {
			return r.ID
		}
	}
	return 0
}

// TestHeldRemovalWarnsOnce: a removal held for want of a majority up is
// tried again at every pass of the host controller, and said at Warn once,
// not at every pass while it stays held.
func TestHeldRemovalWarnsOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	pinHostIDs(c)
	logs := &warnings{inner: slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn})}
	C := c.nodes[2]
	C.opts = append(C.opts, zongzi.WithLogger(slog.New(logs)), zongzi.WithSweep(100*time.Millisecond))
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	a := c.nodes[0].agent
	s := createMembers(ctx, t, a, "held", 3)
	c.nodes[1].agent.Stop()
	if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithPlacementMembers(2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "C's removal held", func() bool { return logs.countAt(slog.LevelDebug, "removal held") > 0 })
	time.Sleep(2 * time.Second) // about 20 passes of C's host controller
	if n := logs.countAt(slog.LevelDebug, "removal held"); n < 5 {
		t.Fatalf("C's held removal was logged %d times in 2 s: it was not tried again at every pass", n)
	}
	if n := logs.count("removal held"); n != 1 {
		t.Fatalf("C's held removal was warned of %d times, want once", n)
	}
}

// TestOnlyMemberOfADeletedHostMoves: HostDelete of a running host that
// holds a shard's only member. The member placed instead joins the shard
// through the deleted host, which runs its member until it may leave, and
// the writes made before are there. It used to start a second, empty
// group under the shard's ID, as no replica the registry listed was
// active: the acknowledged writes were gone, and reads said so without an
// error.
func TestOnlyMemberOfADeletedHostMoves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	s, _, err := c.nodes[0].agent.ShardCreate(ctx, testType, zongzi.WithName("only"), zongzi.WithPlacementMembers(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the shard active", func() bool { return allActive(c.nodes[0].agent.State(), s.ID, 1) })
	deleted := c.nodes[0].agent.State().ShardReplicas(s.ID)[0].HostID
	other := c.nodes[0]
	if other.agent.HostID() == deleted {
		other = c.nodes[1]
	}
	const writes = 5
	applyAll(ctx, t, other.agent, s.ID, writes)
	if err := other.agent.HostDelete(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the member moved off the deleted host", func() bool {
		reps := other.agent.State().ShardReplicas(s.ID)
		return len(reps) == 1 && reps[0].HostID != deleted && reps[0].Status == zongzi.ReplicaStatusActive
	})
	var count uint64
	waitFor(t, settle, "a read of the moved shard", func() bool {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		defer rcancel()
		n, _, err := other.agent.Client(s.ID).Read(rctx, nil, false)
		count = n
		return err == nil
	})
	if count < writes {
		t.Fatalf("the shard has %d entries after its member moved, want the %d written before", count, writes)
	}
}
