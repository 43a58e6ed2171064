package registry

import (
	"encoding/json"
	"fmt"
)

// commandVersion is the first byte of every encoded registry command.
const commandVersion byte = 1

// Op names a registry operation.
type Op string

// Registry operations. Each one reads the fields of Command named beside it.
const (
	OpInit          Op = "init"         // Shard (the prime shard record), Replicas (initial prime members), Hosts
	OpHostPut       Op = "host_put"     // Host: insert, or update all fields but ID and Created; only an update, if IfUpdated is the host's Updated
	OpHostDelete    Op = "host_del"     // HostID: delete the host and its replicas
	OpShardPut      Op = "shard_put"    // Shard: ID 0 inserts (returns the existing shard when Name exists); else updates, if IfUpdated is 0 or the shard's Updated
	OpShardDelete   Op = "shard_del"    // ShardID: delete the shard and its replicas
	OpReplicaPut    Op = "replica_put"  // Replica: ID 0 inserts with a new ID; else updates, or inserts with that ID if above LastReplicaID
	OpReplicaDelete Op = "replica_del"  // ReplicaID
	OpTagSet        Op = "tag_set"      // Kind, HostID|ShardID|ReplicaID, Key, Value
	OpTagRemove     Op = "tag_remove"   // Kind, HostID|ShardID|ReplicaID, Key
	OpStatusSet     Op = "status_set"   // Kind, HostID|ShardID|ReplicaID, Status
	OpShardLeader   Op = "shard_leader" // ShardID, Leader, Term: recorded only when Term >= the stored term
	OpBatch         Op = "batch"        // Batch: applied in order as one entry, all or nothing; only at IfIndex, unless 0
)

// Kind names the record a tag or status command addresses.
type Kind string

// Record kinds.
const (
	KindHost    Kind = "host"
	KindShard   Kind = "shard"
	KindReplica Kind = "replica"
)

// Command is one registry change, proposed to the prime shard.
//
// A binary ignores the fields it does not know, in a command (DecodeCommand)
// as in a snapshot (Store.Load), so that during a rolling upgrade a replica
// of an older binary applies a newer one's command as the same change less
// the new fields, assigning the same IDs as the newer replicas, and ends
// with the same registry whether it applied the log or recovered from a
// snapshot. Refusing them would make it reject a command that the others
// apply, its IDs then differing from theirs, and fail on a snapshot, which
// Dragonboat answers by panicking. A field added later must therefore be
// one that older binaries may ignore; a new Op, or a change they must not
// ignore, must not be proposed before every host runs a binary that knows
// it.
type Command struct {
	Op        Op        `json:"op"`
	Kind      Kind      `json:"kind,omitempty"`
	Host      *Host     `json:"host,omitempty"`
	Shard     *Shard    `json:"shard,omitempty"`
	Replica   *Replica  `json:"replica,omitempty"`
	Hosts     []Host    `json:"hosts,omitempty"`
	Replicas  []Replica `json:"replicas,omitempty"`
	HostID    string    `json:"hostID,omitempty"`
	ShardID   uint64    `json:"shardID,omitempty"`
	ReplicaID uint64    `json:"replicaID,omitempty"`
	Key       string    `json:"key,omitempty"`
	Value     string    `json:"value,omitempty"`
	Status    string    `json:"status,omitempty"`
	Leader    uint64    `json:"leader,omitempty"`
	Term      uint64    `json:"term,omitempty"`
	Batch     []Command `json:"batch,omitempty"`
	// IfUpdated makes an update conditional: it applies only while the
	// record's Updated is this, so a change computed from an older copy
	// is refused instead of undoing the changes made since. 0: always.
	// OpShardPut of an existing shard reads it, and an insert (Shard.ID
	// 0) with it is refused. OpHostPut reads it too, and with it is
	// refused when the host does not exist: an update computed from the
	// record of a host deleted since does not register the host again.
	IfUpdated uint64 `json:"ifUpdated,omitempty"`
	// IfIndex makes a batch conditional: it applies only while the
	// registry's applied index is this, so a batch computed from the
	// registry at that index (a placement plan) is refused once anything
	// else was applied, instead of acting on what it no longer sees. 0:
	// always.
	IfIndex uint64 `json:"ifIndex,omitempty"`
}

// Encode returns the versioned wire form of c.
func (c Command) Encode() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		// Command holds only strings, integers, maps and slices of them.
		panic(fmt.Sprintf("registry: encode command: %v", err))
	}
	return append([]byte{commandVersion}, b...)
}

// DecodeCommand parses the wire form written by Encode. Fields it does not
// know are ignored (see Command).
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if len(b) == 0 {
		return c, fmt.Errorf("%w: empty", ErrBadCommand)
	}
	if b[0] != commandVersion {
		return c, fmt.Errorf("%w: unknown version %d", ErrBadCommand, b[0])
	}
	if err := json.Unmarshal(b[1:], &c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	return c, nil
}
