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
// good, and fail with ErrTimeout (or get the answer given as the deadline
// passes). Served by a local replica, and forwarded to the host of a
// shard's only replica, alone or batched with other reads: the bus's
// bare context error used to come back there.
func TestQueryGetsTheReadsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	var unblock sync.Once
	defer unblock.Do(func() { close(queriesUnblocked) })
	a1 := c.nodes[0].agent
	local := c.createActive(ctx, a1, testType, "query-ctx")
	single := createMembers(ctx, t, a1, "query-ctx-forwarded", 1)
	var far *zongzi.Agent // a host without a replica of single
	for _, n := range c.nodes {
		if len(replicasOn(n.agent, single.ID)) == 0 {
			far = n.agent
		}
	}
	for _, tc := range []struct {
		name   string
		client *zongzi.ShardClient
		reads  int
	}{
		{"local", a1.Client(local.ID), 1},
		{"forwarded", far.Client(single.ID), 1},
		{"forwarded, batched", far.Client(single.ID), 3},
	} {
		for _, stale := range []bool{true, false} {
			rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
			deadline, _ := rctx.Deadline()
			done := make(chan error, tc.reads)
			for range tc.reads {
				go func() {
					_, _, err := tc.client.Read(rctx, []byte(waitQuery), stale)
					done <- err
				}()
			}
			for range tc.reads {
				select {
				case err := <-done:
					// By the clock: a forwarded query ends with the serving
					// host's deadline, no earlier than the read's, whose
					// ctx a loaded machine may not have marked done yet.
					if err == nil && time.Now().Before(deadline) {
						t.Errorf("%s, stale=%v: the query returned before its deadline", tc.name, stale)
					}
					if err != nil && !errors.Is(err, zongzi.ErrTimeout) {
						t.Errorf("%s, stale=%v: %v, want ErrTimeout", tc.name, stale, err)
					}
				case <-time.After(10 * time.Second):
					t.Errorf("%s, stale=%v: the read went on 10 s after its deadline: the query never saw it", tc.name, stale)
					unblock.Do(func() { close(queriesUnblocked) })
					<-done
				}
			}
			rcancel()
		}
	}
}
