package placement

import (
	"cmp"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// checkPlan checks that p, planned from in, is what Place always plans for
// in (again, from the same registry listed in another order, and without
// changing in), and that the registry accepts it as the controller
// proposes it, with the effect apply models.
func checkPlan(t *testing.T, rng *rand.Rand, in Input, p Plan) {
	t.Helper()
	saved := cloneInput(in)
	if again := Place(in); !reflect.DeepEqual(again, p) {
		t.Fatalf("Place is not repeatable:\n%+v\n%+v", p, again)
	}
	if !reflect.DeepEqual(in, saved) {
		t.Fatalf("Place changed its input")
	}
	shuffled := cloneInput(in)
	rng.Shuffle(len(shuffled.Hosts), func(i, j int) { shuffled.Hosts[i], shuffled.Hosts[j] = shuffled.Hosts[j], shuffled.Hosts[i] })
	rng.Shuffle(len(shuffled.Shards), func(i, j int) { shuffled.Shards[i], shuffled.Shards[j] = shuffled.Shards[j], shuffled.Shards[i] })
	rng.Shuffle(len(shuffled.Replicas), func(i, j int) {
		shuffled.Replicas[i], shuffled.Replicas[j] = shuffled.Replicas[j], shuffled.Replicas[i]
	})
	if other := Place(shuffled); !reflect.DeepEqual(other, p) {
		t.Fatalf("Place depends on the order of its input:\n%+v\n%+v", p, other)
	}

	st := registryOf(t, in)
	res := st.Apply(st.State().Index()+1, planCommand(p).Encode())
	if err := res.Err(); err != nil {
		t.Fatalf("the registry refuses the plan %+v: %v", p, err)
	}
	want := apply(in, p)
	slices.SortFunc(want.Replicas, func(a, b registry.Replica) int { return cmp.Compare(a.ID, b.ID) })
	got := st.State().Replicas()
	for i := range got {
		got[i].Created, got[i].Updated = 0, 0
	}
	if !reflect.DeepEqual(normalized(got), normalized(want.Replicas)) {
		t.Fatalf("the registry applies plan %+v as\n%+v\nnot\n%+v", p, got, want.Replicas)
	}
	for _, s := range want.Shards {
		if got, _ := st.State().Shard(s.ID); got.Status != s.Status {
			t.Fatalf("shard %d: status %q in the registry, %q planned", s.ID, got.Status, s.Status)
		}
	}
}

// planCommand is the registry entry the controller proposes for p (see
// applyPlan in the root package): additions, removals, then statuses.
func planCommand(p Plan) registry.Command {
	c := registry.Command{Op: registry.OpBatch}
	for i := range p.Add {
		c.Batch = append(c.Batch, registry.Command{Op: registry.OpReplicaPut, Replica: &p.Add[i]})
	}
	for _, id := range p.Remove {
		c.Batch = append(c.Batch, registry.Command{Op: registry.OpReplicaDelete, ReplicaID: id})
	}
	for _, id := range slices.Sorted(maps.Keys(p.Status)) {
		c.Batch = append(c.Batch, registry.Command{Op: registry.OpStatusSet, Kind: registry.KindShard, ShardID: id, Status: p.Status[id]})
	}
	return c
}

// registryOf returns a registry holding in. Replicas whose host in lacks
// (the synthetic topologies drop hosts without their replicas, which the
// registry would delete with them) get a placeholder host that runs
// nothing. Shard IDs must be 1..n.
func registryOf(t *testing.T, in Input) *registry.Store {
	t.Helper()
	hosts := slices.Clone(in.Hosts)
	for _, r := range in.Replicas {
		if !slices.ContainsFunc(hosts, func(h registry.Host) bool { return h.ID == r.HostID }) {
			hosts = append(hosts, registry.Host{ID: r.HostID, Status: "gone"})
		}
	}
	st := registry.New()
	index := uint64(0)
	must := func(c registry.Command) {
		t.Helper()
		index++
		if err := st.Apply(index, c.Encode()).Err(); err != nil {
			t.Fatalf("build the registry: %s: %v", c.Op, err)
		}
	}
	must(registry.Command{Op: registry.OpInit, Hosts: hosts})
	shards := slices.SortedFunc(slices.Values(in.Shards), func(a, b registry.Shard) int { return cmp.Compare(a.ID, b.ID) })
	batch := registry.Command{Op: registry.OpBatch}
	for i, s := range shards {
		if s.ID != uint64(i+1) {
			t.Fatalf("shard IDs are not 1..n: %d at %d", s.ID, i)
		}
		s.ID = 0
		batch.Batch = append(batch.Batch, registry.Command{Op: registry.OpShardPut, Shard: &s})
	}
	if len(batch.Batch) > 0 {
		must(batch)
	}
	replicas := slices.SortedFunc(slices.Values(in.Replicas), func(a, b registry.Replica) int { return cmp.Compare(a.ID, b.ID) })
	batch = registry.Command{Op: registry.OpBatch}
	for i := range replicas {
		batch.Batch = append(batch.Batch, registry.Command{Op: registry.OpReplicaPut, Replica: &replicas[i]})
	}
	if len(batch.Batch) > 0 {
		must(batch)
	}
	return st
}

// normalized returns rs with empty tags as nil, as the registry stores them.
func normalized(rs []registry.Replica) []registry.Replica {
	out := slices.Clone(rs)
	for i := range out {
		if len(out[i].Tags) == 0 {
			out[i].Tags = nil
		}
	}
	return out
}

// cloneInput returns a deep copy of in.
func cloneInput(in Input) Input {
	out := Input{Hosts: slices.Clone(in.Hosts), Shards: slices.Clone(in.Shards), Replicas: slices.Clone(in.Replicas)}
	for i := range out.Hosts {
		out.Hosts[i].Tags = maps.Clone(out.Hosts[i].Tags)
		out.Hosts[i].ShardTypes = slices.Clone(out.Hosts[i].ShardTypes)
	}
	for i := range out.Shards {
		out.Shards[i].Tags = maps.Clone(out.Shards[i].Tags)
	}
	for i := range out.Replicas {
		out.Replicas[i].Tags = maps.Clone(out.Replicas[i].Tags)
	}
	return out
}
