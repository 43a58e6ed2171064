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

// warnings is a log handler that keeps the messages and attributes of
// the records (count tells Debug from Warn and above), and passes those
// inner takes on to it.
type warnings struct {
	inner slog.Handler
	mu    sync.Mutex
	lines []string
}

func (h *warnings) Enabled(context.Context, slog.Level) bool { return true }

func (h *warnings) Handle(ctx context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.lines = append(h.lines, line)
	h.mu.Unlock()
	if !h.inner.Enabled(ctx, r.Level) {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h *warnings) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *warnings) WithGroup(string) slog.Handler      { return h }

// count returns how many kept lines at Warn or above hold s.
func (h *warnings) count(s string) int {
	return h.countAt(slog.LevelWarn, s)
}

// countAt returns how many kept lines at level or above hold every one of
// ss.
func (h *warnings) countAt(level slog.Level, ss ...string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.lines {
		name, _, _ := strings.Cut(l, " ")
		var lv slog.Level
		if lv.UnmarshalText([]byte(name)) == nil && lv >= level && containsAll(l, ss) {
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
	if _, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("wake")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "a warning that names why the plan is refused", func() bool { return logs.count(reason) > 0 })
	// The plan was not proposed: no replica of the prime shard applied
	// and refused it (each logs a refused entry at Debug).
	if n := logs.countAt(slog.LevelDebug, "registry command rejected", reason); n != 0 {
		t.Errorf("%d registry entries refused for the plan's reason, want none: the plan was proposed", n)
	}
}

// containsAll reports whether s holds every one of subs.
func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
