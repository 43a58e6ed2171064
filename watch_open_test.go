package zongzi_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4"

	"github.com/zongzi-kv/zongzi"
)

// slowOpenSM is a diskSM whose Open waits for release, and which records
// a Watch called before Open returned.
type slowOpenSM struct {
	*diskSM
	release            chan struct{}
	opened, watchEarly atomic.Bool
}

func (s *slowOpenSM) Open(stopc <-chan struct{}) (uint64, error) {
	select {
	case <-s.release:
	case <-stopc:
	}
	s.opened.Store(true)
	return 0, nil
}

func (s *slowOpenSM) Watch(ctx context.Context, q []byte, results chan<- *zongzi.Result) {
	if !s.opened.Load() {
		s.watchEarly.Store(true)
	}
	s.diskSM.Watch(ctx, q, results)
}

// TestStaleWatchBeforeOpen: nothing is called on a persistent state
// machine before its Open returns (StateMachinePersistent), but a stale
// Watch, which no raft read precedes, reached it as soon as its replica
// was started, while Dragonboat was still opening it. A watch that comes
// then is refused with ErrShardNotReady, as a query is, so that another
// host can serve it; once Open returned, watches start.
func TestStaleWatchBeforeOpen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logTo(t)
	const typ = "zongzi://test/slowopen"
	release := newRelease(t)
	var sm atomic.Pointer[slowOpenSM]
	dir := t.TempDir()
	a := aloneAgent(ctx, t, freeAddrs(t, 2), t.TempDir(), func(a *zongzi.Agent) error {
		return a.StateMachineRegisterPersistent(typ, func(shardID, replicaID uint64) zongzi.StateMachinePersistent {
			m := &slowOpenSM{diskSM: newDiskSM(dir)(shardID, replicaID).(*diskSM), release: release}
			sm.Store(m)
			return m
		})
	})
	s, _, err := a.ShardCreate(ctx, typ, zongzi.WithName("slow-open"), zongzi.WithPlacementMembers(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "replica running", func() bool { return zongzi.RunsReplica(a, s.ID) })
	watchOnceReleased(ctx, t, a.Client(s.ID), &sm.Load().watchEarly, release, "the state machine opens")
}

// newRelease returns a channel that a test closes to let its state machine
// go on; one the test did not close is closed when it ends.
func newRelease(t *testing.T) chan struct{} {
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return release
}

// watchOnceReleased checks what the two stale-watch tests share: a
// stale watch of c's shard made while its state machine is not ready
// (what) is refused with ErrShardNotReady, and Watch is not called on the
// state machine before (early); once the test closes release, a watch
// made again starts. It returns the watch's first result.
func watchOnceReleased(ctx context.Context, t *testing.T, c *zongzi.ShardClient, early *atomic.Bool, release chan struct{}, what string) *zongzi.Result {
	t.Helper()
	results := make(chan *zongzi.Result, 1)
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	if err := c.Watch(wctx, nil, results, true); !errors.Is(err, zongzi.ErrShardNotReady) {
		t.Errorf("watch while %s: %v, want ErrShardNotReady", what, err)
	}
	if early.Load() {
		t.Fatalf("Watch called on the state machine while %s", what)
	}
	close(release)
	wctx, wcancel = context.WithCancel(ctx)
	defer wcancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for wctx.Err() == nil {
			_ = c.Watch(wctx, nil, results, true)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	var r *zongzi.Result
	select {
	case r = <-results:
	case <-time.After(settle):
		t.Errorf("no watch started once %s no more", what)
	}
	wcancel()
	<-watched
	if early.Load() {
		t.Errorf("Watch called on the state machine while %s", what)
	}
	return r
}

// slowRecoverSM is a logSM whose RecoverFromSnapshot waits for release,
// and which records a Watch called before it recovered.
type slowRecoverSM struct {
	*logSM
	release               chan struct{}
	recovered, watchEarly atomic.Bool
}

func (s *slowRecoverSM) RecoverFromSnapshot(r io.Reader, close <-chan struct{}) error {
	select {
	case <-s.release:
	case <-close:
	}
	err := s.logSM.RecoverFromSnapshot(r, close)
	s.recovered.Store(true)
	return err
}

func (s *slowRecoverSM) Watch(ctx context.Context, q []byte, results chan<- *zongzi.Result) {
	if !s.recovered.Load() {
		s.watchEarly.Store(true)
	}
	select {
	case results <- s.Query(ctx, q):
	case <-ctx.Done():
	}
	<-ctx.Done()
}

// TestStaleWatchBeforeRecovery: a replica restarted from a snapshot is
// not initialised before its state machine recovered it; a stale query
// is refused meanwhile, and so is a stale watch, which was started on the
// empty state machine and saw its state go from nothing to the snapshot's.
func TestStaleWatchBeforeRecovery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logTo(t)
	const typ = "zongzi://test/slowrecover"
	addrs, dir := freeAddrs(t, 2), t.TempDir()
	start := func(f zongzi.StateMachineFactory) *zongzi.Agent {
		return aloneAgent(ctx, t, addrs, dir, func(a *zongzi.Agent) error { return a.StateMachineRegister(typ, f) })
	}
	a := start(newLogSM)
	s, _, err := a.ShardCreate(ctx, typ, zongzi.WithName("slow-recover"), zongzi.WithPlacementMembers(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "shard active", func() bool { return allActive(a.State(), s.ID, 1) })
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if _, _, err := a.Client(s.ID).Apply(wctx, []byte("w")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.NodeHost().SyncRequestSnapshot(wctx, s.ID, dragonboat.SnapshotOption{}); err != nil {
		t.Fatal(err)
	}
	a.Stop()

	release := newRelease(t)
	var sm atomic.Pointer[slowRecoverSM]
	a = start(func(_, replicaID uint64) zongzi.StateMachine {
		m := &slowRecoverSM{logSM: newLogSM(0, replicaID).(*logSM), release: release}
		sm.Store(m)
		return m
	})
	waitFor(t, settle, "replica running", func() bool { return zongzi.RunsReplica(a, s.ID) })
	if r := watchOnceReleased(ctx, t, a.Client(s.ID), &sm.Load().watchEarly, release, "the replica recovers"); r != nil && r.Value != 1 {
		t.Errorf("watch after recovery: count %d, want 1", r.Value)
	}
}
