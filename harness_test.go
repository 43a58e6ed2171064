package zongzi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4"

	"github.com/zongzi-kv/zongzi"
	"github.com/zongzi-kv/zongzi/internal/freeport"
)

// testType is the shard type of the test state machine.
const testType = "zongzi://github.com/zongzi-kv/zongzi/test/log"

// logSM is a test state machine: it counts the commands applied and keeps
// the last one. Update returns the entry's index, and the ID of the replica
// that applied it as decimal Data, so a caller sees which replica served
// its proposal. Query returns the count and the last command.
type logSM struct {
	mu      sync.RWMutex
	replica []byte // this replica's ID, in decimal
	count   uint64
	last    []byte
}

func newLogSM(_, replicaID uint64) zongzi.StateMachine {
	return &logSM{replica: strconv.AppendUint(nil, replicaID, 10)}
}

func (s *logSM) Update(entries []zongzi.Entry) []zongzi.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range entries {
		s.count++
		s.last = bytes.Clone(entries[i].Cmd)
		entries[i].Result = zongzi.Result{Value: entries[i].Index, Data: s.replica}
	}
	return entries
}

// waitQuery is a query that logSM answers only once its ctx is done (or
// queriesUnblocked is closed), with Value 0.
const waitQuery = "wait-for-ctx"

// queriesUnblocked, once closed, ends every waitQuery.
var queriesUnblocked = make(chan struct{})

func (s *logSM) Query(ctx context.Context, q []byte) *zongzi.Result {
	if string(q) == waitQuery {
		select {
		case <-ctx.Done():
		case <-queriesUnblocked:
		}
		return &zongzi.Result{}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &zongzi.Result{Value: s.count, Data: bytes.Clone(s.last)}
}

// watching receives a value each time a test state machine starts a watch.
var watching = make(chan struct{}, 64)

// startWatch starts a stale watch of c's shard in a goroutine and returns
// once a test state machine has started it (or the test fails), with the
// channel that gets the watch's end. Watches of earlier tests that
// started meanwhile are drained first.
func startWatch(ctx context.Context, t *testing.T, c *zongzi.ShardClient) <-chan error {
	t.Helper()
	for len(watching) > 0 {
		<-watching
	}
	watched := make(chan error, 1)
	go func() { watched <- c.Watch(ctx, nil, make(chan *zongzi.Result), true) }()
	select {
	case <-watching:
	case err := <-watched:
		t.Fatalf("watch: %v", err)
	case <-time.After(settle):
		t.Fatal("the watch did not start")
	}
	return watched
}

func (s *logSM) Watch(ctx context.Context, _ []byte, _ chan<- *zongzi.Result) {
	select {
	case watching <- struct{}{}:
	default:
	}
	<-ctx.Done()
}

func (s *logSM) PrepareSnapshot() (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return [2]any{s.count, bytes.Clone(s.last)}, nil
}

func (s *logSM) SaveSnapshot(c any, w io.Writer, _ <-chan struct{}) error {
	v := c.([2]any)
	b := binary.AppendUvarint(nil, v[0].(uint64))
	_, err := w.Write(append(b, v[1].([]byte)...))
	return err
}

func (s *logSM) RecoverFromSnapshot(r io.Reader, _ <-chan struct{}) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return fmt.Errorf("bad snapshot")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count, s.last = n, b[k:]
	return nil
}

func (s *logSM) Close() error { return nil }

// node is one agent of a test cluster with the settings to restart it.
type node struct {
	zone   string
	api    string
	raft   string
	gossip string // empty: gossip off
	opts   []zongzi.AgentOption
	// register, when set, registers more state machine types on the agent.
	register func(*zongzi.Agent) error
	dir      string
	agent    *zongzi.Agent
}

// cluster is a set of agents on loopback in one process.
type cluster struct {
	t     testing.TB
	name  string // the cluster name, "test" when empty
	peers []string
	nodes []*node
}

// freeAddrs returns n loopback addresses with free ports.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs, err := freeport.Addrs(n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// newCluster prepares (without starting) peers in the given zones.
func newCluster(t testing.TB, zones ...string) *cluster {
	logTo(t)
	c := &cluster{t: t}
	for _, z := range zones {
		c.addNode(z)
	}
	for _, n := range c.nodes {
		c.peers = append(c.peers, n.api)
	}
	return c
}

func (c *cluster) addNode(zone string) *node {
	addrs := freeAddrs(c.t, 2)
	n := &node{zone: zone, api: addrs[0], raft: addrs[1], dir: filepath.Join(c.t.TempDir(), "raft")}
	c.nodes = append(c.nodes, n)
	return n
}

