package zongzi_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi"
)

// A bad address keeps its cause: the net package's error says what is wrong
// with it, and a caller can get at it with errors.As.
func TestBadAddressKeepsItsCause(t *testing.T) {
	_, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()), zongzi.WithAddrApi("nope"))
	var addrErr *net.AddrError
	if !errors.Is(err, zongzi.ErrInvalidConfig) || !errors.As(err, &addrErr) {
		t.Fatalf("bad api address: %v, want ErrInvalidConfig wrapping a *net.AddrError", err)
	}
}

// A replica config Dragonboat refuses is refused by NewAgent: otherwise the
// agent starts and no guest replica ever does (the host controller only logs
// the error, again and again).
func TestReplicaConfigDragonboatRefusesIsInvalid(t *testing.T) {
	for name, cfg := range map[string]config.Config{
		"unknown snapshot compression": {SnapshotCompressionType: 99},
		"unknown entry compression":    {EntryCompressionType: 99},
		"tiny in-memory log":           {MaxInMemLogSize: 1},
		"witness with snapshots":       {IsWitness: true, SnapshotEntries: 10},
	} {
		_, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()), zongzi.WithReplicaConfig(cfg))
		if !errors.Is(err, zongzi.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()),
		zongzi.WithReplicaConfig(zongzi.DefaultReplicaConfig())); err != nil {
		t.Errorf("default replica config: %v", err)
	}
}

// A host tag key given twice with two values is refused, not settled by
// order: a host in two zones is a mistake placement would act on.
func TestHostTagGivenTwiceIsInvalid(t *testing.T) {
	for name, opts := range map[string][]zongzi.AgentOption{
		"one option":     {zongzi.WithHostTags("geo:zone=a", "geo:zone=b")},
		"two options":    {zongzi.WithHostTags("geo:zone=a"), zongzi.WithHostTags("geo:zone=b")},
		"flag and value": {zongzi.WithHostTags("ssd", "ssd=no")},
	} {
		_, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, append(opts, zongzi.WithDirRaft(t.TempDir()))...)
		if !errors.Is(err, zongzi.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()),
		zongzi.WithHostTags("geo:zone=a", "geo:zone=a")); err != nil {
		t.Errorf("a tag repeated with its value: %v", err)
	}
}

