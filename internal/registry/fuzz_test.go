package registry

import (
	"bytes"
	"testing"
)

// applySeeds returns one encoded command of every op, valid against the
// fixture, and a few invalid ones.
func applySeeds() [][]byte {
	cmds := []Command{
		{Op: OpInit, Hosts: threeHosts()},
		{Op: OpHostPut, Host: &Host{ID: "h4", Tags: map[string]string{"geo:zone": "a"}, ShardTypes: []string{"kv"}}},
		{Op: OpHostDelete, HostID: "h1"},
		{Op: OpShardPut, Shard: &Shard{Name: "kv1", Type: "kv", Tags: map[string]string{"placement:member": "3"}}},
		{Op: OpShardPut, Shard: &Shard{ID: 1, Name: "kv2"}},
		{Op: OpShardPut, Shard: &Shard{ID: 1, Name: "kv2"}, IfUpdated: 2},
		{Op: OpShardDelete, ShardID: 1},
		{Op: OpReplicaPut, Replica: &Replica{HostID: "h1", ShardID: 1}},
		{Op: OpReplicaPut, Replica: &Replica{ID: 7, HostID: "h2", ShardID: 0, IsNonVoting: true}},
		{Op: OpReplicaDelete, ReplicaID: 2},
		{Op: OpTagSet, Kind: KindShard, ShardID: 0, Key: "k", Value: "v"},
		{Op: OpTagRemove, Kind: KindHost, HostID: "h2", Key: "geo:zone"},
		{Op: OpStatusSet, Kind: KindReplica, ReplicaID: 3, Status: ReplicaStatusNew},
		{Op: OpShardLeader, ShardID: 0, Leader: 2, Term: 3},
		{Op: OpBatch, Batch: []Command{
			{Op: OpShardPut, Shard: &Shard{Name: "kv3"}},
			{Op: OpReplicaPut, Replica: &Replica{HostID: "h3", ShardID: 1}},
		}},
	}
	var seeds [][]byte
	for _, c := range cmds {
		seeds = append(seeds, c.Encode())
	}
	return append(seeds, nil, []byte{1}, []byte{2, '{', '}'}, []byte("\x01{\"op\":\"batch\",\"batch\":[{}]}"))
}

// FuzzApply applies each line of the input as one entry to a bootstrapped
// store: Apply must not panic, a rejected entry must change no record, and
// the store must stay consistent and survive Save and Load. A store
// recovered from a snapshot taken before the middle entry and applying the
// rest must end with the same bytes.
func FuzzApply(f *testing.F) {
	for _, s := range applySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fx := newFixture(t)
		cmds := bytes.Split(in, []byte("\n"))
		var snap []byte // before the middle entry
		for i, cmd := range cmds {
			before := fx.store.State()
			if i == len(cmds)/2 {
				snap = save(t, before)
			}
			res := fx.store.Apply(fx.next, cmd)
			st := fx.store.State()
			if st.Index() != fx.next {
				t.Fatalf("Index = %d, want %d", st.Index(), fx.next)
			}
			fx.next++
			if res.Value == 0 && !bytes.HasPrefix(res.Data, []byte("registry: ")) {
				t.Fatalf("rejection reason %q", res.Data)
			}
			if res.Value == 0 && !sameContent(before, st) {
				t.Fatalf("rejected command %q (%s) changed the store", cmd, res.Data)
			}
			checkInvariants(t, st)
		}
		roundTrip(t, fx.store.State())
		rec := New()
		if err := rec.Load(bytes.NewReader(snap)); err != nil {
			t.Fatalf("load snapshot: %v\n%s", err, snap)
		}
		next := rec.State().Index() + 1
		for _, cmd := range cmds[len(cmds)/2:] {
			rec.Apply(next, cmd)
			next++
		}
		if got, want := save(t, rec.State()), save(t, fx.store.State()); !bytes.Equal(got, want) {
			t.Fatalf("recovered from the snapshot:\n%s\nfrom the log:\n%s", got, want)
		}
	})
}

// FuzzLoad loads arbitrary input into a bootstrapped store: Load must not
// panic, a failed Load must change nothing, and a loaded state must be
// consistent, survive Save and Load, and stay consistent as the commands
// of applySeeds are applied to it.
func FuzzLoad(f *testing.F) {
	fx := newFixture(f)
	fx.must(Command{Op: OpShardPut, Shard: &Shard{Name: "kv1", Tags: map[string]string{"a": "b"}}})
	fx.must(Command{Op: OpReplicaPut, Replica: &Replica{HostID: "h2", ShardID: 1, IsWitness: true}})
	f.Add(save(f, fx.store.State()))
	f.Add(save(f, New().State()))
	f.Add([]byte(`{"index":1,"hosts":1}` + "\n" + `{"id":"h"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		fx := newFixture(t)
		before := save(t, fx.store.State())
		if err := fx.store.Load(bytes.NewReader(in)); err != nil {
			if after := save(t, fx.store.State()); !bytes.Equal(before, after) {
				t.Fatalf("failed Load (%v) changed the store", err)
			}
			return
		}
		st := fx.store.State()
		checkInvariants(t, st)
		roundTrip(t, st)
		next := st.Index() + 1
		for _, cmd := range applySeeds() {
			before := fx.store.State()
			if res := fx.store.Apply(next, cmd); res.Value == 0 && !sameContent(before, fx.store.State()) {
				t.Fatalf("rejected command %q (%s) changed the store", cmd, res.Data)
			}
			next++
			checkInvariants(t, fx.store.State())
		}
		roundTrip(t, fx.store.State())
	})
}
