package raftnet

import (
	"context"
	"hash/crc32"
	"net"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// waitUntil waits up to d for cond, and says whether it held.
func waitUntil(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// accepted returns how many connections t serves, and how many of them
// wait for their first frame.
func (t *Transport) accepted() (open, pending int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns), t.pending.Len()
}

// TestConnectionsWithoutHelloAreClosed opens many connections that send
// nothing, and one that sends half a hello, as a port scanner or a buggy
// client would: each is closed once the hello deadline passed, long before
// the idle timeout, while a sender's batches go through meanwhile.
func TestConnectionsWithoutHelloAreClosed(t *testing.T) {
	const n, hello = 64, time.Second
	r := startReceiverOf(t, Factory{hello: hello}, time.Minute)
	silent := make([]net.Conn, n)
	for i := range silent {
		silent[i] = dialTCP(t, r.address())
	}
	half := dialTCP(t, r.address())
	addr := []byte("127.0.0.1:4242")
	if _, err := half.Write(rawFrame(frameHello, addr, crc32.Checksum(addr, crcTable))[:headerSize+4]); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(10*time.Second, func() bool { open, _ := r.accepted(); return open == n+1 }) {
		open, pending := r.accepted()
		t.Fatalf("%d connections served, %d of them waiting; want %d", open, pending, n+1)
	}
	start := time.Now()
	r.sendOne(t) // a connection that says hello is served
	for i, c := range append(silent, half) {
		if !closedWithin(t, c, hello+5*time.Second-time.Since(start)) {
			t.Fatalf("connection %d (of %d silent, then one half a hello) is open %v after it was accepted, hello deadline %v",
				i, n, time.Since(start), hello)
		}
	}
	if !waitUntil(5*time.Second, func() bool { open, pending := r.accepted(); return open == 1 && pending == 0 }) {
		open, pending := r.accepted()
		t.Fatalf("%d connections served, %d of them waiting; want only the sender's, which said hello", open, pending)
	}
}

// startHost starts a Dragonboat host on addr with the transport f
// creates, and a replica of shard 1 among members.
func startHost(t *testing.T, f Factory, addr string, replicaID uint64, members map[uint64]string) *dragonboat.NodeHost {
	t.Helper()
	nh, err := dragonboat.NewNodeHost(config.NodeHostConfig{
		NodeHostDir: t.TempDir(), RTTMillisecond: 10, RaftAddress: addr, DeploymentID: 7,
		Expert: config.ExpertConfig{TransportFactory: f, LogDB: config.GetTinyMemLogDBConfig()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nh.Close)
	sm := func(uint64, uint64) sm.IStateMachine { return &nopSM{} }
	if err := nh.StartReplica(members, false, sm, config.Config{ShardID: 1, ReplicaID: replicaID, ElectionRTT: 10, HeartbeatRTT: 1}); err != nil {
		t.Fatal(err)
	}
	return nh
}

// freeAddr returns a loopback address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestCrowdOfSilentConnectionsLetsHostsIn fills a host's raft port with
// connections that send nothing, four times as many as may wait for their
// hello, before another host of its shard starts: the oldest beyond the
// bound are closed at once, not at the hello deadline, and the two hosts
// still reach each other, a proposal needing both of them.
func TestCrowdOfSilentConnectionsLetsHostsIn(t *testing.T) {
	const bound = 8
	f := Factory{hello: time.Minute, pending: bound}
	addrA, addrB := freeAddr(t), freeAddr(t)
	members := map[uint64]string{1: addrA, 2: addrB}
	a := startHost(t, f, addrA, 1, members)
	silent := make([]net.Conn, 4*bound)
	for i := range silent {
		silent[i] = dialTCP(t, addrA)
	}
	for i, c := range silent[:len(silent)-bound] {
		if !closedWithin(t, c, 10*time.Second) {
			t.Fatalf("silent connection %d of %d is open 10 s later, %d may wait for their hello", i, len(silent), bound)
		}
	}
	for i, c := range silent[len(silent)-bound:] {
		if closedWithin(t, c, 100*time.Millisecond) {
			t.Fatalf("silent connection %d of %d, among the %d newest, was closed", len(silent)-bound+i, len(silent), bound)
		}
	}
	b := startHost(t, f, addrB, 2, members)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, nh := range []*dragonboat.NodeHost{a, b} {
		for {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			_, err := nh.SyncPropose(pctx, nh.GetNoOPSession(1), []byte("x"))
			pcancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("no proposal through host %s in 30 s, its peer's port crowded: %v", nh.RaftAddress(), err)
			}
		}
	}
}
