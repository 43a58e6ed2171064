package zongzi_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4"

	"github.com/zongzi-kv/zongzi"
)

// testStopSaveType is the test state machine whose snapshots wait for their
// replica to stop, then fail with an error of their own, as a state machine
// that checks its close channel now and then does.
const testStopSaveType = "zongzi://github.com/zongzi-kv/zongzi/test/stop-save"

// saving receives a value each time a stopSaveSM starts saving a snapshot.
var saving = make(chan struct{}, 16)

type stopSaveSM struct{ *logSM }

func newStopSaveSM(shardID, replicaID uint64) zongzi.StateMachine {
	return stopSaveSM{newLogSM(shardID, replicaID).(*logSM)}
}

func (stopSaveSM) SaveSnapshot(_ any, _ io.Writer, close <-chan struct{}) error {
	select {
	case saving <- struct{}{}:
	default:
	}
	<-close
	return errors.New("test: snapshot stopped")
}

// TestStopDuringSnapshot stops a host while one of its replicas saves a
// snapshot that then fails with its state machine's own error: the host
// stops cleanly. Dragonboat panics on a snapshot error other than its
// ErrSnapshotStopped, which the agent returns for a replica that stops.
func TestStopDuringSnapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	s := c.createActive(ctx, a1, testStopSaveType, "stop-save")
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, _, err := a1.Client(s.ID).Apply(wctx, []byte("w")); err != nil {
		t.Fatal(err)
	}
	nh := a1.NodeHost()
	go func() { _, _ = nh.SyncRequestSnapshot(ctx, s.ID, dragonboat.SnapshotOption{}) }()
	select {
	case <-saving:
	case <-time.After(settle):
		t.Fatal("no snapshot started")
	}
	a1.Stop() // a panic here ends the test binary
	if a1.Status() != zongzi.AgentStatusStopped {
		t.Errorf("status %v, want stopped", a1.Status())
	}
}
