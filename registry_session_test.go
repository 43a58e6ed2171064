package zongzi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestRegistryWriteAfterAbandonedOne gives up on registry writes while they
// are in flight, each followed by another write: the next write must apply
// as itself. A write abandoned after it committed left the registry
// session's series ID in use, and the next write under it got the first
// one's cached result, reported as its own, without being applied.
func TestRegistryWriteAfterAbandonedOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, a := startOne(ctx, t)
	defer c.stop()
	for i := range 30 {
		x, cancelX := context.WithTimeout(ctx, 2*time.Second)
		time.AfterFunc(time.Duration(100+30*i)*time.Microsecond, cancelX) // while it is in flight
		_, _, _ = a.ShardCreate(x, testType, zongzi.WithName(fmt.Sprintf("abandoned-%d", i)))
		cancelX()
		name := fmt.Sprintf("next-%d", i)
		y, cancelY := context.WithTimeout(ctx, 10*time.Second)
		s, created, err := a.ShardCreate(y, testType, zongzi.WithName(name))
		cancelY()
		if err != nil {
			t.Fatalf("round %d: create %s: %v", i, name, err)
		}
		if s.Name != name || !created {
			t.Fatalf("round %d: create %s returned shard %d %q (created %v): another write's result", i, name, s.ID, s.Name, created)
		}
		if _, ok := a.ShardFind(name); !ok {
			t.Fatalf("round %d: %s acknowledged but not in the registry", i, name)
		}
	}
}

// TestRegistryWriteWaitsNoLongerThanItsDeadline: registry writes from one
// host take turns, and one that waits for its turn behind a write that
// cannot finish (the prime shard lost its quorum) gives up at its own
// deadline.
func TestRegistryWriteWaitsNoLongerThanItsDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a := c.nodes[0].agent
	c.nodes[1].agent.Stop()
	c.nodes[2].agent.Stop()
	long, cancelLong := context.WithTimeout(ctx, 20*time.Second)
	defer cancelLong()
	go func() { _, _, _ = a.ShardCreate(long, testType, zongzi.WithName("holds-the-turn")) }()
	// Nothing outside shows when the first write holds the turn; until it
	// does, the second write takes the turn itself and fails otherwise.
	for try := 1; ; try++ {
		time.Sleep(100 * time.Millisecond)
		short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
		start := time.Now()
		_, _, err := a.ShardCreate(short, testType, zongzi.WithName("waits"))
		took := time.Since(start)
		cancelShort()
		if !errors.Is(err, zongzi.ErrTimeout) || took > 5*time.Second {
			t.Fatalf("a write with 500 ms left behind one that cannot finish: %v after %v, want ErrTimeout at its deadline", err, took)
		}
		if strings.Contains(err.Error(), "waiting for the previous proposal") {
			return
		}
		if try == 10 {
			t.Fatalf("the second write never waited for the first: %v", err)
		}
	}
}

