package registry

import (
	"bytes"
	"reflect"
	"testing"
)

// fixture is a store with the Raft index of its next entry.
type fixture struct {
	t     testing.TB
	store *Store
	next  uint64
}

// newFixture returns a store bootstrapped at index 1 with hosts h1, h2, h3
// (zones a, b, c) and prime replicas 1, 2, 3 on them.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, store: New(), next: 1}
	f.must(Command{Op: OpInit, Hosts: threeHosts(), Replicas: threePrimeReplicas()})
	return f
}

func threeHosts() []Host {
	return []Host{
		{ID: "h1", Status: HostStatusActive, Tags: map[string]string{"geo:zone": "a"}, ApiAddress: "127.0.0.1:1001", RaftAddress: "127.0.0.1:2001"},
		{ID: "h2", Status: HostStatusActive, Tags: map[string]string{"geo:zone": "b"}, ApiAddress: "127.0.0.1:1002", RaftAddress: "127.0.0.1:2002"},
		{ID: "h3", Status: HostStatusActive, Tags: map[string]string{"geo:zone": "c"}, ApiAddress: "127.0.0.1:1003", RaftAddress: "127.0.0.1:2003"},
	}
}

func threePrimeReplicas() []Replica {
	return []Replica{
		{ID: 1, HostID: "h1", Status: ReplicaStatusActive},
		{ID: 2, HostID: "h2", Status: ReplicaStatusActive},
		{ID: 3, HostID: "h3", Status: ReplicaStatusActive},
	}
}

// do applies c as the next entry.
func (f *fixture) do(c Command) Result {
	f.t.Helper()
	r := f.store.Apply(f.next, c.Encode())
	f.next++
	return r
}

// must applies c and fails the test if it is rejected.
func (f *fixture) must(c Command) Result {
	f.t.Helper()
	r := f.do(c)
	if err := r.Err(); err != nil {
		f.t.Fatalf("apply %s: %v", c.Op, err)
	}
	return r
}

// save returns the snapshot of st.
func save(t testing.TB, st *State) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := st.Save(&b); err != nil {
		t.Fatalf("save: %v", err)
	}
	return b.Bytes()
}

// sameContent reports whether a and b hold the same records and counters,
// ignoring the applied index.
func sameContent(a, b *State) bool {
	ma, mb := a.meta, b.meta
	ma.Index, mb.Index = 0, 0
	return ma == mb &&
		reflect.DeepEqual(a.Hosts(), b.Hosts()) &&
		reflect.DeepEqual(a.Shards(), b.Shards()) &&
		reflect.DeepEqual(a.Replicas(), b.Replicas())
}

// checkInvariants verifies what Apply and Load promise about every state.
func checkInvariants(t testing.TB, st *State) {
	t.Helper()
	seen := map[[2]any]bool{}
	for _, r := range st.Replicas() {
		if r.ID == 0 || r.ID > st.LastReplicaID() {
			t.Errorf("replica ID %d outside 1..%d", r.ID, st.LastReplicaID())
		}
		if _, ok := st.Host(r.HostID); !ok {
			t.Errorf("replica %d: host %q missing", r.ID, r.HostID)
		}
		if _, ok := st.Shard(r.ShardID); !ok {
			t.Errorf("replica %d: shard %d missing", r.ID, r.ShardID)
		}
		k := [2]any{r.HostID, r.ShardID}
		if seen[k] {
			t.Errorf("replica %d: second replica of shard %d on host %q", r.ID, r.ShardID, r.HostID)
		}
		seen[k] = true
	}
	names := map[string]bool{}
	for _, s := range st.Shards() {
		if s.ID > st.LastShardID() {
			t.Errorf("shard ID %d above %d", s.ID, st.LastShardID())
		}
		if s.Name != "" && names[s.Name] {
			t.Errorf("shard name %q twice", s.Name)
		}
		names[s.Name] = true
		if s.Tags != nil && len(s.Tags) == 0 {
			t.Errorf("shard %d: empty non-nil tags", s.ID)
		}
	}
}

// roundTrip checks that st survives Save and Load unchanged.
func roundTrip(t testing.TB, st *State) {
	t.Helper()
	b := save(t, st)
	got, err := ReadState(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("load saved state: %v\n%s", err, b)
	}
	if !got.Equal(st) {
		t.Fatalf("state differs after Save and Load:\n%s\n%s", b, save(t, got))
	}
	if b2 := save(t, got); !bytes.Equal(b, b2) {
		t.Fatalf("saves differ:\n%s\n%s", b, b2)
	}
}
