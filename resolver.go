package zongzi

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
)

// errUnknownHost is what the resolver answers for a replica whose host has
// no known raft address; Dragonboat drops the message, and Raft sends
// another later.
var errUnknownHost = errors.New("zongzi: raft address of host unknown")

// hostResolver is Dragonboat's node registry when gossip is off. Replicas
// are addressed by host ID, as under gossip, and a host's raft address
// comes from the registry, or from the host itself: raftnet tells the
// resolver the address each connecting host listens on, and peers say
// theirs at bootstrap (learn, both). So a host
// may come back on another raft address without gossip, and a host that
// joins can answer the prime shard's leader before it has the registry.
//
// Every replica on one host resolves to one connection key, the host's
// address: Dragonboat then sends one batch per peer per step, on one
// connection, instead of spreading shards over four.
//
// Dragonboat tells the resolver each replica's host (Add) as shards start
// and change members, and also for every message it receives: what a peer
// says is kept in full only for replicas the registry lists; of the others
// a bounded few are (unlistedTargets), and a replica the resolver was not
// told of, or forgot, is looked up in the registry.
type hostResolver struct {
	state    func() *State                   // the registry as it is now
	targets  cowMap[raftio.NodeInfo, string] // replica → host ID (or, in older data, a raft address)
	unlisted unlistedTargets                 // the same, of replicas the registry did not list
	book     atomic.Pointer[addrBook]        // host ID → raft address
	mu       sync.Mutex                      // serialises writers of book
}

// addrBook is where hosts listen, by host ID: as the registry view state
// records it, and as hosts said themselves since. What a host said wins
// until the registry records another address for it.
type addrBook struct {
	state   *State
	reg     map[string]string
	learned map[string]string
}

var (
	_ raftio.INodeRegistry       = (*hostResolver)(nil)
	_ config.NodeRegistryFactory = (*hostResolver)(nil)
)

func newHostResolver(state func() *State) *hostResolver {
	r := &hostResolver{state: state}
	r.book.Store(&addrBook{})
	return r
}

// Create implements config.NodeRegistryFactory: the agent's one resolver.
func (r *hostResolver) Create(string, uint64, config.TargetValidator) (raftio.INodeRegistry, error) {
	return r, nil
}

// Close implements raftio.INodeRegistry.
func (r *hostResolver) Close() error { return nil }

// Add implements raftio.INodeRegistry. Dragonboat calls it for every
// message it receives, so an unchanged target costs a lookup or two. A
// replica the registry lists, or one the resolver already keeps there,
// goes into targets; another is kept among the bounded unlisted ones. A
// target longer than maxTarget is not kept.
func (r *hostResolver) Add(shardID, replicaID uint64, target string) {
	k := raftio.GetNodeInfo(shardID, replicaID)
	t, kept := r.targets.Load(k)
	if kept && t == target {
		return
	}
	if !kept {
		if t, ok := r.unlisted.load(k); ok && t == target {
			return
		}
	}
	if len(target) > maxTarget {
		return
	}
	if !kept && !r.listed(shardID, replicaID) {
		r.unlisted.store(k, target)
		return
	}
	r.targets.Update(func(m map[raftio.NodeInfo]string) { m[k] = target })
	r.unlisted.remove(func(u raftio.NodeInfo) bool { return u == k })
}

// listed says whether the registry lists the replica in the shard.
func (r *hostResolver) listed(shardID, replicaID uint64) bool {
	rep, ok := r.state().Replica(replicaID)
	return ok && rep.ShardID == shardID
}

// Remove implements raftio.INodeRegistry.
func (r *hostResolver) Remove(shardID, replicaID uint64) {
	k := raftio.GetNodeInfo(shardID, replicaID)
	r.targets.Update(func(m map[raftio.NodeInfo]string) { delete(m, k) })
	r.unlisted.remove(func(u raftio.NodeInfo) bool { return u == k })
}

