package zongzi_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestRegistryWriteAfterAbandonedOne gives up on registry writes while they
// are in flight, each followed by another write: the next write must apply
// as itself. A write abandoned after it committed left the registry
// session's series ID in use, and the next write under it got the first
// one's cached result, reported as its own, without being applied.
func TestRegistryWriteAfterAbandonedOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a")
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	a := c.nodes[0].agent
	for i := range 30 {
		x, cancelX := context.WithTimeout(ctx, 2*time.Second)
		time.AfterFunc(time.Duration(100+30*i)*time.Microsecond, cancelX) // while it is in flight
		_, _, _ = a.ShardCreate(x, testType, zongzi.WithName(fmt.Sprintf("abandoned-%d", i)))
		cancelX()
		name := fmt.Sprintf("next-%d", i)
		y, cancelY := context.WithTimeout(ctx, 10*time.Second)
		s, created, err := a.ShardCreate(y, testType, zongzi.WithName(name))
		cancelY()
		if err != nil {
			t.Fatalf("round %d: create %s: %v", i, name, err)
		}
		if s.Name != name || !created {
			t.Fatalf("round %d: create %s returned shard %d %q (created %v): another write's result", i, name, s.ID, s.Name, created)
		}
		if _, ok := a.ShardFind(name); !ok {
			t.Fatalf("round %d: %s acknowledged but not in the registry", i, name)
		}
	}
}

// TestRegistryWriteWaitsNoLongerThanItsDeadline: registry writes from one
// host take turns, and one that waits for its turn behind a write that
// cannot finish (the prime shard lost its quorum) gives up at its own
// deadline.
func TestRegistryWriteWaitsNoLongerThanItsDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a := c.nodes[0].agent
	c.nodes[1].agent.Stop()
	c.nodes[2].agent.Stop()
	long, cancelLong := context.WithTimeout(ctx, 20*time.Second)
	defer cancelLong()
	go func() { _, _, _ = a.ShardCreate(long, testType, zongzi.WithName("holds-the-turn")) }()
	// Nothing outside shows when the first write holds the turn; until it
	// does, the second write takes the turn itself and fails otherwise.
	for try := 1; ; try++ {
		time.Sleep(100 * time.Millisecond)
		short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
		start := time.Now()
		_, _, err := a.ShardCreate(short, testType, zongzi.WithName("waits"))
		took := time.Since(start)
		cancelShort()
		if !errors.Is(err, zongzi.ErrTimeout) || took > 5*time.Second {
			t.Fatalf("a write with 500 ms left behind one that cannot finish: %v after %v, want ErrTimeout at its deadline", err, took)
		}
		if strings.Contains(err.Error(), "waiting for the previous proposal") {
			return
		}
		if try == 10 {
			t.Fatalf("the second write never waited for the first: %v", err)
		}
	}
}
