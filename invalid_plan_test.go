package zongzi_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// invalidController plans, for shard shardID once set, a replica on a
// host that is not registered: a plan the registry refuses whatever its
// index.
type invalidController struct {
	shardID atomic.Uint64
}

func (c *invalidController) Reconcile(*zongzi.State) zongzi.Plan {
	id := c.shardID.Load()
	if id == 0 {
		return zongzi.Plan{}
	}
	return zongzi.Plan{Add: []zongzi.Replica{{ShardID: id, HostID: "nowhere", Status: "new"}}}
}

// warnings is a log handler that keeps the messages and errors of the
// records at Warn and above, and passes them on to the test's log.
type warnings struct {
	inner slog.Handler
	mu    sync.Mutex
	lines []string
}

func (h *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *warnings) Handle(ctx context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.lines = append(h.lines, line)
	h.mu.Unlock()
	return h.inner.Handle(ctx, r)
}

func (h *warnings) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *warnings) WithGroup(string) slog.Handler      { return h }

// count returns how many kept lines hold s.
func (h *warnings) count(s string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// TestInvalidPlanIsReported: a shard controller's plan that the registry
// refuses for what it holds, not for having moved on, was taken for a
// stale one: logged at Debug only and made again at once, ten times at
// each change of the registry, each a rejected raft entry. A user whose
// controller places a replica on a host that is not registered saw
// nothing. It is now logged at Warn, with the registry's reason, and not
// proposed.
func TestInvalidPlanIsReported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrl := &invalidController{}
	logs := &warnings{inner: slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn})}
	c := newCluster(t, "a", "b", "c")
	for _, n := range c.nodes {
		// No sweep within the test: only changes wake the controller.
		n.opts = append(n.opts, zongzi.WithShardController(ctrl), zongzi.WithSweep(time.Hour),
			zongzi.WithLogger(slog.New(logs)))
	}
	defer c.stop()
	c.startAll(ctx, c.nodes...)
	a := c.nodes[0].agent
	s, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("invalid"))
	if err != nil {
		t.Fatal(err)
	}
	ctrl.shardID.Store(s.ID)
	const reason = `host "nowhere" not found`
	wake1, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("wake-1"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "a warning that names why the plan is refused", func() bool { return logs.count(reason) > 0 })
	// The refused plan consumed no raft entry: the next write follows the
	// one that woke the controller.
	wake2, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("wake-2"))
	if err != nil {
		t.Fatal(err)
	}
	if wake2.Created != wake1.Created+1 {
		t.Errorf("registry entries %d to %d between two writes, none wanted: the refused plan was proposed", wake1.Created+1, wake2.Created-1)
	}
}
