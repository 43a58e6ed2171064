package zongzi

import "github.com/zongzi-kv/zongzi/internal/registry"

// Replica is one member of a shard on one host, as recorded in the registry.
type Replica = registry.Replica

// Replica statuses: new when placed; started once its host is about to
// start it for the first time, from when it may hold data (a started or
// active replica whose host no longer has its data is replaced under a new
// ID, never started again empty); active once its host runs it, its shard
// has a leader, and it has caught up with the shard (a read barrier passed
// on it): from then on other hosts send it requests, and placement counts
// it as able to take another member's place.
const (
	ReplicaStatusNew     = registry.ReplicaStatusNew
	ReplicaStatusStarted = registry.ReplicaStatusStarted
	ReplicaStatusActive  = registry.ReplicaStatusActive
)
