package registry

import (
	"fmt"
	"strings"
)

// apply validates and applies one decoded command. Commands inside a batch
// are nested: they may be neither batches nor init.
func (t *tx) apply(c Command, nested bool) (Result, error) {
	one := func(err error) (Result, error) { return Result{Value: 1}, err }
	switch c.Op {
	case OpInit:
		if nested {
			return Result{}, fmt.Errorf("%w: init inside a batch", ErrBadCommand)
		}
		return one(t.init(c))
	case OpHostPut:
		if c.Host == nil {
			return Result{}, missing(c.Op, "host")
		}
		if c.IfUpdated != 0 {
			old := t.host(c.Host.ID)
			if old == nil {
				// A deleted host is not brought back by an update
				// computed from its former record.
				return Result{}, fmt.Errorf("registry: host %q not found", c.Host.ID)
			}
			if old.Updated != c.IfUpdated {
				return Result{}, fmt.Errorf("registry: host %q changed at index %d, after %d", old.ID, old.Updated, c.IfUpdated)
			}
		}
		return one(t.putHost(*c.Host))
	case OpHostDelete:
		return one(t.deleteHost(c.HostID))
	case OpShardPut:
		if c.Shard == nil {
			return Result{}, missing(c.Op, "shard")
		}
		if c.IfUpdated != 0 && c.Shard.ID == 0 {
			// ID 0 inserts: there is no record to compare with (shard 0,
			// the prime shard, is not the one addressed).
			return Result{}, fmt.Errorf("%w: ifUpdated on an insert", ErrBadCommand)
		}
		if old := t.shard(c.Shard.ID); c.IfUpdated != 0 && old != nil && old.Updated != c.IfUpdated {
			return Result{}, fmt.Errorf("registry: shard %d changed at index %d, after %d", old.ID, old.Updated, c.IfUpdated)
		}
		id, created, err := t.putShard(*c.Shard)
		data := []byte{0}
		if created {
			data[0] = 1
		}
		return Result{Value: id, Data: data}, err
	case OpShardDelete:
		return one(t.deleteShard(c.ShardID))
	case OpReplicaPut:
		if c.Replica == nil {
			return Result{}, missing(c.Op, "replica")
		}
		id, err := t.putReplica(*c.Replica)
		return Result{Value: id}, err
	case OpReplicaDelete:
		return one(t.deleteReplica(c.ReplicaID))
	case OpTagSet:
		if c.Key == "" {
			return Result{}, missing(c.Op, "key")
		}
		return one(t.edit(c, setTag(c.Key, c.Value)))
	case OpTagRemove:
		if c.Key == "" {
			return Result{}, missing(c.Op, "key")
		}
		return one(t.edit(c, removeTag(c.Key)))
	case OpStatusSet:
		if err := t.edit(c, setStatus(c.Status)); err != nil || c.Kind != KindReplica {
			return one(err)
		}
		return one(t.noteFormed(c.ReplicaID))
	case OpShardLeader:
		return one(t.setLeader(c.ShardID, c.Leader, c.Term))
	case OpBatch:
		if nested {
			return Result{}, fmt.Errorf("%w: nested batch", ErrBadCommand)
		}
		if c.IfIndex != 0 && c.IfIndex != t.meta.Index {
			return Result{}, fmt.Errorf("registry: batch computed at index %d, applied after %d", c.IfIndex, t.meta.Index)
		}
		return t.batch(c.Batch)
	}
	return Result{}, fmt.Errorf("%w: unknown op %q", ErrBadCommand, c.Op)
}

// missing is the error of a command lacking a field its op needs.
func missing(op Op, field string) error {
	return fmt.Errorf("%w: %s without %s", ErrBadCommand, op, field)
}

// batch applies cmds in order; the caller aborts the transaction if one
// fails.
func (t *tx) batch(cmds []Command) (Result, error) {
	if len(cmds) == 0 {
		return Result{}, fmt.Errorf("%w: empty batch", ErrBadCommand)
	}
	for i, c := range cmds {
		if _, err := t.apply(c, true); err != nil {
			return Result{}, fmt.Errorf("registry: batch[%d] %s: %s", i, c.Op, strings.TrimPrefix(err.Error(), "registry: "))
		}
	}
	return Result{Value: uint64(len(cmds))}, nil
}

// init is the bootstrap entry: it creates the prime shard (ID 0, named
// PrimeShardName and typed PrimeShardType unless c.Shard says otherwise),
// then c.Hosts and c.Replicas, the prime shard's initial members.
func (t *tx) init(c Command) error {
	if first[Shard](t.txn, tableShards, indexID) != nil {
		return fmt.Errorf("registry: already initialised")
	}
	var prime Shard
	if c.Shard != nil {
		prime = *c.Shard
	}
	if prime.ID != 0 {
		return fmt.Errorf("%w: prime shard ID %d, want 0", ErrBadCommand, prime.ID)
	}
	if prime.Name == "" {
		prime.Name = PrimeShardName
	}
	if prime.Type == "" {
		prime.Type = PrimeShardType
	}
	prime.Leader, prime.Term, prime.Formed = 0, 0, 0
	if err := checkShard(&prime); err != nil {
		return err
	}
	if err := t.write(tableShards, nil, &prime); err != nil {
		return err
	}
	for _, h := range c.Hosts {
		if err := t.putHost(h); err != nil {
			return err
		}
	}
	for _, r := range c.Replicas {
		if _, err := t.putReplica(r); err != nil {
			return err
		}
	}
	return nil
}