// TestRegistryWriteCancelledWhilePending cancels a registry write once it
// is in the prime shard's log, while the local replica has yet to apply it
// (its applies wait on an earlier entry). The write applies all the same,
// so the error must say that its outcome is unknown, as well as that it
// was cancelled, as a ShardClient write's does.
func TestRegistryWriteCancelledWhilePending(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a")
	hold := newRejectHold()
	c.nodes[0].opts = []zongzi.AgentOption{zongzi.WithLogger(slog.New(hold))}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	defer hold.release() // before the agent stops, which waits for its applies
	a := c.nodes[0].agent
	// A write that applies first: the registry session is in place.
	if _, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("first")); err != nil {
		t.Fatal(err)
	}
	// This host's own registry writes are done: none holds the turn
	// while applies wait.
	waitOwnRegistryWrites(t, a)
	session := zongzi.RegistrySessionID(a)
	nh := a.NodeHost()
	logs, err := nh.GetLogReader(0)
	if err != nil {
		t.Fatal(err)
	}
	// An undecodable command, which the registry rejects and logs: the
	// log call holds the prime replica's applies.
	hold.arm()
	if _, err := nh.Propose(nh.GetNoOPSession(0), []byte("not a registry command"), time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hold.held:
	case <-time.After(settle):
		t.Fatal("the prime replica never applied the undecodable command")
	}
	_, last := logs.GetRange()

	const name = "cancelled-while-pending"
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	errs := make(chan error, 1)
	go func() {
		_, _, err := a.ShardCreate(wctx, testType, zongzi.WithName(name))
		errs <- err
	}()
	waitFor(t, settle, "the write in the prime shard's log", func() bool {
		_, l := logs.GetRange()
		ents, err := logs.Entries(last, l+1, math.MaxUint64)
		if err != nil {
			return false
		}
		for _, e := range ents {
			if bytes.Contains(e.Cmd, []byte(name)) {
				return true
			}
		}
		return false
	})
	wcancel()
	err = <-errs
	hold.release()
	waitFor(t, settle, "the cancelled write to apply", func() bool {
		_, ok := a.ShardFind(name)
		return ok
	})
	if !errors.Is(err, zongzi.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Fatalf("registry write cancelled while pending, then applied: %v, want it to wrap %v and %v",
			err, zongzi.ErrOutcomeUnknown, context.Canceled)
	}
	// The next write is applied, not answered with the cancelled one's
	// result, and under the same session: one given up on is not left
	// registered on the prime shard for its LRU to evict.
	next, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("next"))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := a.ShardFind("next"); !ok || s.ID != next.ID || next.Name != "next" {
		t.Fatalf("write after the cancelled one: got %+v, registry has %+v", next, s)
	}
	if id := zongzi.RegistrySessionID(a); id != session {
		t.Fatalf("registry session %d after a write given up, want %d still", id, session)
	}
}

// rejectHold is a log handler that, once armed, holds the call that logs
// a rejected registry command until released: the prime replica's applies
// wait meanwhile. It says on held when it holds one.
type rejectHold struct {
	inner   slog.Handler
	armed   atomic.Bool
	held    chan struct{}
	once    sync.Once
	done    chan struct{}
	heldOne sync.Once
}

func newRejectHold() *rejectHold {
	return &rejectHold{
		inner: slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn}),
		held:  make(chan struct{}), done: make(chan struct{}),
	}
}

func (h *rejectHold) arm()     { h.armed.Store(true) }
func (h *rejectHold) release() { h.once.Do(func() { close(h.done) }) }

func (h *rejectHold) Enabled(context.Context, slog.Level) bool { return true }

func (h *rejectHold) Handle(ctx context.Context, r slog.Record) error {
	if h.armed.Load() && r.Message == "zongzi: registry command rejected" {
		h.heldOne.Do(func() { close(h.held) })
		<-h.done
	}
	if !h.inner.Enabled(ctx, r.Level) {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h *rejectHold) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *rejectHold) WithGroup(string) slog.Handler      { return h }

// TestRegistryProposalAfterLeaderStops: a registry proposal made on a
// follower just after the prime shard's leader stopped is forwarded to
// the dead leader and lost. It waited for its attempt's whole time (2 s)
// before it was made again to the new leader: a wiped kv1 peer that
// restarted at once took 2-5 s to join, its join's registry entry lost
// so. The attempt now ends when the follower sees the leader change.
func TestRegistryProposalAfterLeaderStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	for _, n := range c.nodes {
		// An attempt outlasts the test's wait: only a leader change ends it.
		n.opts = append(n.opts, zongzi.WithRegistryAttempt(time.Hour))
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	// Every host has proposed (registered itself) and holds a session.
	waitFor(t, settle, "every host active", func() bool {
		for _, h := range c.nodes[0].agent.State().Hosts() {
			if h.Status != "active" {
				return false
			}
		}
		return c.nodes[0].agent.State().HostCount() == 3
	})
	var leader, follower *zongzi.Agent
	waitFor(t, settle, "the prime shard's leader", func() bool {
		a := c.nodes[0].agent
		id, _, ok, err := a.NodeHost().GetLeaderID(0)
		if err != nil || !ok {
			return false
		}
		r, found := a.State().Replica(id)
		if !found {
			return false
		}
		for _, m := range c.nodes {
			if m.agent.HostID() == r.HostID {
				leader = m.agent
			} else {
				follower = m.agent
			}
		}
		return leader != nil && follower != nil
	})
	leader.Stop()
	pctx, pcancel := context.WithTimeout(ctx, settle)
	defer pcancel()
	if _, _, err := follower.ShardCreate(pctx, testType, zongzi.WithName("after-the-leader")); err != nil {
		t.Fatalf("ShardCreate on a follower just after the prime leader stopped: %v", err)
	}
}