// newAgent creates the agent of n with the test state machine registered.
func (c *cluster) newAgent(n *node) (*zongzi.Agent, error) {
	log := slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := []zongzi.AgentOption{
		zongzi.WithAddrApi(n.api), zongzi.WithAddrRaft(n.raft), zongzi.WithDirRaft(n.dir),
		zongzi.WithHostTags("geo:region=r1", "geo:zone="+n.zone), zongzi.WithLogger(log),
	}
	if n.gossip != "" {
		opts = append(opts, zongzi.WithAddrGossip(n.gossip))
	}
	opts = append(opts, n.opts...)
	name := c.name
	if name == "" {
		name = "test"
	}
	a, err := zongzi.NewAgent(name, c.peers, opts...)
	if err != nil {
		return nil, err
	}
	// Tests stop their agents themselves; this stops one too when a test
	// fails before it could, e.g. while its cluster starts. It runs before
	// the agent's directory, made earlier, is removed.
	c.t.Cleanup(a.Stop)
	if err := a.StateMachineRegisterPersistent(testDiskType, newDiskSM(n.dir)); err != nil {
		return nil, err
	}
	if err := a.StateMachineRegisterPersistent(testStopOpenType, newStopOpenSM); err != nil {
		return nil, err
	}
	if err := a.StateMachineRegister(testStopSaveType, newStopSaveSM); err != nil {
		return nil, err
	}
	if err := a.StateMachineRegister(testSlowCloseType, newSlowCloseSM); err != nil {
		return nil, err
	}
	if err := a.StateMachineRegister(testNilType, newNilSM); err != nil {
		return nil, err
	}
	if n.register != nil {
		if err := n.register(a); err != nil {
			return nil, err
		}
	}
	return a, a.StateMachineRegister(testType, newLogSM)
}

// startAll starts the given nodes concurrently.
func (c *cluster) startAll(ctx context.Context, nodes ...*node) {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		wg.Go(func() {
			a, err := c.newAgent(n)
			if err != nil {
				errs <- err
				return
			}
			n.agent = a
			if err := a.Start(ctx); err != nil {
				errs <- fmt.Errorf("start %s: %w", n.api, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		c.t.Fatal(err)
	}
}

// stop stops every running agent.
func (c *cluster) stop() {
	for _, n := range c.nodes {
		if n.agent != nil {
			n.agent.Stop()
		}
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testLog is the test that cluster logs go to. Dragonboat keeps the first
// logger it is given for the rest of the process, so its logs would reach
// the first test's t.Log even after that test has ended, which panics;
// through testLog they reach the test that runs, or nothing between tests.
var testLog struct {
	mu sync.Mutex
	t  testing.TB
}

// logTo sends cluster logs to t until t ends.
func logTo(t testing.TB) {
	testLog.mu.Lock()
	testLog.t = t
	testLog.mu.Unlock()
	t.Cleanup(func() {
		testLog.mu.Lock()
		defer testLog.mu.Unlock()
		if testLog.t == t {
			testLog.t = nil
		}
	})
}

// testWriter sends logs to the running test's t.Log, so only failing tests
// are noisy.
type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) {
	testLog.mu.Lock()
	defer testLog.mu.Unlock()
	if testLog.t != nil {
		testLog.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

// startThreeZones starts three peers in zones a, b and c. The caller stops
// them (c.stop), before any goroutine leak check.
func startThreeZones(ctx context.Context, t testing.TB) *cluster {
	c := newCluster(t, "a", "b", "c")
	c.startAll(ctx, c.nodes...)
	return c
}

// startThreePinned is startThreeZones with host IDs pinned (pinHostIDs).
func startThreePinned(ctx context.Context, t testing.TB) *cluster {
	c := newCluster(t, "a", "b", "c")
	pinHostIDs(c)
	c.startAll(ctx, c.nodes...)
	return c
}

// startOne starts a cluster of one peer; the caller stops it (c.stop).
func startOne(ctx context.Context, t testing.TB) (*cluster, *zongzi.Agent) {
	c := newCluster(t, "a")
	c.startAll(ctx, c.nodes...)
	return c, c.nodes[0].agent
}

// createMembers creates a shard of the test type with n voting members,
// wherever placement puts them, and waits until they are active.
func createMembers(ctx context.Context, t testing.TB, a *zongzi.Agent, name string, n int) zongzi.Shard {
	t.Helper()
	s, _, err := a.ShardCreate(ctx, testType, zongzi.WithName(name), zongzi.WithPlacementMembers(n))
	if err != nil {
		t.Fatalf("create shard %s: %v", name, err)
	}
	waitFor(t, settle, fmt.Sprintf("%d active members of %s", n, name), func() bool { return allActive(a.State(), s.ID, n) })
	return s
}

// membership reads the shard's Raft membership on nh linearizably, within
// a second; ok is false when it could not.
func membership(ctx context.Context, nh *dragonboat.NodeHost, shardID uint64) (m *dragonboat.Membership, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m, err := nh.SyncGetShardMembership(ctx, shardID)
	return m, err == nil
}

// writeEventually waits for one acknowledged write to the shard through
// a, trying again while writes fail (no leader, or a change under way).
func writeEventually(ctx context.Context, t testing.TB, a *zongzi.Agent, shardID uint64, what string) {
	t.Helper()
	waitFor(t, settle, what, func() bool {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		defer wcancel()
		_, _, err := a.Client(shardID).Apply(wctx, []byte("w"))
		return err == nil
	})
}

// createActive creates a shard of the given type with one voting member
// per zone and waits until its three replicas are active.
func (c *cluster) createActive(ctx context.Context, a *zongzi.Agent, shardType, name string) zongzi.Shard {
	c.t.Helper()
	s, _, err := a.ShardCreate(ctx, shardType, zongzi.WithName(name),
		zongzi.WithPlacementMembers(3), zongzi.WithPlacementVary("geo:zone"))
	if err != nil {
		c.t.Fatalf("create shard %s: %v", name, err)
	}
	waitFor(c.t, settle, "shard "+name+" active", func() bool { return allActive(a.State(), s.ID, 3) })
	return s
}
