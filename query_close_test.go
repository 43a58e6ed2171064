package zongzi_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// blockQuerySM is a logSM whose Query waits until release is closed, and
// that records whether its Close came while a query ran.
type blockQuerySM struct {
	logSM
	entered, release chan struct{}
	once             sync.Once
	running          atomic.Int32
	closed           atomic.Bool
	closedInQuery    atomic.Bool
}

func (s *blockQuerySM) Query(ctx context.Context, q []byte) *zongzi.Result {
	s.running.Add(1)
	defer s.running.Add(-1)
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return s.logSM.Query(ctx, q)
}

func (s *blockQuerySM) Close() error {
	if s.running.Load() > 0 {
		s.closedInQuery.Store(true)
	}
	s.closed.Store(true)
	return nil
}

// TestCloseWaitsForRunningQuery: a state machine's Close comes once the
// queries running on it have returned, so that none reads what Close
// released (a persistent state machine's files, say). Dragonboat calls
// Query on a concurrent state machine without a lock, and closes it when
// its replica stops, whatever runs on it.
func TestCloseWaitsForRunningQuery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := &blockQuerySM{entered: make(chan struct{}), release: make(chan struct{})}
	a, s := startAlone(ctx, t, "zongzi://test/blockquery", func(uint64, uint64) zongzi.StateMachine { return m })
	defer a.Stop()
	released := false
	defer func() {
		if !released {
			close(m.release)
		}
	}()
	read := make(chan error, 1)
	go func() {
		_, _, err := a.Client(s.ID).Read(ctx, nil, true)
		read <- err
	}()
	select {
	case <-m.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the query did not reach the state machine")
	}
	replicaID := a.State().ShardReplicas(s.ID)[0].ID
	if err := a.NodeHost().StopReplica(s.ID, replicaID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // Dragonboat closes the state machine on its own goroutine
	if m.closed.Load() {
		t.Error("state machine closed while a query ran on it")
	}
	close(m.release)
	released = true
	waitFor(t, 10*time.Second, "state machine closed once the query returned", m.closed.Load)
	if m.closedInQuery.Load() {
		t.Error("Close came while a query ran")
	}
	if err := <-read; err != nil {
		t.Errorf("the query that ran: %v", err)
	}
}
