package zongzi_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
	"github.com/zongzi-kv/zongzi/internal/testproxy"
)

// A host that goes silent (a partition, a power loss: here the bus of a
// host behind a proxy that stops passing bytes, while its raft goes on)
// is no longer the first to which another host forwards reads: the
// prober finds it does not answer, and the reads go to the other hosts
// with a replica, instead of waiting for their deadlines there until the
// connection's keepalive gives up on it, some 50 s later.
func TestForwardedReadsLeaveSilentHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	near, quiet := nearestFirst(t, c) // host a is the nearest from host d
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	s := c.createActive(ctx, c.nodes[0].agent, testType, "forwarded")
	d := c.addNode("d")
	c.startAll(ctx, d)
	if ids := replicasOn(d.agent, s.ID); len(ids) != 0 {
		t.Fatalf("host d has replicas %v of the shard, want none", ids)
	}
	read := func() error {
		rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer rcancel()
		_, _, err := d.agent.Client(s.ID).Read(rctx, nil, true)
		return err
	}
	waitFor(t, settle, "reads from host d, routed to host a first", func() bool {
		route := zongzi.RouteOf(d.agent, s.ID)
		if len(route) != 3 || route[0] != near || read() != nil {
			return false
		}
		for _, addr := range route {
			if _, measured := zongzi.RoundTrip(d.agent, addr); !measured {
				return false
			}
		}
		return true
	})
	quiet()
	t.Logf("host a (%s) went silent", near)
	start := time.Now()
	waitFor(t, 15*time.Second, "reads from host d to go to a host that answers", func() bool {
		for range 3 {
			if err := read(); err != nil {
				return false
			}
		}
		return true
	})
	t.Logf("reads answered again %v after host a went silent", time.Since(start).Round(time.Millisecond))
}

// A leader read from a host whose replica knows the shard's new leader
// goes to that leader's host, not to the host the registry still names
// (a new leader records itself through the prime shard, which may be
// electing a leader too when a host that led both goes silent). Here the
// registry is kept from learning of the new leader, and the old one's bus
// is silent: the read waited there until its deadline.
func TestLeaderReadGoesToTheLeaderItsReplicaKnows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	var held atomic.Bool
	quiet := map[string]func(){} // by host ID, once started
	silence := make([]func(), len(c.nodes))
	c.peers = nil
	for i, n := range c.nodes {
		proxy, q := testproxy.Silent(t, n.api, 0)
		n.opts = append(n.opts, zongzi.WithAddrApi(proxy, n.api),
			zongzi.WithLeaderHeld(func(uint64) bool { return held.Load() }))
		c.peers = append(c.peers, proxy)
		silence[i] = q
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	byHost := map[string]*zongzi.Agent{}
	for i, n := range c.nodes {
		quiet[n.agent.HostID()] = silence[i]
		byHost[n.agent.HostID()] = n.agent
	}
	a1 := c.nodes[0].agent
	s := c.createActive(ctx, a1, testType, "led")
	writeEventually(ctx, t, a1, s.ID, "a write to the shard")
	var old, next, reader *zongzi.Agent
	waitFor(t, settle, "every host to know the recorded leader", func() bool {
		sh, _ := a1.State().Shard(s.ID)
		r, ok := a1.State().Replica(sh.Leader)
		if !ok {
			return false
		}
		for _, n := range c.nodes {
			if id, _ := n.agent.Client(s.ID).Leader(); id != sh.Leader {
				return false
			}
			if rs, _ := n.agent.State().Shard(s.ID); rs.Leader != sh.Leader {
				return false
			}
		}
		old = byHost[r.HostID]
		return true
	})
	for _, n := range c.nodes {
		switch {
		case n.agent == old:
		case next == nil:
			next = n.agent
		default:
			reader = n.agent
		}
	}
	held.Store(true)
	nextID := replicasOn(next, s.ID)[0]
	waitFor(t, settle, "the leadership to move, unrecorded", func() bool {
		if id, _ := reader.Client(s.ID).Leader(); id == nextID {
			return true
		}
		_ = old.NodeHost().RequestLeaderTransfer(s.ID, nextID)
		time.Sleep(100 * time.Millisecond)
		return false
	})
	if sh, _ := reader.State().Shard(s.ID); sh.Leader == nextID {
		t.Fatal("the registry recorded the new leader")
	}
	quiet[old.HostID()]()
	rctx, rcancel := context.WithTimeout(ctx, time.Second)
	defer rcancel()
	if _, _, err := reader.Client(s.ID).LeaderRead(rctx, nil); err != nil {
		t.Fatalf("leader read with the old leader's host silent: %v", err)
	}
}

