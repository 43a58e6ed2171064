package zongzi

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// TestHostResolver follows one host's raft address through the registry and
// what the host says itself: a learnt address wins until the registry
// records a new one for that host.
func TestHostResolver(t *testing.T) {
	const (
		hostA = "0b5c5bd4-6a3e-4b0e-9a43-6f3b1a3c7d01"
		hostB = "0b5c5bd4-6a3e-4b0e-9a43-6f3b1a3c7d02"
	)
	store := registry.New()
	index := uint64(0)
	putHost := func(id, addr string) {
		t.Helper()
		index++
		h := Host{ID: id, Status: registry.HostStatusActive, ApiAddress: addr + "0", RaftAddress: addr}
		if res := store.Apply(index, registry.Command{Op: registry.OpHostPut, Host: &h}.Encode()); res.Err() != nil {
			t.Fatalf("put host %s: %+v", id, res)
		}
	}
	r := newHostResolver(store.State)
	want := func(shardID, replicaID uint64, addr string) {
		t.Helper()
		got, key, err := r.Resolve(shardID, replicaID)
		if err != nil || got != addr || key != addr {
			t.Fatalf("Resolve(%d, %d) = %q, %q, %v; want %q as address and key", shardID, replicaID, got, key, err, addr)
		}
	}
	unknown := func(shardID, replicaID uint64) {
		t.Helper()
		if got, _, err := r.Resolve(shardID, replicaID); !errors.Is(err, errUnknownHost) {
			t.Fatalf("Resolve(%d, %d) = %q, %v; want errUnknownHost", shardID, replicaID, got, err)
		}
	}

	r.Add(1, 5, hostA)
	unknown(1, 5) // neither the registry nor the host said where it is
	unknown(1, 6) // no such replica

	putHost(hostA, "127.0.0.1:2001")
	want(1, 5, "127.0.0.1:2001")
	r.Add(2, 9, hostA)
	want(2, 9, "127.0.0.1:2001") // every replica of a host shares its connection key

	r.learn(hostA, "127.0.0.1:3001") // the host came back on another address
	want(1, 5, "127.0.0.1:3001")
	putHost(hostB, "127.0.0.1:2002") // the registry changes, not for hostA
	want(1, 5, "127.0.0.1:3001")
	putHost(hostA, "127.0.0.1:4001") // the registry records a new address
	want(1, 5, "127.0.0.1:4001")

	r.Add(1, 5, hostB) // a replica ID's target as Dragonboat says it now
	want(1, 5, "127.0.0.1:2002")
	r.Add(3, 1, "127.0.0.1:9000") // data from before host IDs: a raft address
	want(3, 1, "127.0.0.1:9000")

	r.Remove(1, 5)
	unknown(1, 5)
	r.RemoveShard(2)
	unknown(2, 9)
	want(3, 1, "127.0.0.1:9000")
}

// TestLearnedAddressesAreBounded: a peer that names another host in every
// batch, or hosts with IDs that are not UUIDs, teaches the resolver at most
// maxUnregistered addresses of hosts the registry lacks; a registered
// host's own address is still learnt.
func TestLearnedAddressesAreBounded(t *testing.T) {
	store := registry.New()
	const hostA = "0b5c5bd4-6a3e-4b0e-9a43-6f3b1a3c7d01"
	h := Host{ID: hostA, Status: registry.HostStatusActive, ApiAddress: "127.0.0.1:20010", RaftAddress: "127.0.0.1:2001"}
	if res := store.Apply(1, registry.Command{Op: registry.OpHostPut, Host: &h}.Encode()); res.Err() != nil {
		t.Fatalf("put host: %+v", res)
	}
	r := newHostResolver(store.State)
	r.Add(1, 5, hostA)
	if _, _, err := r.Resolve(1, 5); err != nil { // takes the registry in
		t.Fatal(err)
	}
	for i := range 4 * maxUnregistered {
		r.learn(uuid.NewString(), "127.0.0.1:9")
		r.learn(fmt.Sprintf("not-a-uuid-%d", i), "127.0.0.1:9")
	}
	if n := len(r.book.Load().learned); n > maxUnregistered {
		t.Fatalf("%d addresses learned of hosts the registry lacks, want at most %d", n, maxUnregistered)
	}
	r.learn(hostA, "127.0.0.1:3001")
	if got, _, err := r.Resolve(1, 5); err != nil || got != "127.0.0.1:3001" {
		t.Fatalf("Resolve = %q, %v; want the address hostA said", got, err)
	}
}