// RemoveShard implements raftio.INodeRegistry.
func (r *hostResolver) RemoveShard(shardID uint64) {
	r.targets.Update(func(m map[raftio.NodeInfo]string) {
		for k := range m {
			if k.ShardID == shardID {
				delete(m, k)
			}
		}
	})
	r.unlisted.remove(func(u raftio.NodeInfo) bool { return u.ShardID == shardID })
}

// Resolve implements raftio.INodeRegistry: the raft address of the
// replica's host, which is also the connection key.
func (r *hostResolver) Resolve(shardID, replicaID uint64) (string, string, error) {
	target, ok := r.target(shardID, replicaID)
	if !ok {
		return "", "", errUnknownHost
	}
	if addr := r.addr(target); addr != "" {
		return addr, addr, nil
	}
	if uuid.Validate(target) != nil {
		// A member recorded by raft address, in data written before
		// replicas were addressed by host ID.
		return target, target, nil
	}
	return "", "", errUnknownHost
}

// target returns the replica's target as Dragonboat told it, or else the
// host the registry lists it on.
func (r *hostResolver) target(shardID, replicaID uint64) (string, bool) {
	k := raftio.GetNodeInfo(shardID, replicaID)
	if t, ok := r.targets.Load(k); ok {
		return t, true
	}
	if t, ok := r.unlisted.load(k); ok {
		return t, true
	}
	if rep, ok := r.state().Replica(replicaID); ok && rep.ShardID == shardID {
		return rep.HostID, true
	}
	return "", false
}

// addr returns the raft address of the host, "" when unknown.
func (r *hostResolver) addr(hostID string) string {
	b := r.book.Load()
	if st := r.state(); st != b.state {
		b = r.rebuild(st)
	}
	if a, ok := b.learned[hostID]; ok {
		return a
	}
	return b.reg[hostID]
}

// maxUnregistered bounds the addresses learned of hosts the registry does
// not list: a joining host hears from a few before it has the registry,
// while a peer that names another host in every batch it sends would
// otherwise grow the book, and the cost of copying it, without end.
const maxUnregistered = 256

// learn records that the host hostID listens on addr, as it said itself.
// Host IDs are UUIDs (Resolve takes any other target for an address).
func (r *hostResolver) learn(hostID, addr string) {
	if addr == "" || uuid.Validate(hostID) != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.book.Load()
	if a, ok := b.learned[hostID]; ok && a == addr {
		return
	}
	if _, ok := b.reg[hostID]; !ok && unregistered(b) >= maxUnregistered {
		return
	}
	next := &addrBook{state: b.state, reg: b.reg, learned: maps.Clone(b.learned)}
	if next.learned == nil {
		next.learned = map[string]string{}
	}
	next.learned[hostID] = addr
	r.book.Store(next)
}

// unregistered counts the addresses b learned of hosts its registry view
// does not list.
func unregistered(b *addrBook) int {
	n := 0
	for id := range b.learned {
		if _, ok := b.reg[id]; !ok {
			n++
		}
	}
	return n
}

// rebuild takes the registry's addresses from st. A learned address is
// forgotten when the registry records a new address for its host, not
// when it deletes the host: a host deleted while it runs (HostDelete)
// keeps its replicas in the Raft memberships until they are removed, and
// may be needed for a quorum until then, which it cannot give if no one
// can send to it. At most maxUnregistered such addresses are kept.
func (r *hostResolver) rebuild(st *State) *addrBook {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.book.Load()
	if b.state == st {
		return b
	}
	next := &addrBook{state: st, reg: map[string]string{}, learned: map[string]string{}}
	for _, h := range st.Hosts() {
		next.reg[h.ID] = h.RaftAddress
	}
	kept := 0 // learned addresses of hosts st does not list
	for id, a := range b.learned {
		old, was := b.reg[id]
		now, is := next.reg[id]
		switch {
		case was && is && old != now: // the registry records a new address
			continue
		case !is && kept >= maxUnregistered:
			continue
		case !is:
			kept++
		}
		next.learned[id] = a
	}
	r.book.Store(next)
	return next
}
