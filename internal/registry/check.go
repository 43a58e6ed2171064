package registry

import (
	"fmt"
	"strings"
)

// Checks shared by Apply and Load: what every stored record must satisfy.

// checkHost validates a host on its own.
func checkHost(h *Host) error {
	if !validKey(h.ID) {
		return fmt.Errorf("registry: host ID %q is empty or contains NUL", h.ID)
	}
	return nil
}

// checkShard validates a shard on its own.
func checkShard(s *Shard) error {
	if strings.ContainsRune(s.Name, 0) {
		return fmt.Errorf("registry: shard name %q contains NUL", s.Name)
	}
	return nil
}

// checkShardName verifies that no other shard than s has s's name.
func (t *tx) checkShardName(s *Shard) error {
	if s.Name == "" {
		return nil
	}
	if o := t.shardByName(s.Name); o != nil && o.ID != s.ID {
		return fmt.Errorf("registry: shard name %q is taken by shard %d", s.Name, o.ID)
	}
	return nil
}

// checkReplica verifies that a replica's host and shard exist and that its
// roles are compatible.
func (t *tx) checkReplica(r *Replica) error {
	if r.IsWitness && r.IsNonVoting {
		return fmt.Errorf("registry: replica %d cannot be both witness and non-voting", r.ID)
	}
	if t.host(r.HostID) == nil {
		return fmt.Errorf("registry: host %q not found", r.HostID)
	}
	if t.shard(r.ShardID) == nil {
		return fmt.Errorf("registry: shard %d not found", r.ShardID)
	}
	return nil
}

// checkReplicaSlot verifies that the shard of a new replica r has no
// replica on r's host yet.
func (t *tx) checkReplicaSlot(r *Replica) error {
	for _, o := range all[Replica](t.txn, tableReplicas, indexHost, r.HostID) {
		if o.ShardID == r.ShardID {
			return fmt.Errorf("registry: shard %d already has replica %d on host %q", r.ShardID, o.ID, r.HostID)
		}
	}
	return nil
}
