package registry

import (
	"fmt"
	"math"
)

// putHost inserts h, or updates every field of the stored host but ID and
// Created.
func (t *tx) putHost(h Host) error {
	if err := checkHost(&h); err != nil {
		return err
	}
	old := t.host(h.ID)
	if old == nil {
		t.meta.LastHostID = h.ID
		return t.write(tableHosts, nil, &h)
	}
	return t.write(tableHosts, old, &h)
}

// deleteHost deletes a host and its replicas.
func (t *tx) deleteHost(id string) error {
	h := t.host(id)
	if h == nil {
		return fmt.Errorf("registry: host %q not found", id)
	}
	if err := t.removeReplicas(indexHost, id); err != nil {
		return err
	}
	return t.remove(tableHosts, h)
}

// putShard inserts a shard when s.ID is 0, or updates the stored shard.
// An insert whose name a shard already has changes nothing and returns
// that shard's ID. Leader and Term are only changed by OpShardLeader. It
// returns the shard's ID and whether it was created.
func (t *tx) putShard(s Shard) (uint64, bool, error) {
	if err := checkShard(&s); err != nil {
		return 0, false, err
	}
	if s.ID != 0 {
		old := t.shard(s.ID)
		if old == nil {
			return 0, false, fmt.Errorf("registry: shard %d not found", s.ID)
		}
		if err := t.checkShardName(&s); err != nil {
			return 0, false, err
		}
		s.Leader, s.Term, s.Formed = old.Leader, old.Term, old.Formed
		return s.ID, false, t.write(tableShards, old, &s)
	}
	if t.shard(0) == nil {
		return 0, false, fmt.Errorf("registry: not initialised: no prime shard")
	}
	if s.Name != "" {
		if o := t.shardByName(s.Name); o != nil && o.ID == 0 {
			return 0, false, fmt.Errorf("registry: shard name %q is the prime shard's", s.Name)
		} else if o != nil {
			return o.ID, false, nil
		}
	}
	if t.meta.LastShardID == math.MaxUint64 {
		return 0, false, fmt.Errorf("registry: shard IDs exhausted")
	}
	t.meta.LastShardID++
	s.ID, s.Leader, s.Term, s.Formed = t.meta.LastShardID, 0, 0, 0
	return s.ID, true, t.write(tableShards, nil, &s)
}

// deleteShard deletes a guest shard and its replicas.
func (t *tx) deleteShard(id uint64) error {
	if id == 0 {
		return fmt.Errorf("registry: the prime shard cannot be deleted")
	}
	s := t.shard(id)
	if s == nil {
		return fmt.Errorf("registry: shard %d not found", id)
	}
	if err := t.removeReplicas(indexShard, id); err != nil {
		return err
	}
	return t.remove(tableShards, s)
}

// putReplica inserts r with a new ID when r.ID is 0; else it updates the
// stored replica (whose host and shard cannot change) or inserts r with
// its ID, which must be above every ID assigned so far. It returns the
// replica's ID, and records its shard's Formed (noteFormed).
func (t *tx) putReplica(r Replica) (uint64, error) {
	id, err := t.storeReplica(r)
	if err != nil {
		return 0, err
	}
	return id, t.noteFormed(id)
}

// storeReplica is putReplica but for Formed.
func (t *tx) storeReplica(r Replica) (uint64, error) {
	if err := t.checkReplica(&r); err != nil {
		return 0, err
	}
	if r.ID != 0 {
		if old := t.replica(r.ID); old != nil {
			if old.HostID != r.HostID || old.ShardID != r.ShardID {
				return 0, fmt.Errorf("registry: replica %d: host and shard cannot change", r.ID)
			}
			return r.ID, t.write(tableReplicas, old, &r)
		}
	}
	if err := t.checkReplicaSlot(&r); err != nil {
		return 0, err
	}
	switch {
	case r.ID != 0 && r.ID <= t.meta.LastReplicaID:
		// Replica IDs are never reused: Dragonboat refuses a removed one.
		return 0, fmt.Errorf("registry: replica ID %d not above the last assigned %d", r.ID, t.meta.LastReplicaID)
	case r.ID == 0 && t.meta.LastReplicaID == math.MaxUint64:
		return 0, fmt.Errorf("registry: replica IDs exhausted")
	case r.ID == 0:
		t.meta.LastReplicaID++
		r.ID = t.meta.LastReplicaID
	default:
		t.meta.LastReplicaID = max(t.meta.LastReplicaID, r.ID)
	}
	return r.ID, t.write(tableReplicas, nil, &r)
}

// noteFormed records the Created index of replica id as its shard's
// Formed (see Shard) when it is a voting replica marked started or active,
// created no later than any other voting replica of the shard, and the
// shard has no Formed yet. A voting replica created later than another is
// a joiner: its shard was formed before Formed was kept, and keeps none.
func (t *tx) noteFormed(id uint64) error {
	r := t.replica(id)
	if r == nil || r.ShardID == 0 || r.IsNonVoting || r.IsWitness ||
		r.Status != ReplicaStatusStarted && r.Status != ReplicaStatusActive {
		return nil
	}
	s := t.shard(r.ShardID)
	if s == nil || s.Formed != 0 {
		return nil
	}
	for _, o := range all[Replica](t.txn, tableReplicas, indexShard, r.ShardID) {
		if !o.IsNonVoting && !o.IsWitness && o.Created < r.Created {
			return nil
		}
	}
	formed := copyOf(s)
	formed.Formed = r.Created
	return t.write(tableShards, s, &formed)
}

// deleteReplica deletes a replica.
func (t *tx) deleteReplica(id uint64) error {
	r := t.replica(id)
	if r == nil {
		return fmt.Errorf("registry: replica %d not found", id)
	}
	return t.remove(tableReplicas, r)
}
