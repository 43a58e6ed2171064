package zongzi_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/vfs"
	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi"
)

func TestNewAgentRejectsBadInput(t *testing.T) {
	peers := []string{"127.0.0.1:17013", "127.0.0.1:17023", "127.0.0.1:17033"}
	dir := zongzi.WithDirRaft(t.TempDir())
	for _, tc := range []struct {
		name  string
		clust string
		peers []string
		opts  []zongzi.AgentOption
	}{
		{"empty cluster name", "", peers, []zongzi.AgentOption{dir}},
		{"cluster name too long", "abcdefghijklm", peers, []zongzi.AgentOption{dir}},
		{"cluster name not base36", "kv-1", peers, []zongzi.AgentOption{dir}},
		{"upper case cluster name", "KV1", peers, []zongzi.AgentOption{dir}},
		{"no peers", "kv1", nil, []zongzi.AgentOption{dir}},
		{"duplicate peer", "kv1", []string{"127.0.0.1:1", "127.0.0.1:1"}, []zongzi.AgentOption{dir}},
		{"peer without port", "kv1", []string{"127.0.0.1"}, []zongzi.AgentOption{dir}},
		{"no raft dir", "kv1", peers, nil},
		{"bad api address", "kv1", peers, []zongzi.AgentOption{dir, zongzi.WithAddrApi("nope")}},
		{"three raft addresses", "kv1", peers, []zongzi.AgentOption{dir, zongzi.WithAddrRaft("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3")}},
		{"bad gossip bind", "kv1", peers, []zongzi.AgentOption{dir, zongzi.WithAddrGossip("127.0.0.1:1", "x")}},
		{"host tag without key", "kv1", peers, []zongzi.AgentOption{dir, zongzi.WithHostTags("=v")}},
		{"replica config without election", "kv1", peers, []zongzi.AgentOption{dir, zongzi.WithReplicaConfig(config.Config{HeartbeatRTT: 1})}},
		{"tiny memory limit", "kv1", peers, []zongzi.AgentOption{dir, zongzi.WithHostMemoryLimit(1024)}},
		{"nil controller", "kv1", peers, []zongzi.AgentOption{dir, zongzi.WithShardController(nil)}},
		{"nil logger", "kv1", peers, []zongzi.AgentOption{dir, zongzi.WithLogger(nil)}},
		{"empty WAL dir", "kv1", peers, []zongzi.AgentOption{dir, zongzi.WithDirWAL("")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := zongzi.NewAgent(tc.clust, tc.peers, tc.opts...)
			if !errors.Is(err, zongzi.ErrInvalidConfig) || a != nil {
				t.Fatalf("got agent %v, error %v; want ErrInvalidConfig", a, err)
			}
		})
	}
	if _, err := zongzi.NewAgent("kv1", peers, dir, zongzi.WithAddrApi("127.0.0.1:17013", "0.0.0.0:17013")); err != nil {
		t.Fatalf("valid agent: %v", err)
	}
}

func TestStateMachineRegisterRejectsBadInput(t *testing.T) {
	a, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.StateMachineRegister("", newLogSM); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Fatalf("empty URI: %v", err)
	}
	if err := a.StateMachineRegister("zongzi://x", nil); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Fatalf("nil factory: %v", err)
	}
	if err := a.StateMachineRegisterPersistent("zongzi://y", nil); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Fatalf("nil persistent factory: %v", err)
	}
	if a.Status() != zongzi.AgentStatusPending || a.Status().String() != "pending" {
		t.Fatalf("status of a new agent: %v", a.Status())
	}
}

