package zongzi

import (
	"errors"
	"fmt"
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
