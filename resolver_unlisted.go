package zongzi

import (
	"sync"

	"github.com/lni/dragonboat/v4/raftio"
)

// maxUnlisted bounds the targets the resolver keeps of replicas the
// registry does not list. Dragonboat tells the resolver the source host of
// every replica it receives a message from, so a peer that names made-up
// shards and replicas would otherwise grow the targets without end. Before
// it has the registry, a host needs a few: the prime shard's members, or
// the replica that leads it as the host joins; and a shard may add a
// replica before this host's registry lists it.
const maxUnlisted = 256

// maxTarget bounds a target's length: a host ID, or in older data a raft
// address (host:port). Dragonboat passes on a batch's source as it came.
const maxTarget = 1024

// unlistedTargets holds the targets of replicas that the registry did not
// list when Dragonboat told them, at most maxUnlisted: once full, a new one
// takes the place of an arbitrary one. One that was pushed out is
// told again with the next message from its replica, and Resolve finds it
// in the registry once listed there. Unlike the copy-on-write targets, a
// write costs no copy, so a flood of them is not quadratic.
type unlistedTargets struct {
	mu sync.Mutex
	m  map[raftio.NodeInfo]string
}

// load returns the target of k.
func (u *unlistedTargets) load(k raftio.NodeInfo) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.m[k]
	return t, ok
}

// store sets the target of k, pushing out another when full.
func (u *unlistedTargets) store(k raftio.NodeInfo, target string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[raftio.NodeInfo]string{}
	}
	if _, ok := u.m[k]; !ok && len(u.m) >= maxUnlisted {
		for old := range u.m { // the first in map order, which varies
			delete(u.m, old)
			break
		}
	}
	u.m[k] = target
}

// remove forgets the targets of the replicas for which drop is true.
func (u *unlistedTargets) remove(drop func(raftio.NodeInfo) bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k := range u.m {
		if drop(k) {
			delete(u.m, k)
		}
	}
}

// len returns how many targets u holds.
func (u *unlistedTargets) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}