func TestShardOptionsRejectBadValues(t *testing.T) {
	a, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// Each bad option comes with valid members, so that it alone is wrong.
	members := zongzi.WithPlacementMembers(3)
	for name, opt := range map[string]zongzi.ShardOption{
		"empty name":             zongzi.WithName(""),
		"name with a NUL":        zongzi.WithName("a\x00b"),
		"empty tag key":          zongzi.WithTag("", "v"),
		"zero members":           zongzi.WithPlacementMembers(0),
		"bad member filter":      zongzi.WithPlacementMembers(3, "=x"),
		"empty filter value":     zongzi.WithPlacementMembers(3, "zone="),
		"empty replica group":    zongzi.WithPlacementReplicas("", 2),
		"group named cover":      zongzi.WithPlacementReplicas("cover", 2),
		"group with colon":       zongzi.WithPlacementReplicas("a:b", 2),
		"group with a space":     zongzi.WithPlacementReplicas("read replicas", 2),
		"negative replicas":      zongzi.WithPlacementReplicas("readers", -1),
		"vary without keys":      zongzi.WithPlacementVary(),
		"vary with a filter":     zongzi.WithPlacementVary("zone=a"),
		"vary with an empty key": zongzi.WithPlacementVary("zone", ""),
		"vary key with a comma":  zongzi.WithPlacementVary("zone,rack"),
		"cover without filters":  zongzi.WithPlacementCover(),
		"filter with semicolon":  zongzi.WithPlacementCover("a=b;c"),
		"unknown placement tag":  zongzi.WithTag("placement:spread", "zone"),
		"replicas with no count": zongzi.WithTag(zongzi.TagPlacementReplica+"readers", "zone=a"),
	} {
		if _, _, err := a.ShardCreate(ctx, "zongzi://x", members, opt); !errors.Is(err, zongzi.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	// Placement tags other than the members' need the members' too.
	if _, _, err := a.ShardCreate(ctx, "zongzi://x", zongzi.WithPlacementVary("zone")); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("vary without members: %v, want ErrInvalidConfig", err)
	}
	if _, _, err := a.ShardCreate(ctx, "", zongzi.WithName("x")); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("empty type: %v", err)
	}
	if _, _, err := a.ShardCreate(ctx, "zongzi://x", zongzi.WithName("x")); !errors.Is(err, zongzi.ErrAgentNotReady) {
		t.Errorf("create before Start: %v, want ErrAgentNotReady", err)
	}
}

// customFS is a file system Dragonboat's log storage refuses: it takes only
// its own default and in-memory ones.
type customFS struct{ vfs.FS }

// Dragonboat answers such a host config by returning neither a host nor an
// error; Start must fail with ErrBootstrap, not dereference the missing host.
func TestStartFailsWhenDragonboatReturnsNoHost(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addrs := freeAddrs(t, 2)
	cfg := config.NodeHostConfig{Expert: config.ExpertConfig{FS: customFS{vfs.Default}}}
	a, err := zongzi.NewAgent("kv1", addrs[:1], zongzi.WithAddrApi(addrs[0]), zongzi.WithAddrRaft(addrs[1]),
		zongzi.WithDirRaft(t.TempDir()), zongzi.WithHostConfig(cfg), zongzi.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); !errors.Is(err, zongzi.ErrBootstrap) {
		t.Fatalf("Start: %v, want ErrBootstrap", err)
	}
}

// TestStopEndsStart stops an agent whose Start waits for peers that never
// come: Start returns at once with an error instead of waiting out its
// context, Stop returns after it, nothing is left running, and the agent
// cannot start again.
func TestStopEndsStart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addrs := freeAddrs(t, 4) // the other two peers' API addresses answer nothing
	a, err := zongzi.NewAgent("kv1", []string{addrs[0], addrs[2], addrs[3]}, zongzi.WithAddrApi(addrs[0]),
		zongzi.WithAddrRaft(addrs[1]), zongzi.WithDirRaft(t.TempDir()), zongzi.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- a.Start(ctx) }()
	waitFor(t, 10*time.Second, "Start to wait for the peers", func() bool { return a.Status() == zongzi.AgentStatusInitializing && a.HostID() != "" })
	a.Stop()
	select { // Start has returned: only its caller's send may be pending
	case err := <-started:
		if err == nil {
			t.Fatal("Start succeeded without its peers")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start goes on after Stop")
	}
	if a.Status() != zongzi.AgentStatusStopped {
		t.Errorf("status %v after Stop, want stopped", a.Status())
	}
	if err := a.Start(ctx); !errors.Is(err, zongzi.ErrInvalidConfig) {
		t.Errorf("Start after Stop: %v, want ErrInvalidConfig", err)
	}
}

// TestStopAsStartEnds stops an agent just after Start's last wait, as it
// is about to succeed: Start must report an error, since Stop tears the
// agent down as soon as Start returns, and the agent ends stopped.
func TestStopAsStartEnds(t *testing.T) {
	c := newCluster(t, "z1")
	n := c.nodes[0]
	var a *zongzi.Agent
	stopped := make(chan struct{})
	n.opts = append(n.opts, zongzi.WithBeforeReady(func() {
		go func() { a.Stop(); close(stopped) }()
		waitFor(t, 10*time.Second, "Stop to be called", func() bool { return zongzi.StopCalled(a) })
	}))
	a, err := c.newAgent(n)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Start(ctx); !errors.Is(err, zongzi.ErrBootstrap) {
		t.Fatalf("Start stopped as it ended: %v, want ErrBootstrap", err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return")
	}
	if s := a.Status(); s != zongzi.AgentStatusStopped {
		t.Errorf("status %v after Stop, want stopped", s)
	}
}
