package zongzi_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestAllPeersStoppedWhileFormingRestart: every peer starts its replica
// of the new prime shard and stops before the registry's first entry is
// committed (their Starts gave up together, or the machines went down).
// Restarted together, each finds its prime replica on disk and rejoins
// from it: one of them must still initialise the registry, or none ever
// becomes ready.
func TestAllPeersStoppedWhileFormingRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	// The peers first advertise raft addresses where no one listens: they
	// form, but no raft message gets through, so nothing is committed.
	for _, n := range c.nodes {
		n.opts = []zongzi.AgentOption{zongzi.WithAddrRaft(freeAddrs(t, 1)[0], n.raft)}
	}
	fctx, fcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		a, err := c.newAgent(n)
		if err != nil {
			t.Fatal(err)
		}
		n.agent = a
		wg.Go(func() { _ = a.Start(fctx) })
	}
	waitFor(t, settle, "every peer to start its prime replica", func() bool {
		for _, n := range c.nodes {
			if _, err := os.Stat(filepath.Join(n.dir, "zongzi-prime.json")); err != nil {
				return false
			}
		}
		return true
	})
	fcancel()
	wg.Wait()
	for _, n := range c.nodes {
		n.opts = nil
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	c.startAll(sctx, c.nodes...)
	defer c.stop()
	if n := c.nodes[1].agent.State().HostCount(); n != 3 {
		t.Fatalf("registry has %d hosts, want 3", n)
	}
}

// TestFullRestartOnNewRaftAddresses: every host of the cluster stops and
// comes back on another raft address (new machines, new pod IPs) with its
// data and its API address. The registry lists only the old raft
// addresses, and no host can reach another to say where it listens now:
// the hosts must find each other through their peers' API addresses.
func TestFullRestartOnNewRaftAddresses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	c.stop()
	for _, n := range c.nodes {
		n.raft = freeAddrs(t, 1)[0]
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	c.startAll(sctx, c.nodes...)
	a1 := c.nodes[0].agent
	waitFor(t, settle, "the registry to record the new raft addresses", func() bool {
		for _, n := range c.nodes {
			if h, ok := a1.State().Host(n.agent.HostID()); !ok || h.RaftAddress != n.raft {
				return false
			}
		}
		return true
	})
}

// startWithPeers creates the agents of nodes, the ith with the peer list
// peers[i] (c.peers when nil) and cluster name names[i] ("test" when ""),
// and starts them together. It returns each Start's error.
func (c *cluster) startWithPeers(ctx context.Context, nodes []*node, names []string, peers [][]string) []error {
	c.t.Helper()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		saved, savedName := c.peers, c.name
		if peers[i] != nil {
			c.peers = peers[i]
		}
		if names[i] != "" {
			c.name = names[i]
		}
		a, err := c.newAgent(n)
		c.peers, c.name = saved, savedName
		if err != nil {
			c.t.Fatal(err)
		}
		n.agent = a
		wg.Go(func() { errs[i] = a.Start(ctx) })
	}
	wg.Wait()
	return errs
}

// TestPeerListsDifferDoNotForm: one peer's list lacks another peer (a
// typo in its configuration). Replica IDs follow the sorted peer list, so
// that peer would start the prime shard under IDs the others give to
// other hosts, a prime shard of its own that can never elect a leader
// and that its data then keeps. No peer forms while the lists differ,
// and Start says why; once that peer has the right list, they form.
func TestPeerListsDifferDoNotForm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	defer c.stop()
	peers := slices.Sorted(slices.Values(c.peers))
	var wrong *node // the last peer in sorted order lacks the first
	for _, n := range c.nodes {
		if n.api == peers[2] {
			wrong = n
		}
	}
	others := slices.DeleteFunc(slices.Clone(c.nodes), func(n *node) bool { return n == wrong })
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	errs := c.startWithPeers(sctx, append(others, wrong), make([]string, 3), [][]string{nil, nil, peers[1:]})
	for i, err := range errs {
		if !errors.Is(err, zongzi.ErrBootstrap) {
			t.Fatalf("Start %d with differing peer lists: %v, want ErrBootstrap", i, err)
		}
	}
	if !strings.Contains(errs[2].Error(), "peer list") {
		t.Errorf("Start's error does not say the peer lists differ: %v", errs[2])
	}
	c.stop()
	c.startAll(ctx, c.nodes...)
	if n := c.nodes[0].agent.State().HostCount(); n != 3 {
		t.Fatalf("registry has %d hosts, want 3", n)
	}
}

// TestOtherClusterIsNotJoined: a host whose peer list names, by mistake,
// a host of another cluster must not join that cluster.
func TestOtherClusterIsNotJoined(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, _ := startOne(ctx, t)
	defer c.stop()
	for _, peer := range []bool{false, true} { // a non-peer joins; a peer forms or joins
		n := c.addNode("a")
		list := c.peers
		if peer {
			list = append(slices.Clone(c.peers), n.api)
		}
		sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
		errs := c.startWithPeers(sctx, []*node{n}, []string{"other"}, [][]string{list})
		scancel()
		if !errors.Is(errs[0], zongzi.ErrBootstrap) || !strings.Contains(errs[0].Error(), "cluster") {
			t.Fatalf("peer=%v: Start through a host of another cluster: %v, want ErrBootstrap naming the cluster", peer, errs[0])
		}
		if n := c.nodes[0].agent.State().HostCount(); n != 1 {
			t.Fatalf("peer=%v: the other cluster's registry has %d hosts, want 1", peer, n)
		}
	}
}

