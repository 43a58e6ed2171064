package zongzi

import "github.com/zongzi-kv/zongzi/internal/registry"

// Shard is one Raft group, as recorded in the registry.
type Shard = registry.Shard
