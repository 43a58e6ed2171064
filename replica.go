package zongzi

import "github.com/zongzi-kv/zongzi/internal/registry"

// Replica is one member of a shard on one host, as recorded in the registry.
type Replica = registry.Replica

// Replica statuses: new when placed, active once its host runs it and its
// shard has a leader.
const (
	ReplicaStatusNew    = registry.ReplicaStatusNew
	ReplicaStatusActive = registry.ReplicaStatusActive
)
