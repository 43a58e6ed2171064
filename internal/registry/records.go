package registry

// Host is one process running one Dragonboat NodeHost, identified by its
// NodeHost ID (a UUID).
type Host struct {
	ID      string `json:"id"`      // the NodeHost ID
	Created uint64 `json:"created"` // raft index of the entry that added the record
	Updated uint64 `json:"updated"` // raft index of the entry that last changed it
	Status  string `json:"status"`  // HostStatusNew or HostStatusActive
	// Tags are the host's "key=value" labels, e.g. "geo:zone" (placement
	// filters and vary keys match them).
	Tags        map[string]string `json:"tags"`
	ApiAddress  string            `json:"apiAddress"`  // where the host serves the message bus
	RaftAddress string            `json:"raftAddress"` // where the host takes raft messages
	ShardTypes  []string          `json:"shardTypes"`  // the state machine types it can run
}

// Shard is one Raft group. Shard 0 is the prime shard holding the registry.
// Leader and Term record the last leader reported by a replica of the shard;
// Formed, when its initial members were formed. Only the registry sets them.
type Shard struct {
	ID      uint64 `json:"id"`      // the raft shard ID; 0 is the prime shard
	Created uint64 `json:"created"` // raft index of the entry that added the record
	Updated uint64 `json:"updated"` // raft index of the entry that last changed it
	// Status is ShardStatusNew, ShardStatusActive, or ShardStatusUnsatisfied
	// and the reason.
	Status string `json:"status"`
	// Tags are the shard's labels, its placement rules among them
	// ("placement:member" and the others).
	Tags   map[string]string `json:"tags"`
	Type   string            `json:"type"`             // the state machine type
	Name   string            `json:"name"`             // unique in the cluster
	Leader uint64            `json:"leader,omitempty"` // the leader's replica ID, last reported
	Term   uint64            `json:"term,omitempty"`   // the term of that report
	// Formed is the Created index of the shard's initial voting members,
	// recorded when the first of them was marked started or active: from
	// then on the shard may hold data, and a member created later joins it
	// rather than start a new group, even once every initial member is gone
	// (their hosts were deleted). 0 until then, and in shards formed before
	// the registry kept it.
	Formed uint64 `json:"formed,omitempty"`
}

// Replica is one member of a shard on one host. Replica IDs are unique
// across the whole cluster.
type Replica struct {
	ID      uint64 `json:"id"`      // the raft replica ID
	Created uint64 `json:"created"` // raft index of the entry that added the record
	Updated uint64 `json:"updated"` // raft index of the entry that last changed it
	Status  string `json:"status"`  // ReplicaStatusNew, ReplicaStatusStarted or ReplicaStatusActive
	// Tags are the replica's labels; "placement:group" names the
	// non-voting group it was placed for.
	Tags        map[string]string `json:"tags"`
	HostID      string            `json:"hostID"`      // the host that runs it
	IsNonVoting bool              `json:"isNonVoting"` // a non-voting replica (a raft learner)
	IsWitness   bool              `json:"isWitness"`   // a witness: votes, keeps no state machine
	ShardID     uint64            `json:"shardID"`     // the shard it is a replica of
}

// Host statuses: a host is new when another host registered it (at the
// cluster's bootstrap, or as it joined through that host), and active once
// its own agent has written its record.
const (
	HostStatusNew    = "new"
	HostStatusActive = "active"
)

// Shard statuses: new until every replica the placement wants is active,
// then active; a shard whose placement cannot be satisfied carries
// ShardStatusUnsatisfied followed by ": " and the reason.
const (
	ShardStatusNew         = "new"
	ShardStatusActive      = "active"
	ShardStatusUnsatisfied = "unsatisfied"
)

// Replica statuses: new when placed, started once its host is about to
// start it for the first time (from then on it may hold data), active once
// its host runs it, its shard has a leader and it has caught up with it.
const (
	ReplicaStatusNew     = "new"
	ReplicaStatusStarted = "started"
	ReplicaStatusActive  = "active"
)

// PrimeShardType is the type URI of the prime (registry) shard.
const PrimeShardType = "zongzi://github.com/zongzi-kv/zongzi/prime"

// PrimeShardName is the name of the prime shard.
const PrimeShardName = "zongzi"
