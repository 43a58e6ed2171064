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
type hostResolver struct {
	state   func() *State                   // the registry as it is now
	targets cowMap[raftio.NodeInfo, string] // replica → host ID (or, in older data, a raft address)
	book    atomic.Pointer[addrBook]        // host ID → raft address
	mu      sync.Mutex                      // serialises writers of book
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
// message it receives, so an unchanged target costs one lookup.
func (r *hostResolver) Add(shardID, replicaID uint64, target string) {
	k := raftio.GetNodeInfo(shardID, replicaID)
	if t, ok := r.targets.Load(k); ok && t == target {
		return
	}
	r.targets.Update(func(m map[raftio.NodeInfo]string) { m[k] = target })
}

// Remove implements raftio.INodeRegistry.
func (r *hostResolver) Remove(shardID, replicaID uint64) {
	r.targets.Update(func(m map[raftio.NodeInfo]string) { delete(m, raftio.GetNodeInfo(shardID, replicaID)) })
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
}

// Resolve implements raftio.INodeRegistry: the raft address of the
// replica's host, which is also the connection key.
func (r *hostResolver) Resolve(shardID, replicaID uint64) (string, string, error) {
	target, ok := r.targets.Load(raftio.GetNodeInfo(shardID, replicaID))
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
// forgotten when the registry records a new address for its host.
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
	for id, a := range b.learned {
		if old, ok := b.reg[id]; ok && old != next.reg[id] {
			continue
		}
		next.learned[id] = a
	}
	r.book.Store(next)
	return next
}
