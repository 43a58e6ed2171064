package registry

// Host is one process running one Dragonboat NodeHost, identified by its
// NodeHost ID (a UUID).
type Host struct {
	ID          string            `json:"id"`
	Created     uint64            `json:"created"`
	Updated     uint64            `json:"updated"`
	Status      string            `json:"status"`
	Tags        map[string]string `json:"tags"`
	ApiAddress  string            `json:"apiAddress"`
	RaftAddress string            `json:"raftAddress"`
	ShardTypes  []string          `json:"shardTypes"`
}

// Shard is one Raft group. Shard 0 is the prime shard holding the registry.
// Leader and Term record the last leader reported by a replica of the shard.
type Shard struct {
	ID      uint64            `json:"id"`
	Created uint64            `json:"created"`
	Updated uint64            `json:"updated"`
	Status  string            `json:"status"`
	Tags    map[string]string `json:"tags"`
	Type    string            `json:"type"`
	Name    string            `json:"name"`
	Leader  uint64            `json:"leader,omitempty"`
	Term    uint64            `json:"term,omitempty"`
}

// Replica is one member of a shard on one host. Replica IDs are unique
// across the whole cluster.
type Replica struct {
	ID          uint64            `json:"id"`
	Created     uint64            `json:"created"`
	Updated     uint64            `json:"updated"`
	Status      string            `json:"status"`
	Tags        map[string]string `json:"tags"`
	HostID      string            `json:"hostID"`
	IsNonVoting bool              `json:"isNonVoting"`
	IsWitness   bool              `json:"isWitness"`
	ShardID     uint64            `json:"shardID"`
}

// Host statuses.
const (
	HostStatusNew    = "new"
	HostStatusActive = "active"
)

// Shard statuses. A shard whose placement cannot be satisfied carries
// ShardStatusUnsatisfied followed by ": " and the reason.
const (
	ShardStatusNew         = "new"
	ShardStatusActive      = "active"
	ShardStatusUnsatisfied = "unsatisfied"
)

// Replica statuses.
const (
	ReplicaStatusNew    = "new"
	ReplicaStatusActive = "active"
)

// PrimeShardType is the type URI of the prime (registry) shard.
const PrimeShardType = "zongzi://github.com/zongzi-kv/zongzi/prime"

// PrimeShardName is the name of the prime shard.
const PrimeShardName = "zongzi"
