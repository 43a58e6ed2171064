package registry

import (
	"reflect"

	memdb "github.com/hashicorp/go-memdb"
)

// State is a read-only view of the registry at one instant: later changes
// to the Store do not show in it, and reading it never blocks the Store's
// writer. It is safe for concurrent use. Records it returns are copies
// that the caller may modify freely.
type State struct {
	db   *memdb.MemDB // a snapshot, never written
	meta meta
}

func newState(db *memdb.MemDB) *State {
	return &State{db: db, meta: readMeta(db.Txn(false))}
}

func (s *State) txn() *memdb.Txn { return s.db.Txn(false) }

// Index returns the Raft index of the last applied entry, accepted or
// rejected.
func (s *State) Index() uint64 { return s.meta.Index }

// LastReplicaID returns the highest replica ID ever assigned.
func (s *State) LastReplicaID() uint64 { return s.meta.LastReplicaID }

// LastShardID returns the highest shard ID ever assigned.
func (s *State) LastShardID() uint64 { return s.meta.LastShardID }

// LastHostID returns the ID of the most recently inserted host, which may
// have been deleted since.
func (s *State) LastHostID() string { return s.meta.LastHostID }

// Host returns the host with ID id.
func (s *State) Host(id string) (Host, bool) {
	return lookup[Host](s.txn(), tableHosts, indexID, id)
}

// Shard returns the shard with ID id.
func (s *State) Shard(id uint64) (Shard, bool) {
	return lookup[Shard](s.txn(), tableShards, indexID, id)
}

// ShardByName returns the shard named name. Unnamed shards are not found.
func (s *State) ShardByName(name string) (Shard, bool) {
	if name == "" {
		return Shard{}, false
	}
	return lookup[Shard](s.txn(), tableShards, indexName, name)
}

// Replica returns the replica with ID id.
func (s *State) Replica(id uint64) (Replica, bool) {
	return lookup[Replica](s.txn(), tableReplicas, indexID, id)
}

// Hosts returns every host, by ID.
func (s *State) Hosts() []Host {
	return copies(all[Host](s.txn(), tableHosts, indexID))
}

// Shards returns every shard, by ID: the prime shard first.
func (s *State) Shards() []Shard {
	return copies(all[Shard](s.txn(), tableShards, indexID))
}

// Replicas returns every replica, by ID.
func (s *State) Replicas() []Replica {
	return copies(all[Replica](s.txn(), tableReplicas, indexID))
}

// HostReplicas returns the replicas on host hostID, by ID.
func (s *State) HostReplicas(hostID string) []Replica {
	return copies(all[Replica](s.txn(), tableReplicas, indexHost, hostID))
}

// ShardReplicas returns the replicas of shard shardID, by ID.
func (s *State) ShardReplicas(shardID uint64) []Replica {
	return copies(all[Replica](s.txn(), tableReplicas, indexShard, shardID))
}

// HostsByTag returns, by ID, the hosts whose tag key has the given value,
// or that have tag key at all when value is "".
func (s *State) HostsByTag(key, value string) []Host {
	var out []Host
	for _, h := range all[Host](s.txn(), tableHosts, indexID) {
		if v, ok := h.Tags[key]; ok && (value == "" || v == value) {
			out = append(out, copyOf(h))
		}
	}
	return out
}

// HostCount returns the number of hosts.
func (s *State) HostCount() int { return count(s.txn(), tableHosts) }

// ShardCount returns the number of shards, the prime shard included.
func (s *State) ShardCount() int { return count(s.txn(), tableShards) }

// ReplicaCount returns the number of replicas.
func (s *State) ReplicaCount() int { return count(s.txn(), tableReplicas) }

// Equal reports whether s and o hold the same registry: the same index,
// counters and records.
func (s *State) Equal(o *State) bool {
	return s.meta == o.meta &&
		reflect.DeepEqual(s.Hosts(), o.Hosts()) &&
		reflect.DeepEqual(s.Shards(), o.Shards()) &&
		reflect.DeepEqual(s.Replicas(), o.Replicas())
}

// lookup returns a copy of the record of table whose index matches arg.
func lookup[T any, P recordPtr[T]](txn *memdb.Txn, table, index string, arg any) (T, bool) {
	if p := first[T](txn, table, index, arg); p != nil {
		return copyOf[T, P](p), true
	}
	var zero T
	return zero, false
}

// count returns the number of rows of table.
func count(txn *memdb.Txn, table string) int {
	it, err := txn.Get(table, indexID)
	if err != nil {
		return 0
	}
	n := 0
	for obj := it.Next(); obj != nil; obj = it.Next() {
		n++
	}
	return n
}

// Check returns the error Apply would reject c with, were c the entry after
// the last one st holds, or nil when c would apply. It changes nothing: not
// st, nor the Store st came from. (A function rather than a method: State
// is exported as the agent's read-only view.)
func Check(st *State, c Command) error {
	t := &tx{txn: st.db.Snapshot().Txn(true), index: st.meta.Index + 1, meta: st.meta}
	defer t.txn.Abort()
	_, err := t.apply(c, false)
	return err
}
