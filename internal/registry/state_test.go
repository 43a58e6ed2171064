package registry

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
)

func TestStateIsolation(t *testing.T) {
	f := newFixture(t)
	before := f.store.State()
	f.must(Command{Op: OpShardPut, Shard: &Shard{Name: "kv1"}})
	f.must(Command{Op: OpTagSet, Kind: KindHost, HostID: "h1", Key: "k", Value: "v"})
	f.must(Command{Op: OpHostDelete, HostID: "h2"})
	if before.Index() != 1 || before.ShardCount() != 1 || before.HostCount() != 3 || before.LastShardID() != 0 {
		t.Errorf("old state sees later writes: index %d, %d shards, %d hosts", before.Index(), before.ShardCount(), before.HostCount())
	}
	if h, _ := before.Host("h1"); !reflect.DeepEqual(h.Tags, map[string]string{"geo:zone": "a"}) {
		t.Errorf("old state sees a later tag: %v", h.Tags)
	}
	if _, ok := before.ShardByName("kv1"); ok {
		t.Error("old state sees a later shard")
	}
	after := f.store.State()
	if after.Index() != 4 || after.ShardCount() != 2 || after.HostCount() != 2 {
		t.Errorf("new state: index %d, %d shards, %d hosts", after.Index(), after.ShardCount(), after.HostCount())
	}
}

func TestStateReturnsCopies(t *testing.T) {
	f := newFixture(t)
	st := f.store.State()
	h, _ := st.Host("h1")
	h.Tags["geo:zone"] = "changed"
	for _, h := range st.Hosts() {
		h.Tags["x"] = "y"
	}
	if h, _ := f.store.State().Host("h1"); !reflect.DeepEqual(h.Tags, map[string]string{"geo:zone": "a"}) {
		t.Errorf("modifying a returned record changed the store: %v", h.Tags)
	}
}

func TestStateQueries(t *testing.T) {
	f := newFixture(t)
	f.must(Command{Op: OpHostPut, Host: &Host{ID: "h0", Tags: map[string]string{"geo:zone": "a", "class": "reader"}}})
	f.must(Command{Op: OpShardPut, Shard: &Shard{Name: "kv1"}})
	f.must(Command{Op: OpReplicaPut, Replica: &Replica{HostID: "h2", ShardID: 1}})
	f.must(Command{Op: OpReplicaPut, Replica: &Replica{HostID: "h0", ShardID: 1}})
	st := f.store.State()
	ids := func(hs []Host) (out []string) {
		for _, h := range hs {
			out = append(out, h.ID)
		}
		return out
	}
	rids := func(rs []Replica) (out []uint64) {
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"Hosts by ID", ids(st.Hosts()), []string{"h0", "h1", "h2", "h3"}},
		{"HostsByTag value", ids(st.HostsByTag("geo:zone", "a")), []string{"h0", "h1"}},
		{"HostsByTag any value", ids(st.HostsByTag("class", "")), []string{"h0"}},
		{"HostsByTag none", ids(st.HostsByTag("geo:zone", "z")), []string(nil)},
		{"Replicas by ID", rids(st.Replicas()), []uint64{1, 2, 3, 4, 5}},
		{"HostReplicas", rids(st.HostReplicas("h2")), []uint64{2, 4}},
		{"HostReplicas unknown", rids(st.HostReplicas("h")), []uint64(nil)},
		{"ShardReplicas", rids(st.ShardReplicas(1)), []uint64{4, 5}},
		{"counts", []int{st.HostCount(), st.ShardCount(), st.ReplicaCount()}, []int{4, 2, 5}},
		{"ShardByName", fmt.Sprint(st.ShardByName("kv1")), fmt.Sprint(st.Shard(1))},
	} {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if _, ok := st.ShardByName(""); ok {
		t.Error("ShardByName(\"\") found a shard")
	}
	if _, ok := st.Host(""); ok {
		t.Error("Host(\"\") found a host")
	}
}

func TestChanged(t *testing.T) {
	f := newFixture(t)
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	ch := f.store.Changed()
	f.do(Command{Op: OpHostDelete, HostID: "nope"})
	f.must(Command{Op: OpStatusSet, Kind: KindHost, HostID: "h1", Status: HostStatusActive})
	if closed(ch) {
		t.Fatal("Changed fired for a rejected and a no-op command")
	}
	f.must(Command{Op: OpStatusSet, Kind: KindHost, HostID: "h1", Status: "gone"})
	if !closed(ch) {
		t.Fatal("Changed did not fire for a change")
	}
	next := f.store.Changed()
	if closed(next) {
		t.Fatal("the next Changed channel is already closed")
	}
	if err := f.store.Load(bytesReader(save(t, New().State()))); err != nil {
		t.Fatal(err)
	}
	if !closed(next) {
		t.Fatal("Changed did not fire for Load")
	}
}

// TestConcurrentReaders runs readers beside the writer, for the race
// detector, and checks every State a reader takes is consistent.
func TestConcurrentReaders(t *testing.T) {
	f := newFixture(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-f.store.Changed():
				}
				st := f.store.State()
				checkInvariants(t, st)
				if n := len(st.Replicas()); n != st.ReplicaCount() {
					t.Errorf("%d replicas listed, %d counted", n, st.ReplicaCount())
				}
			}
		}()
	}
	for i := range 200 {
		name := fmt.Sprintf("s%d", i)
		f.must(Command{Op: OpBatch, Batch: []Command{
			{Op: OpShardPut, Shard: &Shard{Name: name}},
			{Op: OpReplicaPut, Replica: &Replica{HostID: "h1", ShardID: uint64(i + 1)}},
		}})
		if i%3 == 0 {
			f.must(Command{Op: OpShardDelete, ShardID: uint64(i + 1)})
		}
	}
	close(stop)
	wg.Wait()
}

// TestCheck: Check says what Apply would say of a command as the next
// entry, batch condition included, and changes nothing.
func TestCheck(t *testing.T) {
	f := newFixture(t)
	st := f.store.State()
	good := Command{Op: OpBatch, IfIndex: st.Index(), Batch: []Command{{Op: OpReplicaPut, Replica: &Replica{ShardID: 0, HostID: "h1"}}}}
	if err := Check(st, good); err == nil {
		t.Fatal("a second replica of shard 0 on h1 checked as valid")
	}
	good.Batch[0].Replica = &Replica{ShardID: 0, HostID: "h4"}
	if err := Check(st, good); err == nil {
		t.Fatal("a replica on an unknown host checked as valid")
	}
	f.must(Command{Op: OpHostPut, Host: &Host{ID: "h4", Status: HostStatusNew}})
	st = f.store.State()
	good.IfIndex = st.Index()
	if err := Check(st, good); err != nil {
		t.Fatalf("check of a valid batch: %v", err)
	}
	stale := good
	stale.IfIndex = st.Index() - 1
	if err := Check(st, stale); err == nil {
		t.Fatal("a batch made at an older index checked as valid")
	}
	if len(st.ShardReplicas(0)) != 3 || len(f.store.State().ShardReplicas(0)) != 3 || f.store.State().Index() != st.Index() {
		t.Fatal("Check changed the state or the store")
	}
}
