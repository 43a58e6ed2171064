package zongzi_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

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