// TestRestartUnderAnotherClusterName: a host restarted on its data with
// another cluster name (a typo in -n, or the raft dir of another
// cluster) must not rejoin the cluster its data belongs to while it
// tells every other host, and refuses their joins, as a host of the
// other: Start says at once which cluster the data belongs to. Under its
// own name it rejoins.
func TestRestartUnderAnotherClusterName(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, _ := startOne(ctx, t)
	defer c.stop()
	c.stop()
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	errs := c.startWithPeers(sctx, c.nodes, []string{"other"}, [][]string{nil})
	scancel()
	if !errors.Is(errs[0], zongzi.ErrBootstrap) || !errors.Is(errs[0], zongzi.ErrInvalidConfig) ||
		!strings.Contains(errs[0].Error(), `cluster "test", not "other"`) {
		t.Fatalf("Start under another cluster name: %v, want ErrBootstrap and ErrInvalidConfig naming both clusters", errs[0])
	}
	c.nodes[0].agent.Stop()
	c.startAll(ctx, c.nodes...)
	if n := c.nodes[0].agent.State().HostCount(); n != 1 {
		t.Fatalf("registry has %d hosts after the restart under its own name, want 1", n)
	}
}

// TestRestartOnAnotherClustersData: a peer restarted on the raft dir of
// a host of another cluster of the same name (a dir reused or copied by
// mistake) has a prime replica whose members are that cluster's hosts.
// Start used to wait for them for good, or, as here where that prime
// shard had one member, become ready as a second cluster of that name
// with the peers' addresses. Its peers answer with prime replica IDs that
// its registry gives other hosts, which one cluster never does: Start
// fails at once and says so.
func TestRestartOnAnotherClustersData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	other, _ := startOne(ctx, t)
	defer other.stop()
	other.stop()
	c := startThreeZones(ctx, t)
	defer c.stop()
	// The other cluster's registry gives prime replica 1 to its host: the
	// restarted peer must not be the one that has replica 1 here.
	var n *node
	for _, m := range c.nodes {
		if m.api != slices.Min(c.peers) {
			n = m
		}
	}
	n.agent.Stop()
	n.dir = other.nodes[0].dir
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	errs := c.startWithPeers(sctx, []*node{n}, []string{""}, [][]string{nil})
	scancel()
	if !errors.Is(errs[0], zongzi.ErrInvalidConfig) || !strings.Contains(errs[0].Error(), "another cluster's data") {
		t.Fatalf("Start on another cluster's data: %v, want ErrInvalidConfig saying the data is another cluster's", errs[0])
	}
}

// TestEarlyPeerFormsWithTheLateOnes: one peer starts, the others a moment
// later (three terminals by hand). They find it and form the prime shard
// with it as one of replicas 1..N, and are ready before it asks them
// again (its retries to peers that were not up back off), so it finds
// them ready and joins. It used to join as a peer that lost its data: the
// replica of the forming was replaced by a new one, with two changes of
// the voting set, and it was ready seconds late. Its host ID is new, no
// replica ever ran under it, so it must take its replica of the forming.
func TestEarlyPeerFormsWithTheLateOnes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	defer c.stop()
	early := c.nodes[0]
	// It asks its peers again only once the others are ready.
	early.opts = []zongzi.AgentOption{zongzi.WithFormRetry(5 * time.Second)}
	a, err := c.newAgent(early)
	if err != nil {
		t.Fatal(err)
	}
	early.agent = a
	started := make(chan error, 1)
	go func() { started <- a.Start(ctx) }()
	waitFor(t, settle, "the early peer to ask its peers", func() bool { return a.Status() == zongzi.AgentStatusInitializing })
	time.Sleep(500 * time.Millisecond) // its first round: the others are not up
	lateStart := time.Now()
	c.startAll(ctx, c.nodes[1:]...)
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("the early peer's Start: %v", err)
		}
	case <-time.After(settle - time.Since(lateStart)):
		t.Fatalf("the early peer was not ready within %v of the others' start", settle)
	}
	var prime []uint64
	for _, r := range a.State().HostReplicas(a.HostID()) {
		if r.ShardID == 0 {
			prime = append(prime, r.ID)
		}
	}
	if len(prime) != 1 || prime[0] < 1 || prime[0] > uint64(len(c.nodes)) {
		t.Fatalf("the early peer has prime replicas %v, want one of the forming's 1..%d", prime, len(c.nodes))
	}
}

// TestHostWithALongerPeerListDoesNotVote: a host started with the
// cluster's peer list plus its own address (its configuration differs
// from the peers') is no peer of the cluster. It used to find the peers
// ready and join the prime shard as a voter, a member the peers' lists
// do not know of, which grew the voting set. The peers refuse it, and
// Start says that the peer lists differ.
func TestHostWithALongerPeerListDoesNotVote(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	d := c.addNode("d")
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	errs := c.startWithPeers(sctx, []*node{d}, []string{""}, [][]string{append(slices.Clone(c.peers), d.api)})
	scancel()
	if !errors.Is(errs[0], zongzi.ErrBootstrap) || !strings.Contains(errs[0].Error(), "peer lists differ") {
		t.Errorf("Start with a peer list naming itself that the peers' do not: %v, want ErrBootstrap saying the peer lists differ", errs[0])
	}
	mctx, mcancel := context.WithTimeout(ctx, 5*time.Second)
	defer mcancel()
	m, err := c.nodes[0].agent.NodeHost().SyncGetShardMembership(mctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Nodes) != 3 {
		t.Fatalf("prime shard has %d voters, want the 3 peers: %v", len(m.Nodes), m.Nodes)
	}
}
