package zongzi_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
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
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	var sm atomic.Pointer[slowOpenSM]
	addrs := freeAddrs(t, 2)
	a, err := zongzi.NewAgent("kv1", addrs[:1], zongzi.WithAddrApi(addrs[0]), zongzi.WithAddrRaft(addrs[1]),
		zongzi.WithDirRaft(t.TempDir()),
		zongzi.WithLogger(slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	dir := t.TempDir()
	err = a.StateMachineRegisterPersistent(typ, func(shardID, replicaID uint64) zongzi.StateMachinePersistent {
		m := &slowOpenSM{diskSM: newDiskSM(dir)(shardID, replicaID).(*diskSM), release: release}
		sm.Store(m)
		return m
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s, _, err := a.ShardCreate(ctx, typ, zongzi.WithName("slow-open"), zongzi.WithPlacementMembers(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "replica running", func() bool { return zongzi.RunsReplica(a, s.ID) })
	results := make(chan *zongzi.Result, 1)
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	if err := a.Client(s.ID).Watch(wctx, nil, results, true); !errors.Is(err, zongzi.ErrShardNotReady) {
		t.Errorf("watch while the state machine opens: %v, want ErrShardNotReady", err)
	}
	if sm.Load().watchEarly.Load() {
		t.Fatal("Watch called on a persistent state machine before its Open returned")
	}
	close(release)
	wctx, wcancel = context.WithCancel(ctx)
	defer wcancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for wctx.Err() == nil {
			_ = a.Client(s.ID).Watch(wctx, nil, results, true)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	select {
	case <-results:
	case <-time.After(settle):
		t.Error("no watch started once Open returned")
	}
	wcancel()
	<-watched
	if sm.Load().watchEarly.Load() {
		t.Error("Watch called on a persistent state machine before its Open returned")
	}
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
		a, err := zongzi.NewAgent("kv1", addrs[:1], zongzi.WithAddrApi(addrs[0]), zongzi.WithAddrRaft(addrs[1]),
			zongzi.WithDirRaft(dir),
			zongzi.WithLogger(slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn}))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Stop)
		if err := a.StateMachineRegister(typ, f); err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return a
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

	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	var sm atomic.Pointer[slowRecoverSM]
	a = start(func(_, replicaID uint64) zongzi.StateMachine {
		m := &slowRecoverSM{logSM: newLogSM(0, replicaID).(*logSM), release: release}
		sm.Store(m)
		return m
	})
	waitFor(t, settle, "replica running", func() bool { return zongzi.RunsReplica(a, s.ID) })
	results := make(chan *zongzi.Result, 1)
	wctx, wcancel = context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	if err := a.Client(s.ID).Watch(wctx, nil, results, true); !errors.Is(err, zongzi.ErrShardNotReady) {
		t.Errorf("watch while the replica recovers: %v, want ErrShardNotReady", err)
	}
	if sm.Load().watchEarly.Load() {
		t.Fatal("Watch called on a state machine before it recovered its snapshot")
	}
	close(release)
	wctx, wcancel = context.WithCancel(ctx)
	defer wcancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for wctx.Err() == nil {
			_ = a.Client(s.ID).Watch(wctx, nil, results, true)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	select {
	case r := <-results:
		if r.Value != 1 {
			t.Errorf("watch after recovery: count %d, want 1", r.Value)
		}
	case <-time.After(settle):
		t.Error("no watch started once the snapshot was recovered")
	}
	wcancel()
	<-watched
}
