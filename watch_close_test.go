package zongzi_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// closeWatchSM is a logSM that records whether its Watch was called once
// it was closed.
type closeWatchSM struct {
	logSM
	closed, watchAfterClose atomic.Bool
}

func (s *closeWatchSM) Watch(ctx context.Context, q []byte, results chan<- *zongzi.Result) {
	if s.closed.Load() {
		s.watchAfterClose.Store(true)
	}
	s.logSM.Watch(ctx, q, results)
}

func (s *closeWatchSM) Close() error {
	s.closed.Store(true)
	return nil
}

// TestWatchEndsWhenStateMachineCloses: Dragonboat closes a replica's state
// machine when it unloads the replica, which it does on its own once the
// replica is out of the shard's membership, before (or without) the agent
// stopping it. A watch on it ends then, and no watch starts on the closed
// state machine: the replica cannot serve it.
func TestWatchEndsWhenStateMachineCloses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sm atomic.Pointer[closeWatchSM]
	a, s := startAlone(ctx, t, "zongzi://test/closewatch", func(uint64, uint64) zongzi.StateMachine {
		m := &closeWatchSM{}
		sm.Store(m)
		return m
	})
	defer a.Stop()
	done := startWatch(ctx, t, a.Client(s.ID))
	replicaID := a.State().ShardReplicas(s.ID)[0].ID
	if err := a.NodeHost().StopReplica(s.ID, replicaID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "state machine closed", sm.Load().closed.Load)
	select {
	case err := <-done:
		if !errors.Is(err, zongzi.ErrShardNotReady) {
			t.Errorf("watch ended with %v, want ErrShardNotReady", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch still running 5 s after its state machine closed")
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	err := a.Client(s.ID).Watch(wctx, nil, make(chan *zongzi.Result), true)
	if sm.Load().watchAfterClose.Load() {
		t.Errorf("Watch called on a closed state machine (watch ended with %v)", err)
	}
}
