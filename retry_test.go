package zongzi_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi"
)

// TestRequestsWaitForLeader stops two of a shard's three hosts, so that the
// replica left has no leader and drops what it is asked, and sends it a
// write and a linearizable read. Both must wait, within their deadline, for
// a leader (one host restarts after a while) instead of failing at once
// with ErrShardNotReady; and the write must apply once.
func TestRequestsWaitForLeader(t *testing.T) {
	testRequestsWaitForLeader(t, []byte("while-leaderless"), false)
}

// TestLargeRequestsWaitForLeader is TestRequestsWaitForLeader with a
// command and a query over the bus's message limit, which only the
// replica here can serve: they too must wait for a leader, not fail at
// once with ErrTooLarge as if the other hosts' replicas, which they could
// not be sent to, were the only ones. The write may end with its outcome
// unknown: a replica here that follows forwards it to the new leader in a
// raft message, which may be lost while the hosts reconnect, and the
// proposal then waits for its deadline (seen in about one run in eight).
func TestLargeRequestsWaitForLeader(t *testing.T) {
	testRequestsWaitForLeader(t, bytes.Repeat([]byte{'x'}, 5<<20), true)
}

// testRequestsWaitForLeader is TestRequestsWaitForLeader with cmd as the
// write and the read's query; lossy accepts a write of unknown outcome.
func testRequestsWaitForLeader(t *testing.T, cmd []byte, lossy bool) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	s := c.createActive(ctx, a1, testType, "wait")
	client := a1.Client(s.ID)
	count := func() uint64 {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		n, _, err := client.Read(rctx, nil, false)
		if err != nil {
			t.Fatalf("linearizable read: %v", err)
		}
		return n
	}
	before := count()

	c.nodes[1].agent.Stop()
	c.nodes[2].agent.Stop()
	waitFor(t, settle, "the replica left to lose its leader", func() bool {
		leader, _ := client.Leader()
		return leader == 0
	})

	type answer struct {
		what string
		err  error
	}
	answers := make(chan answer, 2)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	go func() {
		_, _, err := client.Apply(rctx, cmd)
		answers <- answer{"write", err}
	}()
	go func() {
		_, _, err := client.Read(rctx, cmd, false)
		answers <- answer{"read", err}
	}()
	// With no leader anywhere, neither can be served yet: an answer now
	// would be an error given up too early.
	select {
	case a := <-answers:
		t.Fatalf("%s answered without a leader: %v", a.what, a.err)
	case <-time.After(time.Second):
	}

	c.startAll(ctx, c.nodes[1])
	applied := true
	for range 2 {
		a := <-answers
		if lossy && a.what == "write" && errors.Is(a.err, zongzi.ErrOutcomeUnknown) {
			t.Logf("write once a leader is back: %v", a.err)
			applied = false
			continue
		}
		if a.err != nil {
			t.Fatalf("%s once a leader is back: %v", a.what, a.err)
		}
	}
	if got := count(); applied && got != before+1 || got > before+1 {
		t.Errorf("%d commands applied after the write, want %d", got, before+1)
	}
}
