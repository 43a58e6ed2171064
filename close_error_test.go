package zongzi_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// closeErrSM is a logSM whose Close fails, as one that closes a file or a
// database which reports an error may.
type closeErrSM struct {
	logSM
	closed atomic.Bool
}

func (s *closeErrSM) Close() error {
	s.closed.Store(true)
	return errors.New("test: close failed")
}

// TestCloseErrorKeepsHostRunning stops a replica whose state machine's
// Close fails: the host goes on serving its other shards. Dragonboat
// panics on an error from a state machine's Close (its close worker calls
// panicNow), which would end the whole process, every replica on it, for
// a replica that was stopping anyway; the agent logs the error instead.
func TestCloseErrorKeepsHostRunning(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sm atomic.Pointer[closeErrSM]
	a, s := startAlone(ctx, t, "zongzi://test/closeerr", func(uint64, uint64) zongzi.StateMachine {
		m := &closeErrSM{}
		sm.Store(m)
		return m
	})
	replicaID := a.State().ShardReplicas(s.ID)[0].ID
	if err := a.NodeHost().StopReplica(s.ID, replicaID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "state machine closed", sm.Load().closed.Load)
	// The host still serves the prime shard: a new shard is placed on it.
	s2, _, err := a.ShardCreate(ctx, "zongzi://test/closeerr", zongzi.WithName("after-close"), zongzi.WithPlacementMembers(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "second shard active", func() bool { return allActive(a.State(), s2.ID, 1) })
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if _, _, err := a.Client(s2.ID).Apply(wctx, []byte("w")); err != nil {
		t.Errorf("apply to a shard of the host after a Close failed: %v", err)
	}
}
