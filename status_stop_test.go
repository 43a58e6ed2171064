package zongzi_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// testSlowCloseType is the test state machine whose Close waits until the
// test lets it return, holding its host's Stop.
const testSlowCloseType = "zongzi://github.com/zongzi-kv/zongzi/test/slow-close"

var (
	// closing receives a value when a slowCloseSM's Close starts.
	closing = make(chan struct{}, 16)
	// letClose, closed, lets every waiting slowCloseSM's Close return;
	// nil, Close returns at once. A test sets its own.
	letClose   chan struct{}
	letCloseMu sync.Mutex
)

type slowCloseSM struct{ *logSM }

func newSlowCloseSM(shardID, replicaID uint64) zongzi.StateMachine {
	return slowCloseSM{newLogSM(shardID, replicaID).(*logSM)}
}

func (slowCloseSM) Close() error {
	letCloseMu.Lock()
	wait := letClose
	letCloseMu.Unlock()
	if wait == nil {
		return nil
	}
	select {
	case closing <- struct{}{}:
	default:
	}
	<-wait
	return nil
}

// TestStatusWhileStopping: while Stop tears an agent down, its status is
// stopping, not ready, so that a health check built on it stops sending
// requests; then it is stopped.
func TestStatusWhileStopping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	release := make(chan struct{})
	letCloseMu.Lock()
	letClose = release
	letCloseMu.Unlock()
	defer func() {
		letCloseMu.Lock()
		letClose = nil
		letCloseMu.Unlock()
	}()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a := c.nodes[0].agent
	c.createActive(ctx, a, testSlowCloseType, "slow-close")
	stopped := make(chan struct{})
	go func() {
		a.Stop()
		close(stopped)
	}()
	select {
	case <-closing:
	case <-time.After(time.Minute):
		close(release)
		t.Fatal("Stop never closed the state machine")
	}
	got := a.Status()
	close(release)
	<-stopped
	if got != zongzi.AgentStatusStopping {
		t.Errorf("status %v while Stop runs, want %v", got, zongzi.AgentStatusStopping)
	}
	if got := a.Status(); got != zongzi.AgentStatusStopped {
		t.Errorf("status %v after Stop, want %v", got, zongzi.AgentStatusStopped)
	}
}