// TestResolverBoundsUnlistedReplicas floods the resolver, as a peer's
// messages would, with made-up shards and replicas, on hosts it knows and
// on hosts it does not: it keeps the replicas the registry lists, at most
// maxUnlisted others, copies no map for them, and still resolves a listed
// replica, an unlisted one that a host keeps sending from, and one the
// registry lists that it was never told of.
func TestResolverBoundsUnlistedReplicas(t *testing.T) {
	const (
		hostA = "0b5c5bd4-6a3e-4b0e-9a43-6f3b1a3c7d01"
		hostB = "0b5c5bd4-6a3e-4b0e-9a43-6f3b1a3c7d02"
		hostC = "0b5c5bd4-6a3e-4b0e-9a43-6f3b1a3c7d03" // not in the registry
	)
	store := registry.New()
	apply := func(c registry.Command) {
		t.Helper()
		if res := store.Apply(store.State().Index()+1, c.Encode()); res.Err() != nil {
			t.Fatalf("%s: %+v", c.Op, res)
		}
	}
	apply(registry.Command{Op: registry.OpInit,
		Hosts: []Host{
			{ID: hostA, Status: registry.HostStatusActive, ApiAddress: "127.0.0.1:1001", RaftAddress: "127.0.0.1:2001"},
			{ID: hostB, Status: registry.HostStatusActive, ApiAddress: "127.0.0.1:1002", RaftAddress: "127.0.0.1:2002"},
		},
		Replicas: []Replica{
			{ID: 1, HostID: hostA, Status: registry.ReplicaStatusActive},
			{ID: 2, HostID: hostB, Status: registry.ReplicaStatusActive},
		},
	})
	r := newHostResolver(store.State)
	want := func(shardID, replicaID uint64, addr string) {
		t.Helper()
		if got, _, err := r.Resolve(shardID, replicaID); err != nil || got != addr {
			t.Fatalf("Resolve(%d, %d) = %q, %v; want %q", shardID, replicaID, got, err, addr)
		}
	}
	r.Add(0, 1, hostA)
	r.Add(0, 2, hostB)
	listed := r.targets.m.Load()

	hosts := []string{hostA, hostB, hostC, "127.0.0.1:9", strings.Repeat("x", 1<<20)}
	for i := range 20 * maxUnlisted {
		target := hosts[i%len(hosts)]
		r.Add(uint64(1000+i), uint64(5000+i), target) // a made-up shard
		r.Add(0, uint64(100000+i), target)            // a made-up replica of the prime shard, which runs here
		r.Add(7, 1, target)                           // a listed replica, in a shard it is not in
	}
	if got := r.targets.m.Load(); got != listed {
		t.Errorf("the flood changed the targets: %d of them, want the %d listed replicas'", len(*got), len(*listed))
	}
	if n := r.unlisted.len(); n > maxUnlisted {
		t.Errorf("%d targets of unlisted replicas kept, want at most %d", n, maxUnlisted)
	}
	for _, target := range r.unlisted.m {
		if len(target) > maxTarget {
			t.Errorf("a target of %d bytes kept, want at most %d", len(target), maxTarget)
		}
	}
	want(0, 1, "127.0.0.1:2001")
	want(0, 2, "127.0.0.1:2002")

	// The leader of the prime shard, on a host this one's registry does not
	// list yet, sends again: it is resolved, as a joining host needs.
	r.learn(hostC, "127.0.0.1:2003")
	r.Add(0, 9, hostC)
	want(0, 9, "127.0.0.1:2003")

	// A replica the registry lists but the resolver was not told of, or
	// forgot in the flood.
	apply(registry.Command{Op: registry.OpShardPut, Shard: &Shard{Name: "s", Type: "t"}})
	shard, _ := store.State().ShardByName("s")
	apply(registry.Command{Op: registry.OpReplicaPut, Replica: &Replica{ShardID: shard.ID, HostID: hostB, Status: registry.ReplicaStatusNew}})
	rep := store.State().ShardReplicas(shard.ID)
	if len(rep) != 1 {
		t.Fatalf("shard %d has %d replicas, want 1", shard.ID, len(rep))
	}
	want(shard.ID, rep[0].ID, "127.0.0.1:2002")
	if _, _, err := r.Resolve(shard.ID+1, rep[0].ID); !errors.Is(err, errUnknownHost) {
		t.Fatalf("Resolve of the replica in another shard: %v, want errUnknownHost", err)
	}
}

// TestDeletedHostStaysReachable: a host deleted from the registry while
// it runs (HostDelete) keeps its replicas in the Raft memberships until
// they are removed, and its vote may be needed for a quorum until then.
// The address it said itself must still resolve: forgotten, no one could
// send to it, and with one other member down its shards, the prime shard
// too, would have no quorum. Only a new address in the registry replaces
// a learned one.
func TestDeletedHostStaysReachable(t *testing.T) {
	const hostA = "0b5c5bd4-6a3e-4b0e-9a43-6f3b1a3c7d01"
	store := registry.New()
	h := Host{ID: hostA, Status: registry.HostStatusActive, ApiAddress: "127.0.0.1:20010", RaftAddress: "127.0.0.1:2001"}
	if res := store.Apply(1, registry.Command{Op: registry.OpHostPut, Host: &h}.Encode()); res.Err() != nil {
		t.Fatalf("put host: %+v", res)
	}
	r := newHostResolver(store.State)
	r.Add(1, 5, hostA)
	r.learn(hostA, "127.0.0.1:2001") // its hello, as raftnet passes it on
	if got, _, err := r.Resolve(1, 5); err != nil || got != "127.0.0.1:2001" {
		t.Fatalf("Resolve = %q, %v; want the host's address", got, err)
	}
	if res := store.Apply(2, registry.Command{Op: registry.OpHostDelete, HostID: hostA}.Encode()); res.Err() != nil {
		t.Fatalf("delete host: %+v", res)
	}
	if got, _, err := r.Resolve(1, 5); err != nil || got != "127.0.0.1:2001" {
		t.Fatalf("Resolve after the host's deletion = %q, %v; want the address it said", got, err)
	}
}