// Reads forwarded to a host that went silent, on a read stream whose Send
// then blocked (its flow-control window full) until a shorter read's
// deadline, are tried at another host with a replica while their own
// deadlines leave time: the stream broke because the host stopped
// reading it, which says nothing of their deadlines. They failed with
// ErrTimeout at the shorter read's deadline, seconds before their own.
func TestReadsOnStuckStreamGoElsewhere(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, _, quiet, read := readsFromD(ctx, t, "stuck")
	defer c.stop()
	quiet()
	start := time.Now()
	// Three reads of 400 KiB fill the stream's 1 MiB window, and the
	// Send of the next blocks until that read's deadline.
	query := make([]byte, 400<<10)
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- read(10*time.Second, query) }()
		time.Sleep(150 * time.Millisecond) // each goes in a call of its own
	}
	_ = read(300*time.Millisecond, nil)
	for i := range 3 {
		if err := <-errs; err != nil {
			t.Errorf("read %d, with 10 s to go, failed after %v: %v", i, time.Since(start).Round(time.Millisecond), err)
		}
	}
	t.Logf("the reads returned %v after host a went silent", time.Since(start).Round(time.Millisecond))
}

// Reads forwarded from one host to another, as many stuck as the calls
// the bus may have outstanding to that host (here queries that wait for
// their deadline; a shard without a leader holds reads as long), hold
// back no other read to that host: it waited in the queue for a stuck
// call's deadline. Host a is the nearest from host d, so that every read
// goes there.
func TestStuckReadsHoldBackNoOther(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, client, _, read := readsFromD(ctx, t, "stuck-reads")
	defer c.stop()
	stuck, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	for range 70 { // each in a call of its own, once the one before stalled
		wg.Go(func() {
			rctx, rcancel := context.WithTimeout(stuck, time.Minute)
			defer rcancel()
			_, _, _ = client.Read(rctx, []byte(waitQuery), true)
		})
		time.Sleep(200 * time.Millisecond)
	}
	if err := read(time.Second, nil); err != nil {
		t.Fatalf("a read with 70 reads stuck: %v", err)
	}
}

// readsFromD starts hosts a, b and c behind proxies (nearestFirst), a
// shard of the given name on them, and a host d without a replica of it,
// and waits until d's reads of the shard go to host a first. It returns
// the cluster, which the caller stops, d's client of the shard, the
// function that silences host a, and read, a stale read of query from d
// with the given timeout.
func readsFromD(ctx context.Context, t *testing.T, name string) (c *cluster, client *zongzi.ShardClient, silence func(), read func(time.Duration, []byte) error) {
	t.Helper()
	c = newCluster(t, "a", "b", "c")
	near, silence := nearestFirst(t, c)
	c.startAll(ctx, c.nodes...)
	s := c.createActive(ctx, c.nodes[0].agent, testType, name)
	d := c.addNode("d")
	c.startAll(ctx, d)
	client = d.agent.Client(s.ID)
	read = func(timeout time.Duration, query []byte) error {
		rctx, rcancel := context.WithTimeout(ctx, timeout)
		defer rcancel()
		_, _, err := client.Read(rctx, query, true)
		return err
	}
	waitFor(t, settle, "reads from host d, routed to host a first", func() bool {
		route := zongzi.RouteOf(d.agent, s.ID)
		return len(route) == 3 && route[0] == near && read(time.Second, nil) == nil
	})
	return c, client, silence, read
}

// nearestFirst puts the buses of c's hosts behind proxies, that of the
// first host without delay and the others 20 ms late, so that the first
// is the nearest from any other host. It returns the first's address, and
// the function that silences it.
func nearestFirst(t *testing.T, c *cluster) (addr string, silence func()) {
	c.peers = nil
	for i, n := range c.nodes {
		delay := 20 * time.Millisecond
		if i == 0 {
			delay = 0
		}
		proxy, quiet := testproxy.Silent(t, n.api, delay)
		n.opts = append(n.opts, zongzi.WithAddrApi(proxy, n.api))
		c.peers = append(c.peers, proxy)
		if i == 0 {
			addr, silence = proxy, quiet
		}
	}
	return addr, silence
}

// Forwarded reads whose callers cancel them while the host serves them
// (queries that wait, callers without deadlines that give up) leave no
// other read to that host waiting: the bus stopped counting such a read
// at once, sent the host more than it serves on a read stream at once,
// and the host stopped reading the stream until their batches' deadlines.
func TestCancelledReadsHoldBackNoOther(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, client, _, read := readsFromD(ctx, t, "cancelled-reads")
	defer c.stop()
	for range 150 {
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _, _ = client.Read(rctx, []byte(waitQuery), true)
		}()
		time.Sleep(20 * time.Millisecond) // at the host
		rcancel()
		<-done
	}
	if err := read(time.Second, nil); err != nil {
		t.Fatalf("a read after 150 cancelled ones: %v", err)
	}
}
