package registry

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Size of the synthetic registry the benchmarks read.
const (
	benchHosts    = 100
	benchShards   = 1000 // guest shards, besides the prime shard
	benchMembers  = 3    // replicas per guest shard
	benchStride   = 33   // host distance between the members of a shard
	benchReplicas = 3 + benchShards*benchMembers
)

func benchHostID(i int) string    { return fmt.Sprintf("host-%03d", i) }
func benchShardName(i int) string { return fmt.Sprintf("kv-%04d", i) }

// newBenchStore returns a store holding benchHosts hosts in three zones and
// benchShards named shards (IDs 1..benchShards), each with benchMembers
// replicas on distinct hosts, applied through Apply as a client would.
func newBenchStore(b *testing.B) *Store {
	b.Helper()
	f := &fixture{t: b, store: New(), next: 1}
	hosts := make([]Host, benchHosts)
	for i := range hosts {
		hosts[i] = Host{
			ID:          benchHostID(i),
			Status:      HostStatusActive,
			Tags:        map[string]string{"geo:zone": string(rune('a' + i%3))},
			ApiAddress:  fmt.Sprintf("10.0.0.%d:1000", i),
			RaftAddress: fmt.Sprintf("10.0.0.%d:2000", i),
			ShardTypes:  []string{"kv"},
		}
	}
	prime := make([]Replica, 3)
	for i := range prime {
		prime[i] = Replica{HostID: benchHostID(i), Status: ReplicaStatusActive}
	}
	f.must(Command{Op: OpInit, Hosts: hosts, Replicas: prime})
	for s := 1; s <= benchShards; s++ {
		batch := []Command{{Op: OpShardPut, Shard: &Shard{
			Name: benchShardName(s), Type: "kv", Status: ShardStatusActive,
			Tags: map[string]string{"placement:member": "3"},
		}}}
		for m := range benchMembers {
			batch = append(batch, Command{Op: OpReplicaPut, Replica: &Replica{
				HostID: benchHostID((s + m*benchStride) % benchHosts), ShardID: uint64(s), Status: ReplicaStatusActive,
			}})
		}
		f.must(Command{Op: OpBatch, Batch: batch})
	}
	st := f.store.State()
	if st.HostCount() != benchHosts || st.ShardCount() != benchShards+1 || st.ReplicaCount() != benchReplicas {
		b.Fatalf("registry has %d hosts, %d shards, %d replicas; want %d, %d, %d",
			st.HostCount(), st.ShardCount(), st.ReplicaCount(), benchHosts, benchShards+1, benchReplicas)
	}
	checkInvariants(b, st)
	return f.store
}

// BenchmarkState measures the registry's reads: taking a view and looking
// records up in it, as routing (when the registry changes) and placement do. Each lookup cycles
// through every key in a fixed random order, so that no single path of the
// index stays hot.
func BenchmarkState(b *testing.B) {
	store := newBenchStore(b)
	st := store.State()
	rng := rand.New(rand.NewPCG(1, 2))
	hostOrder := rng.Perm(benchHosts)
	shardOrder := rng.Perm(benchShards) // shard IDs are 1 + an element
	replicaOrder := rng.Perm(benchReplicas)
	hostIDs := make([]string, benchHosts)
	for i, h := range hostOrder {
		hostIDs[i] = benchHostID(h)
	}
	names := make([]string, benchShards)
	for i, s := range shardOrder {
		names[i] = benchShardName(s + 1)
	}

	b.Run("Store.State", func(b *testing.B) {
		b.ReportAllocs()
		want := st.Index()
		for b.Loop() {
			if got := store.State(); got == nil || got.Index() != want {
				b.Fatalf("State() = %v, want the view at index %d", got, want)
			}
		}
	})
	// lookup runs check on the keys 0..n-1 in turn; check reports a wrong
	// answer as an error.
	lookup := func(name string, n int, check func(i int) error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := check(i % n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	lookup("Host", benchHosts, func(i int) error {
		id := hostIDs[i]
		if h, ok := st.Host(id); !ok || h.ID != id {
			return fmt.Errorf("Host(%q) = %q, %v", id, h.ID, ok)
		}
		return nil
	})
	lookup("Shard", benchShards, func(i int) error {
		id := uint64(shardOrder[i] + 1)
		if s, ok := st.Shard(id); !ok || s.ID != id {
			return fmt.Errorf("Shard(%d) = %d, %v", id, s.ID, ok)
		}
		return nil
	})
	lookup("ShardByName", benchShards, func(i int) error {
		name := names[i]
		if s, ok := st.ShardByName(name); !ok || s.Name != name {
			return fmt.Errorf("ShardByName(%q) = %q, %v", name, s.Name, ok)
		}
		return nil
	})
	lookup("Replica", benchReplicas, func(i int) error {
		id := uint64(replicaOrder[i] + 1)
		if r, ok := st.Replica(id); !ok || r.ID != id {
			return fmt.Errorf("Replica(%d) = %d, %v", id, r.ID, ok)
		}
		return nil
	})
	lookup("ShardReplicas", benchShards, func(i int) error {
		id := uint64(shardOrder[i] + 1)
		if rs := st.ShardReplicas(id); len(rs) != benchMembers || rs[0].ShardID != id {
			return fmt.Errorf("ShardReplicas(%d) = %v, want %d replicas of it", id, rs, benchMembers)
		}
		return nil
	})
	// Every host holds about benchReplicas/benchHosts replicas.
	lookup("HostReplicas", benchHosts, func(i int) error {
		id := hostIDs[i]
		if rs := st.HostReplicas(id); len(rs) == 0 || rs[len(rs)-1].HostID != id {
			return fmt.Errorf("HostReplicas(%q) = %v, want its replicas", id, rs)
		}
		return nil
	})
}
