package zongzi_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestQueryGetsTheReadsContext reads with a query that the state machine
// answers only once the query's ctx is done: the read must end with its
// own deadline, stale or not, rather than wait in the state machine for
// good.
func TestQueryGetsTheReadsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	var unblock sync.Once
	defer unblock.Do(func() { close(queriesUnblocked) })
	a1 := c.nodes[0].agent
	s := c.createActive(ctx, a1, testType, "query-ctx")
	client := a1.Client(s.ID)
	for _, stale := range []bool{true, false} {
		rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		done := make(chan error, 1)
		go func() {
			_, _, err := client.Read(rctx, []byte(waitQuery), stale)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil && rctx.Err() == nil {
				t.Errorf("stale=%v: the query returned before its deadline", stale)
			}
			if err != nil && !errors.Is(err, zongzi.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("stale=%v: %v, want a timeout", stale, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("stale=%v: the read went on 10 s after its deadline: the query never saw it", stale)
			unblock.Do(func() { close(queriesUnblocked) })
			<-done
		}
		rcancel()
	}
}
