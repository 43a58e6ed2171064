package registry

import (
	"reflect"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	kv1 := Command{Op: OpShardPut, Shard: &Shard{Name: "kv1", Type: "kv", Status: ShardStatusNew}}
	kv2 := Command{Op: OpShardPut, Shard: &Shard{Name: "kv2", Type: "kv"}}
	h4 := Command{Op: OpHostPut, Host: &Host{ID: "h4", ShardTypes: []string{"kv"}}}
	r1on := func(host string, shard uint64) Command {
		return Command{Op: OpReplicaPut, Replica: &Replica{HostID: host, ShardID: shard}}
	}
	tests := []struct {
		name  string
		setup []Command
		cmd   Command
		value uint64 // 0: rejected
		data  []byte // on success
		err   string // part of the reason, on rejection
		check func(t *testing.T, st *State)
	}{
		{
			name: "host_put inserts", cmd: h4, value: 1,
			check: func(t *testing.T, st *State) {
				h, ok := st.Host("h4")
				if !ok || h.Created != st.Index() || h.Updated != st.Index() || !reflect.DeepEqual(h.ShardTypes, []string{"kv"}) {
					t.Errorf("host = %+v, %v", h, ok)
				}
				if st.LastHostID() != "h4" {
					t.Errorf("LastHostID = %q", st.LastHostID())
				}
			},
		},
		{
			name: "host_put updates all but ID and Created",
			cmd:  Command{Op: OpHostPut, Host: &Host{ID: "h1", Created: 99, ApiAddress: "x:1", ShardTypes: []string{}}}, value: 1,
			check: func(t *testing.T, st *State) {
				h, _ := st.Host("h1")
				want := Host{ID: "h1", Created: 1, Updated: st.Index(), ApiAddress: "x:1"}
				if !reflect.DeepEqual(h, want) {
					t.Errorf("host = %+v, want %+v", h, want)
				}
				if st.LastHostID() != "h3" {
					t.Errorf("LastHostID = %q, want h3 (an update is no insert)", st.LastHostID())
				}
			},
		},
		{
			name: "host_put unchanged keeps Updated", cmd: Command{Op: OpHostPut, Host: &threeHosts()[0]}, value: 1,
			check: func(t *testing.T, st *State) {
				if h, _ := st.Host("h1"); h.Updated != 1 {
					t.Errorf("Updated = %d, want 1", h.Updated)
				}
			},
		},
		{
			// A host's own update of its record (registerSelf), computed
			// before an operator deleted the host, must not bring the host
			// back: placement would put replicas on a host that left.
			name: "host_put if updated, host deleted since", setup: []Command{{Op: OpHostDelete, HostID: "h1"}},
			cmd: Command{Op: OpHostPut, Host: &Host{ID: "h1", Created: 1, Status: HostStatusActive}, IfUpdated: 1},
			err: `host "h1" not found`,
		},
		{
			name: "host_put if updated", cmd: Command{Op: OpHostPut, Host: &Host{ID: "h1", Created: 1, ApiAddress: "x:1"}, IfUpdated: 1}, value: 1,
			check: func(t *testing.T, st *State) {
				if h, _ := st.Host("h1"); h.ApiAddress != "x:1" {
					t.Errorf("host = %+v", h)
				}
			},
		},
		{
			name: "host_put changed since", setup: []Command{{Op: OpTagSet, Kind: KindHost, HostID: "h1", Key: "a", Value: "1"}},
			cmd: Command{Op: OpHostPut, Host: &Host{ID: "h1", Created: 1}, IfUpdated: 1},
			err: `host "h1" changed at index 2, after 1`,
		},
		{name: "host_put without host", cmd: Command{Op: OpHostPut}, err: "host_put without host"},
		{name: "host_put empty ID", cmd: Command{Op: OpHostPut, Host: &Host{}}, err: "empty or contains NUL"},
		{name: "host_put ID with NUL", cmd: Command{Op: OpHostPut, Host: &Host{ID: "h\x00"}}, err: "empty or contains NUL"},
		{
			name: "host_del deletes its replicas", setup: []Command{kv1, r1on("h1", 1), r1on("h2", 1)},
			cmd: Command{Op: OpHostDelete, HostID: "h1"}, value: 1,
			check: func(t *testing.T, st *State) {
				if _, ok := st.Host("h1"); ok {
					t.Error("h1 still there")
				}
				if n := len(st.HostReplicas("h1")); n != 0 {
					t.Errorf("h1 has %d replicas", n)
				}
				if n := st.ReplicaCount(); n != 3 {
					t.Errorf("%d replicas, want 3", n)
				}
			},
		},
		{name: "host_del missing", cmd: Command{Op: OpHostDelete, HostID: "h9"}, err: `host "h9" not found`},
		{
			name: "shard_put inserts", cmd: kv1, value: 1, data: []byte{1},
			check: func(t *testing.T, st *State) {
				s, ok := st.ShardByName("kv1")
				want := Shard{ID: 1, Created: st.Index(), Updated: st.Index(), Status: ShardStatusNew, Type: "kv", Name: "kv1"}
				if !ok || !reflect.DeepEqual(s, want) || st.LastShardID() != 1 {
					t.Errorf("shard = %+v, last %d; want %+v", s, st.LastShardID(), want)
				}
			},
		},
		{name: "shard_put existing name", setup: []Command{kv1, kv2}, cmd: kv1, value: 1, data: []byte{0}},
		{name: "shard_put prime name", cmd: Command{Op: OpShardPut, Shard: &Shard{Name: PrimeShardName}}, err: "prime shard"},
		{name: "shard_put without shard", cmd: Command{Op: OpShardPut}, err: "without shard"},
		{name: "shard_put missing ID", cmd: Command{Op: OpShardPut, Shard: &Shard{ID: 5}}, err: "shard 5 not found"},
		{
			name:  "shard_put updates, keeping leader",
			setup: []Command{kv1, {Op: OpShardLeader, ShardID: 1, Leader: 7, Term: 3}},
			cmd:   Command{Op: OpShardPut, Shard: &Shard{ID: 1, Name: "kv1b", Type: "kv", Leader: 1, Term: 1}}, value: 1, data: []byte{0},
			check: func(t *testing.T, st *State) {
				s, _ := st.Shard(1)
				want := Shard{ID: 1, Created: 2, Updated: st.Index(), Type: "kv", Name: "kv1b", Leader: 7, Term: 3}
				if !reflect.DeepEqual(s, want) {
					t.Errorf("shard = %+v, want %+v", s, want)
				}
				if _, ok := st.ShardByName("kv1"); ok {
					t.Error("old name still indexed")
				}
			},
		},
		{
			name: "shard_put if updated", setup: []Command{kv1},
			cmd: Command{Op: OpShardPut, Shard: &Shard{ID: 1, Name: "kv1", Type: "kv", Tags: map[string]string{"k": "v"}}, IfUpdated: 2}, value: 1, data: []byte{0},
			check: func(t *testing.T, st *State) {
				if s, _ := st.Shard(1); s.Tags["k"] != "v" {
					t.Errorf("shard = %+v", s)
				}
			},
		},
		{
			name: "shard_put changed since", setup: []Command{kv1, {Op: OpTagSet, Kind: KindShard, ShardID: 1, Key: "a", Value: "1"}},
			cmd: Command{Op: OpShardPut, Shard: &Shard{ID: 1, Name: "kv1", Type: "kv", Tags: map[string]string{"b": "2"}}, IfUpdated: 2},
			err: "shard 1 changed at index 3, after 2",
		},
		{
			// The prime shard's Updated is 1: an insert's condition must not
			// be checked against it, or against any record.
			name: "shard_put insert with ifUpdated", cmd: Command{Op: OpShardPut, Shard: &Shard{Name: "kv9"}, IfUpdated: 1},
			err: "ifUpdated on an insert",
		},
		{name: "shard_put taken name", setup: []Command{kv1, kv2}, cmd: Command{Op: OpShardPut, Shard: &Shard{ID: 2, Name: "kv1"}}, err: "taken by shard 1"},
		{name: "shard_put NUL name", cmd: Command{Op: OpShardPut, Shard: &Shard{Name: "a\x00"}}, err: "contains NUL"},
		{
			name: "shard_del deletes its replicas", setup: []Command{kv1, r1on("h1", 1)},
			cmd: Command{Op: OpShardDelete, ShardID: 1}, value: 1,
			check: func(t *testing.T, st *State) {
				if _, ok := st.Shard(1); ok || len(st.ShardReplicas(1)) != 0 || st.ReplicaCount() != 3 {
					t.Errorf("shard 1 or its replicas remain: %+v", st.Replicas())
				}
			},
		},
		{name: "shard_del prime", cmd: Command{Op: OpShardDelete, ShardID: 0}, err: "prime shard cannot be deleted"},
		{name: "shard_del missing", cmd: Command{Op: OpShardDelete, ShardID: 4}, err: "shard 4 not found"},
		{
			name: "replica_put inserts with next ID", setup: []Command{kv1}, cmd: r1on("h1", 1), value: 4,
			check: func(t *testing.T, st *State) {
				r, _ := st.Replica(4)
				want := Replica{ID: 4, Created: st.Index(), Updated: st.Index(), HostID: "h1", ShardID: 1}
				if !reflect.DeepEqual(r, want) || st.LastReplicaID() != 4 {
					t.Errorf("replica = %+v, want %+v", r, want)
				}
			},
		},
		{
			name: "replica_put inserts with given ID", setup: []Command{kv1},
			cmd: Command{Op: OpReplicaPut, Replica: &Replica{ID: 10, HostID: "h2", ShardID: 1, IsNonVoting: true}}, value: 10,
			check: func(t *testing.T, st *State) {
				if r, ok := st.Replica(10); !ok || !r.IsNonVoting || st.LastReplicaID() != 10 {
					t.Errorf("replica = %+v, last %d", r, st.LastReplicaID())
				}
			},
		},
		{
			name: "replica_put updates", cmd: Command{Op: OpReplicaPut, Replica: &Replica{ID: 2, HostID: "h2", Status: "x"}}, value: 2,
			check: func(t *testing.T, st *State) {
				r, _ := st.Replica(2)
				if r.Status != "x" || r.Created != 1 || r.Updated != st.Index() || st.LastReplicaID() != 3 {
					t.Errorf("replica = %+v", r)
				}
			},
		},
		{name: "replica_put moves host", setup: []Command{h4}, cmd: Command{Op: OpReplicaPut, Replica: &Replica{ID: 2, HostID: "h4"}}, err: "cannot change"},
		{name: "replica_put second on host", cmd: r1on("h1", 0), err: "already has replica 1"},
		{name: "replica_put missing host", cmd: r1on("h9", 0), err: `host "h9" not found`},
		{name: "replica_put missing shard", cmd: r1on("h1", 3), err: "shard 3 not found"},
		{name: "replica_put without replica", cmd: Command{Op: OpReplicaPut}, err: "without replica"},
		{
			name: "replica_put witness and non-voting", setup: []Command{kv1},
			cmd: Command{Op: OpReplicaPut, Replica: &Replica{HostID: "h1", ShardID: 1, IsWitness: true, IsNonVoting: true}}, err: "both witness",
		},
		{
			name: "replica_del", cmd: Command{Op: OpReplicaDelete, ReplicaID: 3}, value: 1,
			check: func(t *testing.T, st *State) {
				if _, ok := st.Replica(3); ok || st.LastReplicaID() != 3 {
					t.Error("replica 3 remains or counter moved")
				}
			},
		},
		{name: "replica_del missing", cmd: Command{Op: OpReplicaDelete, ReplicaID: 7}, err: "replica 7 not found"},
		{
			name: "tag_set host", cmd: Command{Op: OpTagSet, Kind: KindHost, HostID: "h1", Key: "k", Value: "v"}, value: 1,
			check: func(t *testing.T, st *State) {
				h, _ := st.Host("h1")
				if !reflect.DeepEqual(h.Tags, map[string]string{"geo:zone": "a", "k": "v"}) || h.Updated != st.Index() {
					t.Errorf("host = %+v", h)
				}
			},
		},
		{
			name: "tag_set prime shard with nil tags", cmd: Command{Op: OpTagSet, Kind: KindShard, Key: "k"}, value: 1,
			check: func(t *testing.T, st *State) {
				if s, _ := st.Shard(0); !reflect.DeepEqual(s.Tags, map[string]string{"k": ""}) {
					t.Errorf("tags = %#v", s.Tags)
				}
			},
		},
		{
			name: "tag_set replica", cmd: Command{Op: OpTagSet, Kind: KindReplica, ReplicaID: 3, Key: "k", Value: "v"}, value: 1,
			check: func(t *testing.T, st *State) {
				if r, _ := st.Replica(3); r.Tags["k"] != "v" {
					t.Errorf("tags = %#v", r.Tags)
				}
			},
		},
		{
			name: "tag_remove last tag leaves nil", cmd: Command{Op: OpTagRemove, Kind: KindHost, HostID: "h2", Key: "geo:zone"}, value: 1,
			check: func(t *testing.T, st *State) {
				if h, _ := st.Host("h2"); h.Tags != nil || h.Updated != st.Index() {
					t.Errorf("host = %#v", h)
				}
			},
		},
		{
			name: "tag_remove absent tag changes nothing", cmd: Command{Op: OpTagRemove, Kind: KindReplica, ReplicaID: 1, Key: "nope"}, value: 1,
			check: func(t *testing.T, st *State) {
				if r, _ := st.Replica(1); r.Updated != 1 {
					t.Errorf("Updated = %d", r.Updated)
				}
			},
		},
		{name: "tag_set without key", cmd: Command{Op: OpTagSet, Kind: KindHost, HostID: "h1"}, err: "without key"},
		{name: "tag_remove without key", cmd: Command{Op: OpTagRemove, Kind: KindHost, HostID: "h1"}, err: "without key"},
		{name: "tag_set unknown kind", cmd: Command{Op: OpTagSet, Kind: "disk", Key: "k"}, err: `unknown kind "disk"`},
		{name: "tag_set without kind", cmd: Command{Op: OpTagSet, Key: "k"}, err: "unknown kind"},
		{name: "tag_set missing host", cmd: Command{Op: OpTagSet, Kind: KindHost, HostID: "h9", Key: "k"}, err: `host "h9" not found`},
		{name: "tag_set missing shard", cmd: Command{Op: OpTagSet, Kind: KindShard, ShardID: 9, Key: "k"}, err: "shard 9 not found"},
		{name: "status_set missing replica", cmd: Command{Op: OpStatusSet, Kind: KindReplica, ReplicaID: 9}, err: "replica 9 not found"},
		{
			name: "status_set on each kind",
			setup: []Command{
				{Op: OpStatusSet, Kind: KindHost, HostID: "h1", Status: "h"},
				{Op: OpStatusSet, Kind: KindShard, ShardID: 0, Status: "s"},
			},
			cmd: Command{Op: OpStatusSet, Kind: KindReplica, ReplicaID: 1, Status: "r"}, value: 1,
			check: func(t *testing.T, st *State) {
				h, _ := st.Host("h1")
				s, _ := st.Shard(0)
				r, _ := st.Replica(1)
				if h.Status != "h" || s.Status != "s" || r.Status != "r" || h.Updated != 2 || s.Updated != 3 || r.Updated != 4 {
					t.Errorf("statuses %q %q %q, updated %d %d %d", h.Status, s.Status, r.Status, h.Updated, s.Updated, r.Updated)
				}
			},
		},
		{
			name: "shard_leader newer term", cmd: Command{Op: OpShardLeader, ShardID: 0, Leader: 2, Term: 4}, value: 1,
			check: func(t *testing.T, st *State) {
				if s, _ := st.Shard(0); s.Leader != 2 || s.Term != 4 || s.Updated != st.Index() {
					t.Errorf("shard = %+v", s)
				}
			},
		},
		{
			name: "shard_leader same term", setup: []Command{{Op: OpShardLeader, Leader: 2, Term: 4}},
			cmd: Command{Op: OpShardLeader, Leader: 3, Term: 4}, value: 1,
			check: func(t *testing.T, st *State) {
				if s, _ := st.Shard(0); s.Leader != 3 || s.Term != 4 {
					t.Errorf("shard = %+v", s)
				}
			},
		},
		{
			name: "shard_leader older term ignored", setup: []Command{{Op: OpShardLeader, Leader: 2, Term: 4}},
			cmd: Command{Op: OpShardLeader, Leader: 3, Term: 3}, value: 1,
			check: func(t *testing.T, st *State) {
				if s, _ := st.Shard(0); s.Leader != 2 || s.Term != 4 || s.Updated != 2 {
					t.Errorf("shard = %+v", s)
				}
			},
		},
		{name: "shard_leader missing shard", cmd: Command{Op: OpShardLeader, ShardID: 8, Term: 1}, err: "shard 8 not found"},
		{name: "init twice", cmd: Command{Op: OpInit}, err: "already initialised"},
		{
			name: "batch", cmd: Command{Op: OpBatch, Batch: []Command{kv1, r1on("h1", 1), r1on("h2", 1)}}, value: 3,
			check: func(t *testing.T, st *State) {
				if rs := st.ShardReplicas(1); len(rs) != 2 || rs[0].ID != 4 || rs[1].ID != 5 {
					t.Errorf("replicas of shard 1 = %+v", rs)
				}
			},
		},
		{name: "batch at its index", setup: []Command{kv1}, cmd: Command{Op: OpBatch, IfIndex: 2, Batch: []Command{r1on("h1", 1)}}, value: 1},
		{
			name: "batch computed before", setup: []Command{kv1, kv2},
			cmd: Command{Op: OpBatch, IfIndex: 2, Batch: []Command{r1on("h1", 1)}},
			err: "batch computed at index 2, applied after 3",
		},
		{name: "batch fails as a whole", cmd: Command{Op: OpBatch, Batch: []Command{kv1, r1on("h1", 1), r1on("h1", 1)}}, err: "batch[2] replica_put: shard 1 already has replica 4"},
		{name: "empty batch", cmd: Command{Op: OpBatch}, err: "empty batch"},
		{name: "nested batch", cmd: Command{Op: OpBatch, Batch: []Command{{Op: OpBatch, Batch: []Command{kv1}}}}, err: "nested batch"},
		{name: "init in batch", cmd: Command{Op: OpBatch, Batch: []Command{{Op: OpInit}}}, err: "init inside a batch"},
		{name: "unknown op", cmd: Command{Op: "compact"}, err: `unknown op "compact"`},
		{name: "no op", cmd: Command{}, err: `unknown op ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			for _, c := range tt.setup {
				f.must(c)
			}
			before := f.store.State()
			res := f.do(tt.cmd)
			st := f.store.State()
			if st.Index() != f.next-1 {
				t.Errorf("Index = %d, want %d", st.Index(), f.next-1)
			}
			checkInvariants(t, st)
			if tt.value == 0 {
				if res.Value != 0 || !strings.Contains(string(res.Data), tt.err) || !strings.HasPrefix(string(res.Data), "registry: ") {
					t.Fatalf("result = %d %q, want rejection containing %q", res.Value, res.Data, tt.err)
				}
				if !sameContent(before, st) {
					t.Fatalf("rejected command changed the store:\n%s\n%s", save(t, before), save(t, st))
				}
				return
			}
			if res.Value != tt.value || !reflect.DeepEqual(res.Data, tt.data) {
				t.Fatalf("result = %d %q, want %d %q", res.Value, res.Data, tt.value, tt.data)
			}
			if tt.check != nil {
				tt.check(t, st)
			}
			roundTrip(t, st)
		})
	}
}

func TestApplyInit(t *testing.T) {
	s := New()
	res := s.Apply(1, Command{Op: OpShardPut, Shard: &Shard{Name: "early"}}.Encode())
	if res.Err() == nil {
		t.Fatal("shard_put before init accepted")
	}
	res = s.Apply(2, Command{Op: OpInit, Shard: &Shard{ID: 3}}.Encode())
	if res.Err() == nil {
		t.Fatal("init with prime shard ID 3 accepted")
	}
	res = s.Apply(3, Command{Op: OpInit, Hosts: threeHosts()[:1], Replicas: []Replica{{ID: 1, HostID: "h2"}}}.Encode())
	if res.Err() == nil {
		t.Fatal("init with a replica on an unknown host accepted")
	}
	if st := s.State(); st.ShardCount() != 0 || st.HostCount() != 0 || st.Index() != 3 {
		t.Fatalf("rejected inits left %d shards, %d hosts, index %d", st.ShardCount(), st.HostCount(), st.Index())
	}
	res = s.Apply(4, Command{Op: OpInit, Shard: &Shard{Tags: map[string]string{"k": "v"}}, Hosts: threeHosts(), Replicas: threePrimeReplicas()}.Encode())
	if res.Value != 1 {
		t.Fatalf("init: %v", res.Err())
	}
	st := s.State()
	prime, _ := st.Shard(0)
	want := Shard{ID: 0, Created: 4, Updated: 4, Tags: map[string]string{"k": "v"}, Type: PrimeShardType, Name: PrimeShardName}
	if !reflect.DeepEqual(prime, want) {
		t.Errorf("prime = %+v, want %+v", prime, want)
	}
	if st.HostCount() != 3 || st.ReplicaCount() != 3 || st.LastReplicaID() != 3 || st.LastShardID() != 0 || st.LastHostID() != "h3" {
		t.Errorf("counts %d %d, last replica %d shard %d host %q", st.HostCount(), st.ReplicaCount(), st.LastReplicaID(), st.LastShardID(), st.LastHostID())
	}
	if got := st.ShardReplicas(0); len(got) != 3 || got[2].Created != 4 {
		t.Errorf("prime replicas = %+v", got)
	}
}

func TestShardPutNameIdempotent(t *testing.T) {
	f := newFixture(t)
	put := Command{Op: OpShardPut, Shard: &Shard{Name: "kv1-00001", Type: "kv"}}
	first := f.must(put)
	f.must(Command{Op: OpShardPut, Shard: &Shard{Name: "kv1-00002", Type: "kv"}})
	again := f.must(Command{Op: OpShardPut, Shard: &Shard{Name: "kv1-00001", Type: "other", Status: "x"}})
	if first.Value != 1 || first.Data[0] != 1 || again.Value != 1 || again.Data[0] != 0 {
		t.Fatalf("results %+v then %+v", first, again)
	}
	s, _ := f.store.State().Shard(1)
	if s.Type != "kv" || s.Status != "" || s.Updated != 2 {
		t.Errorf("existing shard changed: %+v", s)
	}
	// Unnamed shards are never merged.
	a := f.must(Command{Op: OpShardPut, Shard: &Shard{Type: "kv"}})
	b := f.must(Command{Op: OpShardPut, Shard: &Shard{Type: "kv"}})
	if a.Value != 3 || b.Value != 4 || b.Data[0] != 1 {
		t.Errorf("unnamed shards: %+v %+v", a, b)
	}
}

func TestApplyIndex(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name  string
		index uint64
		cmd   []byte
		want  uint64 // Index after
	}{
		{"undecodable consumes its index", 2, []byte("junk"), 2},
		{"empty consumes its index", 3, nil, 3},
		{"rejected consumes its index", 4, Command{Op: OpHostDelete, HostID: "h9"}.Encode(), 4},
		{"gap is fine", 9, Command{Op: OpStatusSet, Kind: KindHost, HostID: "h1", Status: "x"}.Encode(), 9},
		{"replay is rejected and not recorded", 9, Command{Op: OpStatusSet, Kind: KindHost, HostID: "h1", Status: "y"}.Encode(), 9},
		{"older is rejected and not recorded", 5, Command{Op: OpStatusSet, Kind: KindHost, HostID: "h1", Status: "y"}.Encode(), 9},
	} {
		res := f.store.Apply(tt.index, tt.cmd)
		st := f.store.State()
		if res.Err() == nil && tt.index != 9 {
			t.Errorf("%s: accepted", tt.name)
		}
		if st.Index() != tt.want {
			t.Errorf("%s: Index = %d, want %d", tt.name, st.Index(), tt.want)
		}
	}
	if h, _ := f.store.State().Host("h1"); h.Status != "x" || h.Updated != 9 {
		t.Errorf("host = %+v; replays must not apply", h)
	}
	if res := New().Apply(0, Command{Op: OpInit}.Encode()); res.Err() == nil {
		t.Error("index 0 accepted")
	}
}

func TestResultErr(t *testing.T) {
	f := newFixture(t)
	err := f.do(Command{Op: OpReplicaDelete, ReplicaID: 9}).Err()
	if err == nil || err.Error() != "registry: command rejected: replica 9 not found" {
		t.Errorf("Err() = %v", err)
	}
	if err := f.do(Command{Op: OpReplicaDelete, ReplicaID: 3}).Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

func TestIDsAreNeverReused(t *testing.T) {
	f := newFixture(t)
	f.must(Command{Op: OpShardPut, Shard: &Shard{Name: "a"}})
	f.must(Command{Op: OpShardDelete, ShardID: 1})
	if r := f.must(Command{Op: OpShardPut, Shard: &Shard{Name: "a"}}); r.Value != 2 {
		t.Errorf("shard ID %d after delete, want 2", r.Value)
	}
	f.must(Command{Op: OpReplicaDelete, ReplicaID: 3})
	if r := f.must(Command{Op: OpReplicaPut, Replica: &Replica{HostID: "h3", ShardID: 0}}); r.Value != 4 {
		t.Errorf("replica ID %d after delete, want 4", r.Value)
	}
	f.must(Command{Op: OpReplicaPut, Replica: &Replica{ID: 1<<64 - 1, HostID: "h1", ShardID: 2}})
	if r := f.do(Command{Op: OpReplicaPut, Replica: &Replica{HostID: "h2", ShardID: 2}}); !strings.Contains(string(r.Data), "exhausted") {
		t.Errorf("result %d %q after the last replica ID, want exhausted", r.Value, r.Data)
	}
}

// TestReplicaIDNotReusedByExplicitInsert: a replica_put naming a deleted
// replica's ID must not bring that ID back (Dragonboat refuses a removed
// replica ID for good), nor any ID at or below the last one assigned.
func TestReplicaIDNotReusedByExplicitInsert(t *testing.T) {
	f := newFixture(t)
	f.must(Command{Op: OpShardPut, Shard: &Shard{Name: "a"}})
	f.must(Command{Op: OpReplicaDelete, ReplicaID: 3})
	for _, id := range []uint64{3, 2} {
		before := f.store.State()
		r := f.do(Command{Op: OpReplicaPut, Replica: &Replica{ID: id, HostID: "h3", ShardID: 1}})
		if r.Err() == nil {
			t.Errorf("replica_put with ID %d at or below lastReplicaID 3 accepted", id)
		}
		if !sameContent(before, f.store.State()) {
			t.Errorf("refused replica_put with ID %d changed the store", id)
		}
	}
	if r := f.must(Command{Op: OpReplicaPut, Replica: &Replica{ID: 9, HostID: "h3", ShardID: 1}}); r.Value != 9 {
		t.Errorf("replica_put with a fresh ID 9: %d", r.Value)
	}
}