// WithHostConfig keeps the directories that WithDirRaft and WithDirWAL set,
// before it or after, as its doc says.
func TestHostConfigKeepsTheDirOptions(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	logTo(t)
	addrs := freeAddrs(t, 2)
	dir, wal, other := t.TempDir(), t.TempDir(), t.TempDir()
	a, err := zongzi.NewAgent("kv1", addrs[:1], zongzi.WithAddrApi(addrs[0]), zongzi.WithAddrRaft(addrs[1]),
		zongzi.WithDirRaft(dir), zongzi.WithDirWAL(wal),
		zongzi.WithHostConfig(config.NodeHostConfig{NodeHostDir: other, WALDir: other}),
		zongzi.WithLogger(slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	got := a.NodeHost().NodeHostConfig()
	if got.NodeHostDir != dir || got.WALDir != wal {
		t.Errorf("host dirs %q and %q, want %q (WithDirRaft) and %q (WithDirWAL)", got.NodeHostDir, got.WALDir, dir, wal)
	}
}

// A host config that sets what the agent's own options set, or its own raft
// event listener, which the agent needs, is refused rather than overridden
// in silence.
func TestHostConfigRefusesWhatTheAgentSets(t *testing.T) {
	for name, cfg := range map[string]config.NodeHostConfig{
		"raft address":   {RaftAddress: "10.0.0.1:5000"},
		"listen address": {ListenAddress: "0.0.0.0:5000"},
		"gossip":         {Gossip: config.GossipConfig{BindAddress: "0.0.0.0:5001", AdvertiseAddress: "10.0.0.1:5001"}},
		"event listener": {RaftEventListener: nopRaftListener{}},
	} {
		_, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()), zongzi.WithHostConfig(cfg))
		if !errors.Is(err, zongzi.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

type nopRaftListener struct{}

func (nopRaftListener) LeaderUpdated(raftio.LeaderInfo) {}

// Registry changes made before Start, or after Stop, say that the agent is
// not ready, not that the shard or host does not exist.
func TestRegistryChangesBeforeStart(t *testing.T) {
	a, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	check := func(when string) {
		if _, err := a.ShardUpdate(ctx, 1, zongzi.WithTag("k", "v")); !errors.Is(err, zongzi.ErrAgentNotReady) {
			t.Errorf("ShardUpdate %s: %v, want ErrAgentNotReady", when, err)
		}
		if err := a.ShardDelete(ctx, 1); !errors.Is(err, zongzi.ErrAgentNotReady) {
			t.Errorf("ShardDelete %s: %v, want ErrAgentNotReady", when, err)
		}
		if err := a.HostDelete(ctx, ""); !errors.Is(err, zongzi.ErrAgentNotReady) {
			t.Errorf("HostDelete %s: %v, want ErrAgentNotReady", when, err)
		}
		if _, err := a.StateLinearizable(ctx); !errors.Is(err, zongzi.ErrAgentNotReady) {
			t.Errorf("StateLinearizable %s: %v, want ErrAgentNotReady", when, err)
		}
		if _, _, err := a.Client(1).Read(ctx, nil, true); !errors.Is(err, zongzi.ErrAgentNotReady) {
			t.Errorf("Read %s: %v, want ErrAgentNotReady", when, err)
		}
	}
	check("before Start")
	a.Stop()
	a.Stop()
	check("after Stop")
	if err := a.Start(ctx); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("Start after Stop: %v, want ErrInvalidConfig", err)
	}
	if err := a.StateMachineRegister("zongzi://x", newLogSM); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("StateMachineRegister after Stop: %v, want ErrInvalidConfig", err)
	}
}

// Stop leaves no goroutine behind while its shards are in use: watches,
// local and forwarded, stale and linearizable, and writes and reads in
// flight on both hosts. Every call in flight returns.
func TestStopInUseLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a") // one peer
	c.startAll(ctx, c.nodes[0])
	n2 := c.addNode("b") // joins as non-voting
	c.startAll(ctx, n2)
	defer c.stop()
	a1, a2 := c.nodes[0].agent, n2.agent
	s, _, err := a1.ShardCreate(ctx, testType, zongzi.WithName("inuse"), zongzi.WithPlacementMembers(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "shard active", func() bool { return allActive(a1.State(), s.ID, 1) && allActive(a2.State(), s.ID, 1) })

	var calls sync.WaitGroup
	for _, a := range []*zongzi.Agent{a1, a2} {
		for _, stale := range []bool{false, true} {
			calls.Go(func() { _ = a.Client(s.ID).Watch(ctx, nil, make(chan *zongzi.Result), stale) })
		}
		calls.Go(func() {
			for ctx.Err() == nil {
				wctx, wcancel := context.WithTimeout(ctx, time.Second)
				_, _, err := a.Client(s.ID).Apply(wctx, []byte("x"))
				_, _, _ = a.Client(s.ID).Read(wctx, nil, false)
				wcancel()
				if errors.Is(err, zongzi.ErrAgentNotReady) {
					return
				}
			}
		})
	}
	// Four watches started on the one replica: two local, two forwarded.
	for range 4 {
		select {
		case <-watching:
		case <-ctx.Done():
			t.Fatal("watches did not start")
		}
	}
	a2.Stop()
	a1.Stop()
	done := make(chan struct{})
	go func() { calls.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("calls in flight went on after Stop")
	}
}

// aloneAgent starts an agent that is its own only peer, at addrs (API
// address, raft address), with its raft data in dir, once register has
// registered its state machine types. It stops when the test ends.
func aloneAgent(ctx context.Context, t *testing.T, addrs []string, dir string, register func(*zongzi.Agent) error) *zongzi.Agent {
	t.Helper()
	a, err := zongzi.NewAgent("kv1", addrs[:1], zongzi.WithAddrApi(addrs[0]), zongzi.WithAddrRaft(addrs[1]),
		zongzi.WithDirRaft(dir),
		zongzi.WithLogger(slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	if err := register(a); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

// startAlone starts a one-peer cluster whose agent has the state machine
// factory f registered as shard type typ, and a shard of that type with
// one member, and returns the agent and the shard.
func startAlone(ctx context.Context, t *testing.T, typ string, f zongzi.StateMachineFactory) (*zongzi.Agent, zongzi.Shard) {
	t.Helper()
	logTo(t)
	a := aloneAgent(ctx, t, freeAddrs(t, 2), t.TempDir(), func(a *zongzi.Agent) error { return a.StateMachineRegister(typ, f) })
	s, _, err := a.ShardCreate(ctx, typ, zongzi.WithName("alone"), zongzi.WithPlacementMembers(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "shard active", func() bool { return allActive(a.State(), s.ID, 1) })
	return a, s
}

// nilWatchSM is a logSM whose Watch sends a nil result, then one of Value 7.
type nilWatchSM struct{ logSM }

func (s *nilWatchSM) Watch(ctx context.Context, _ []byte, results chan<- *zongzi.Result) {
	for _, r := range []*zongzi.Result{nil, {Value: 7}} {
		select {
		case results <- r:
		case <-ctx.Done():
			return
		}
	}
	<-ctx.Done()
}

// A nil result sent by a state machine's Watch is skipped, as a nil result
// of Query reads as a zero one: it does not crash the host that serves the
// watch.
func TestWatchSkipsNilResult(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, s := startAlone(ctx, t, "zongzi://test/nilwatch", func(uint64, uint64) zongzi.StateMachine { return &nilWatchSM{} })
	defer a.Stop()
	wctx, wcancel := context.WithCancel(ctx)
	results := make(chan *zongzi.Result, 4)
	done := make(chan error, 1)
	go func() { done <- a.Client(s.ID).Watch(wctx, nil, results, true) }()
	select {
	case r := <-results:
		if r == nil || r.Value != 7 {
			t.Errorf("first result %+v, want Value 7", r)
		}
	case err := <-done:
		t.Fatalf("watch ended: %v", err)
	case <-ctx.Done():
		t.Fatal("no result")
	}
	wcancel()
	<-done
}

// fixedSM answers every query with the same Data slice, fixedData.
type fixedSM struct{ logSM }

var fixedData = []byte("fixed")

func (s *fixedSM) Query(context.Context, []byte) *zongzi.Result {
	return &zongzi.Result{Value: 1, Data: fixedData}
}

// A read served by the local replica hands the state machine's Data to the
// caller without a copy, as Result's doc says: neither may change it.
func TestLocalReadSharesData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, s := startAlone(ctx, t, "zongzi://test/fixed", func(uint64, uint64) zongzi.StateMachine { return &fixedSM{} })
	defer a.Stop()
	for _, stale := range []bool{false, true} {
		_, data, err := a.Client(s.ID).Read(ctx, nil, stale)
		if err != nil || len(data) == 0 || &data[0] != &fixedData[0] {
			t.Errorf("read (stale=%v): %q %v; want the state machine's own slice", stale, data, err)
		}
	}
}

// Two of the agent's addresses on one port conflict: NewAgent says so,
// rather than Start failing to listen, or gossip going to the raft port.
func TestAgentAddressesConflict(t *testing.T) {
	const x, y = "127.0.0.1:17100", "127.0.0.1:17101"
	for name, opts := range map[string][]zongzi.AgentOption{
		"api and raft":           {zongzi.WithAddrApi(x), zongzi.WithAddrRaft(x)},
		"raft and gossip":        {zongzi.WithAddrApi(y), zongzi.WithAddrRaft(x), zongzi.WithAddrGossip(x)},
		"api and raft binds":     {zongzi.WithAddrApi(y, "0.0.0.0:17102"), zongzi.WithAddrRaft(x, "0.0.0.0:17102")},
		"api and default raft":   {zongzi.WithAddrApi(zongzi.DefaultRaftAddress)},
		"gossip and default api": {zongzi.WithAddrGossip(zongzi.DefaultApiAddress)},
	} {
		_, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, append(opts, zongzi.WithDirRaft(t.TempDir()))...)
		if !errors.Is(err, zongzi.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

// A shard type registered twice is refused: the second factory would
// replace the first in silence, or an on-disk one an in-memory one.
func TestStateMachineRegisteredTwice(t *testing.T) {
	a, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.StateMachineRegister("zongzi://x", newLogSM); err != nil {
		t.Fatal(err)
	}
	if err := a.StateMachineRegister("zongzi://x", newLogSM); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("registered twice: %v, want ErrInvalidConfig", err)
	}
	if err := a.StateMachineRegisterPersistent("zongzi://x", newDiskSM(t.TempDir())); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("registered again as persistent: %v, want ErrInvalidConfig", err)
	}
}

// The prime shard's client gives its leader and index, but takes no
// command or query: they are ErrInvalidConfig, not a silent zero result.
func TestPrimeShardClientTakesNoCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, _ := startAlone(ctx, t, "zongzi://test/prime", newLogSM)
	defer a.Stop()
	c := a.Client(0)
	if _, _, err := c.Apply(ctx, []byte("x")); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("Apply: %v, want ErrInvalidConfig", err)
	}
	if err := c.Commit(ctx, []byte("x")); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("Commit: %v, want ErrInvalidConfig", err)
	}
	for _, stale := range []bool{false, true} {
		if _, _, err := c.Read(ctx, nil, stale); !errors.Is(err, zongzi.ErrInvalidConfig) {
			t.Errorf("Read (stale=%v): %v, want ErrInvalidConfig", stale, err)
		}
	}
	if _, _, err := c.LeaderRead(ctx, nil); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("LeaderRead: %v, want ErrInvalidConfig", err)
	}
	if err := c.Watch(ctx, nil, make(chan *zongzi.Result), true); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("Watch: %v, want ErrInvalidConfig", err)
	}
	if i, err := c.Index(ctx); err != nil || i == 0 {
		t.Errorf("Index: %d, %v", i, err)
	}
	if l, _ := c.Leader(); l == 0 {
		t.Errorf("no leader")
	}
	// Nor is it changed like a guest shard: it exists, and is not theirs.
	if _, err := a.ShardUpdate(ctx, 0, zongzi.WithTag("k", "v")); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("ShardUpdate of the prime shard: %v, want ErrInvalidConfig", err)
	}
	if err := a.ShardDelete(ctx, 0); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("ShardDelete of the prime shard: %v, want ErrInvalidConfig", err)
	}
}

// A malformed registry snapshot given to LoadState is ErrInvalidConfig, a
// sentinel the caller can match, and a reader's error stays matchable too.
func TestLoadStateErrors(t *testing.T) {
	if _, err := zongzi.LoadState(strings.NewReader("not a snapshot\n")); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("malformed snapshot: %v, want ErrInvalidConfig", err)
	}
	if _, err := zongzi.LoadState(iotest.ErrReader(io.ErrUnexpectedEOF)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("failing reader: %v, want its error", err)
	}
}