// TestRegistryWriteAfterSessionEvicted: the prime shard keeps the 4,096
// client sessions used last and forgets the others; a host's registry
// session is forgotten once that many were registered since it last
// wrote, which restarts (each agent registers one, and none is closed)
// and registrations that timed out add up to. The host's next registry
// write was refused by the prime shard without being applied, and
// returned as ErrRejected, as if the registry had refused the command:
// nothing under the forgotten session could have applied, so it is
// proposed again under a new one.
func TestRegistryWriteAfterSessionEvicted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, a := startOne(ctx, t)
	defer c.stop()
	if _, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("first")); err != nil {
		t.Fatal(err)
	}
	// This host's own registry writes are done: none uses the session
	// while the others are registered.
	waitOwnRegistryWrites(t, a)
	session := zongzi.RegistrySessionID(a)
	if session == 0 {
		t.Fatal("no registry session after a registry write")
	}
	// As many sessions registered since as the prime shard keeps.
	nh := a.NodeHost()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Go(func() {
			for range 4096 / 32 {
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := nh.SyncGetSession(rctx, 0)
				rcancel()
				if err != nil {
					errs <- fmt.Errorf("worker %d: register a session: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	s, created, err := a.ShardCreate(wctx, testType, zongzi.WithName("after-eviction"))
	if err != nil {
		t.Fatalf("registry write once the host's session was evicted: %v", err)
	}
	if !created || s.Name != "after-eviction" {
		t.Fatalf("registry write once the host's session was evicted: shard %+v, created %v", s, created)
	}
	if id := zongzi.RegistrySessionID(a); id == session || id == 0 {
		t.Fatalf("registry session %d after its eviction, was %d", id, session)
	}
}

// waitOwnRegistryWrites waits until the registry holds a's host record as
// active and the prime shard's leader: the registry writes a makes of
// itself once it starts are done.
func waitOwnRegistryWrites(t *testing.T, a *zongzi.Agent) {
	t.Helper()
	waitFor(t, settle, "the host's record and the prime shard's leader in the registry", func() bool {
		st := a.State()
		h, _ := st.Host(a.HostID())
		prime, _ := st.Shard(0)
		return h.Status == zongzi.HostStatusActive && prime.Leader != 0
	})
}

// TestRegistryWriteWithItsContextDone: a registry write whose context is
// already cancelled proposes nothing and says that it did not apply. When
// its turn was free as well, the turn was taken about half the time (a
// select with both cases ready), the command proposed, and the caller told
// ErrOutcomeUnknown: the shards of calls that had given up were created.
func TestRegistryWriteWithItsContextDone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, a := startOne(ctx, t)
	defer c.stop()
	done, cancelDone := context.WithCancel(ctx)
	cancelDone()
	const n = 50
	for i := range n {
		_, _, err := a.ShardCreate(done, testType, zongzi.WithName(fmt.Sprintf("gave-up-%d", i)))
		if !errors.Is(err, context.Canceled) || errors.Is(err, zongzi.ErrOutcomeUnknown) {
			t.Fatalf("ShardCreate %d with its context cancelled: %v, want context.Canceled, not ErrOutcomeUnknown", i, err)
		}
	}
	// Applied after any of them would have been.
	if _, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("after")); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, ok := a.State().ShardByName(fmt.Sprintf("gave-up-%d", i)); ok {
			t.Fatalf("ShardCreate %d, made with its context cancelled, created its shard", i)
		}
	}
}
