package registry

import (
	"bytes"
	"fmt"
	"testing"
)

// TestShardFormed: a shard's Formed is the Created index of its initial
// voting members, recorded when the first of them is marked started, and
// kept once they are gone; a member created later, a non-voting replica,
// and a ShardPut change none of it. In a shard whose voting replicas
// include an older one (formed before Formed was kept), a later member
// marked started records nothing.
func TestShardFormed(t *testing.T) {
	f := newFixture(t)
	shard := f.must(Command{Op: OpShardPut, Shard: &Shard{Name: "s", Type: "t"}}).Value
	formed := func() uint64 {
		s, _ := f.store.State().Shard(shard)
		return s.Formed
	}
	put := func(r Replica) uint64 {
		r.ShardID = shard
		return f.must(Command{Op: OpReplicaPut, Replica: &r}).Value
	}
	mark := func(id uint64, status string) {
		f.must(Command{Op: OpStatusSet, Kind: KindReplica, ReplicaID: id, Status: status})
	}
	learner := put(Replica{HostID: "h3", IsNonVoting: true})
	mark(learner, ReplicaStatusActive)
	f.must(Command{Op: OpBatch, Batch: []Command{
		{Op: OpReplicaPut, Replica: &Replica{HostID: "h1", ShardID: shard}},
		{Op: OpReplicaPut, Replica: &Replica{HostID: "h2", ShardID: shard}},
	}})
	initial := f.store.State().ShardReplicas(shard)
	var first uint64
	for _, r := range initial {
		if !r.IsNonVoting {
			first = r.Created
		}
	}
	if got := formed(); got != 0 {
		t.Fatalf("Formed %d before any member started, want 0", got)
	}
	for _, r := range initial {
		if !r.IsNonVoting {
			mark(r.ID, ReplicaStatusStarted)
			break
		}
	}
	if got := formed(); got != first {
		t.Fatalf("Formed %d once an initial member started, want its Created %d", got, first)
	}
	f.must(Command{Op: OpHostDelete, HostID: "h1"})
	f.must(Command{Op: OpHostDelete, HostID: "h2"})
	f.must(Command{Op: OpReplicaDelete, ReplicaID: learner})
	later := put(Replica{HostID: "h3"})
	mark(later, ReplicaStatusActive)
	f.must(Command{Op: OpShardPut, Shard: &Shard{ID: shard, Name: "s", Type: "t", Tags: map[string]string{"k": "v"}}})
	if got := formed(); got != first {
		t.Fatalf("Formed %d after its members went and another started, want %d", got, first)
	}

	// A shard formed before Formed was kept: a snapshot of then has its
	// first member active and no Formed; a member created later starts.
	old := f.must(Command{Op: OpShardPut, Shard: &Shard{Name: "old", Type: "t"}}).Value
	f.must(Command{Op: OpReplicaPut, Replica: &Replica{HostID: "h3", ShardID: old, Status: ReplicaStatusActive}})
	snap := bytes.ReplaceAll(save(t, f.store.State()), []byte(fmt.Sprintf(`,"formed":%d`, f.next-1)), nil)
	loaded := New()
	if err := loaded.Load(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if s, _ := loaded.State().Shard(old); s.Formed != 0 {
		t.Fatalf("the snapshot kept Formed %d", s.Formed)
	}
	f.store = loaded
	f.must(Command{Op: OpHostPut, Host: &Host{ID: "h4", Status: HostStatusActive, ApiAddress: "127.0.0.1:1004", RaftAddress: "127.0.0.1:2004"}})
	joiner := f.must(Command{Op: OpReplicaPut, Replica: &Replica{HostID: "h4", ShardID: old}}).Value
	mark(joiner, ReplicaStatusStarted)
	if s, _ := f.store.State().Shard(old); s.Formed != 0 {
		t.Fatalf("Formed %d from a member created after an older one, want 0", s.Formed)
	}
}
