package zongzi

import (
	"maps"
	"sync"
	"sync/atomic"
)

// cowMap is a copy-on-write map: reads are one atomic load and never
// block; writes, which are rare (replicas starting, leaders changing), copy
// the map under a mutex. The zero value is an empty map.
type cowMap[K comparable, V any] struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[K]V]
}

// Load returns the value of k.
func (c *cowMap[K, V]) Load(k K) (V, bool) {
	var zero V
	m := c.m.Load()
	if m == nil {
		return zero, false
	}
	v, ok := (*m)[k]
	return v, ok
}

// Snapshot returns the current map, which the caller must not modify.
func (c *cowMap[K, V]) Snapshot() map[K]V {
	if m := c.m.Load(); m != nil {
		return *m
	}
	return nil
}

// Update replaces the map with f applied to a copy of it.
func (c *cowMap[K, V]) Update(f func(map[K]V)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := maps.Clone(c.Snapshot())
	if next == nil {
		next = map[K]V{}
	}
	f(next)
	c.m.Store(&next)
}
