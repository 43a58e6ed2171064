package zongzi_test

import (
	"context"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestBehindReplicaReadsLeaveSilentHost: a host whose replica of a shard
// is still catching up sends its reads to the other hosts first; when
// the first of them has just gone silent (a partition, a power loss, not
// yet known as such by the prober), a read gives it only a share of its
// deadline and goes on to the next host, or at last the replica here,
// instead of waiting there until its whole deadline passed.
func TestBehindReplicaReadsLeaveSilentHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var near string
	var quiet func()
	c, s := catchCluster(ctx, t, "behind-silent", func(c *cluster) {
		near, quiet = nearestFirst(t, c) // host a is the nearest from host d
	})
	const writes = 200 // 20 s for host d to apply
	applyAll(ctx, t, c.nodes[0].agent, s.ID, writes)
	d := c.addNode("d")
	d.register = registerCatch(100*time.Millisecond, nil)
	c.startAll(ctx, d)
	read := func() error {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		defer rcancel()
		_, _, err := d.agent.Client(s.ID).Read(rctx, nil, true)
		return err
	}
	waitFor(t, settle, "host d's replica behind, its reads routed to host a first", func() bool {
		route := zongzi.RouteOf(d.agent, s.ID)
		if !zongzi.RunsReplica(d.agent, s.ID) || len(route) != 3 || route[0] != near || read() != nil {
			return false
		}
		for _, addr := range route {
			if _, measured := zongzi.RoundTrip(d.agent, addr); !measured {
				return false
			}
		}
		return true
	})
	if zongzi.CaughtUp(d.agent, s.ID) {
		t.Fatal("host d's replica caught up before host a went silent: the test shows nothing")
	}
	quiet()
	t.Logf("host a (%s) went silent", near)
	for i := range 3 {
		if err := read(); err != nil {
			t.Errorf("read %d from host d, its replica behind, host a silent: %v", i, err)
		}
	}
	if zongzi.CaughtUp(d.agent, s.ID) {
		t.Fatal("host d's replica caught up meanwhile: the test shows nothing")
	}
}
