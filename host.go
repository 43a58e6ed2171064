package zongzi

import "github.com/zongzi-kv/zongzi/internal/registry"

// Host is one process running one agent, as recorded in the registry.
type Host = registry.Host
