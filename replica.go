package zongzi

import "github.com/zongzi-kv/zongzi/internal/registry"

// Replica is one member of a shard on one host, as recorded in the registry.
type Replica = registry.Replica
