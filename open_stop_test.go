package zongzi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// testStopOpenType is the on-disk test state machine whose Open waits for
// its replica to stop, then fails with an error of its own, as a state
// machine that checks its stop channel while it opens a large store does.
const testStopOpenType = "zongzi://github.com/zongzi-kv/zongzi/test/stop-open"

// opening receives a value each time a stopOpenSM starts opening.
var opening = make(chan struct{}, 16)

type stopOpenSM struct{ *diskSM }

func newStopOpenSM(shardID, replicaID uint64) zongzi.StateMachinePersistent {
	return stopOpenSM{&diskSM{}}
}

func (stopOpenSM) Open(stopc <-chan struct{}) (uint64, error) {
	select {
	case opening <- struct{}{}:
	default:
	}
	<-stopc
	return 0, errors.New("test: open stopped")
}

// TestStopDuringOpen stops a host while one of its on-disk replicas opens
// and its Open then fails with its state machine's own error: the host
// stops cleanly. Dragonboat panics on an Open error other than its
// ErrOpenStopped, which the agent returns for a replica that stops.
func TestStopDuringOpen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, a := startOne(ctx, t)
	defer c.stop()
	if _, _, err := a.ShardCreate(ctx, testStopOpenType, zongzi.WithName("stop-open"), zongzi.WithPlacementMembers(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-opening:
	case <-time.After(settle):
		t.Fatal("no replica started opening")
	}
	a.Stop() // a panic here ends the test binary
	if a.Status() != zongzi.AgentStatusStopped {
		t.Errorf("status %v, want stopped", a.Status())
	}
}
