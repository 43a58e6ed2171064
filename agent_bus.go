package zongzi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4"
	"google.golang.org/grpc/codes"

	"github.com/zongzi-kv/zongzi/internal/bus"
	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"github.com/zongzi-kv/zongzi/internal/raftnet"
	"github.com/zongzi-kv/zongzi/internal/registry"
)

// busHandler serves requests from other hosts. Shard requests are served by
// local replicas only.
type busHandler struct{ a *Agent }

var _ bus.Handler = busHandler{}

// busErrors maps sentinel errors to gRPC codes and back.
var busErrors = []struct {
	err  error
	code codes.Code
}{
	{ErrShardNotFound, codes.NotFound},
	{ErrShardNotReady, codes.Unavailable},
	{ErrAgentNotReady, codes.FailedPrecondition},
	{ErrTimeout, codes.DeadlineExceeded},               // before ErrOutcomeUnknown, which it wraps
	{context.DeadlineExceeded, codes.DeadlineExceeded}, // e.g. a read batch's deadline; back as ErrTimeout
	{ErrOutcomeUnknown, codes.Unknown},
	{ErrRejected, codes.Aborted},
	{ErrInvalidConfig, codes.InvalidArgument},
	{ErrShardTypeUnknown, codes.Unimplemented},
	{ErrTooLarge, codes.ResourceExhausted},
	{ErrResultTooLarge, codes.OutOfRange}, // the bus's answer to an Apply whose result it cannot send
	{context.Canceled, codes.Canceled},
}

var busCodes = bus.Codes{
	ToCode: func(err error) uint32 {
		for _, e := range busErrors {
			if errors.Is(err, e.err) {
				return uint32(e.code)
			}
		}
		return uint32(codes.Internal)
	},
	ToError: func(code uint32, msg string) error {
		for _, e := range busErrors {
			if uint32(e.code) == code {
				return fmt.Errorf("%w (remote: %s)", e.err, msg)
			}
		}
		return errors.New(msg)
	},
	Unknown:  ErrOutcomeUnknown,
	TooLarge: ErrTooLarge,
	Closed:   ErrAgentNotReady,
}

func (h busHandler) Info(_ context.Context, shardID uint64) (*pb.InfoResponse, error) {
	a := h.a
	a.mu.RLock()
	defer a.mu.RUnlock()
	res := &pb.InfoResponse{
		GossipAddress: a.gossipAddr, PrimeReplicaId: a.primeID.Load(), Ready: a.primeReady,
		Initialised: a.primeReady || a.wasReady, ClusterName: a.clusterName, Peers: a.peers,
	}
	if nh := a.nh.Load(); nh != nil {
		res.HostId, res.RaftAddress = a.hostID, a.raftAddr
		if shardID != 0 {
			res.ShardReplicaId = a.runningReplica(nh, shardID)
		}
	}
	return res, nil
}

// runningReplica returns the replica of a guest shard that this host runs
// and Dragonboat has loaded, 0 if none: a replica Dragonboat unloaded (it
// was removed, or failed) does not run, though the agent may still list it.
func (a *Agent) runningReplica(nh *dragonboat.NodeHost, shardID uint64) uint64 {
	lr, ok := a.local.Snapshot()[shardID]
	if !ok {
		return 0
	}
	if _, _, _, err := nh.GetLeaderID(shardID); err != nil {
		return 0
	}
	return lr.replicaID
}

func (h busHandler) Join(ctx context.Context, req *pb.JoinRequest) (uint64, error) {
	if err := checkJoin(req); err != nil {
		return 0, err
	}
	if name := req.GetClusterName(); name != h.a.clusterName {
		return 0, fmt.Errorf("%w: join: host %s is of cluster %q, this host of cluster %q",
			ErrInvalidConfig, req.GetHostId(), name, h.a.clusterName)
	}
	if !req.GetNonVoting() && !slices.Contains(h.a.peers, req.GetApiAddress()) {
		// Its own peer list names it, and differs from this host's: it
		// would add a voter the cluster's peers do not know of.
		return 0, fmt.Errorf("%w: join: host %s at %s asks to vote, and is not in the peer list %v: the peer lists differ",
			ErrInvalidConfig, req.GetHostId(), req.GetApiAddress(), h.a.peers)
	}
	return h.a.addHost(ctx, req)
}

// checkJoin refuses a join whose host ID or addresses could not serve,
// before anything is proposed.
func checkJoin(req *pb.JoinRequest) error {
	id := req.GetHostId()
	if id == "" || len(id) > maxHostID || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return fmt.Errorf("%w: join: host ID %q", ErrInvalidConfig, id)
	}
	for _, addr := range []string{req.GetApiAddress(), req.GetRaftAddress()} {
		if !(raftnet.Factory{}).Validate(addr) {
			return fmt.Errorf("%w: join: host %s: address %q is not host:port", ErrInvalidConfig, id, addr)
		}
	}
	return nil
}

// maxHostID bounds a joining host's ID: Dragonboat's are UUIDs.
const maxHostID = 128

// joinWait bounds how long Membership waits for this host's registry to
// list the replica it is asked to add.
const joinWait = time.Second

// Membership adds a replica the registry lists to a shard served here, for
// the host of that replica. Removals are not taken from other hosts: a host
// removes its own replicas, through its own replica of the shard.
//
// The caller's registry lists the replica, and this host's may not have
// applied it yet: Membership waits for it, up to joinWait. A refusal
// changes no record, so the caller would only try again at its next sweep.
func (h busHandler) Membership(ctx context.Context, req *pb.MembershipRequest) error {
	if req.Remove {
		return fmt.Errorf("%w: shard %d: a removal is not taken from another host", ErrInvalidConfig, req.ShardId)
	}
	wctx, cancel := context.WithTimeout(ctx, joinWait)
	defer cancel()
	// Not listed and not allocated yet: this host's registry is behind.
	// Allocated and not listed, it was deleted.
	st, _ := h.a.awaitRegistry(wctx, func(st *State) bool {
		_, ok := st.Replica(req.ReplicaId)
		return ok || req.ReplicaId <= st.LastReplicaID()
	})
	// A voting member joins as a learner, non-voting (see promote).
	if r, ok := st.Replica(req.ReplicaId); ok && r.ShardID == req.ShardId && r.HostID == req.HostId && (req.NonVoting || !r.IsNonVoting) {
		return h.a.changeMembership(ctx, req)
	}
	return fmt.Errorf("%w: shard %d: replica %d of host %s is not in this host's registry",
		ErrShardNotReady, req.ShardId, req.ReplicaId, req.HostId)
}

// guestShard refuses a command or query from another host to the prime
// shard: the registry is read from each host's own replica and written
// through its registry session (exactly once), never by raw bytes from
// the network. ShardClient does not forward these calls for shard 0.
func guestShard(shardID uint64, call string) error {
	if shardID == 0 {
		return fmt.Errorf("%w: %s on the prime shard (shard 0) from another host", ErrInvalidConfig, call)
	}
	return nil
}

// caughtUp refuses a request from another host to a replica here that is
// behind (Agent.behind), with ErrShardNotReady: nothing is proposed or
// read, and the caller goes on to another host, as this host's own
// requests do.
func (h busHandler) caughtUp(shardID uint64) error {
	if _, lr, ok := h.a.localReplicaOf(shardID); ok && h.a.behind(shardID, lr) {
		return fmt.Errorf("%w: shard %d: the replica here is catching up", ErrShardNotReady, shardID)
	}
	return nil
}

func (h busHandler) Apply(ctx context.Context, shardID uint64, cmd []byte) (uint64, []byte, error) {
	if err := cmp.Or(guestShard(shardID, "apply"), h.caughtUp(shardID)); err != nil {
		return 0, nil, err
	}
	return h.a.localApply(ctx, shardID, cmd)
}

func (h busHandler) Commit(ctx context.Context, shardID uint64, cmd []byte) error {
	if err := cmp.Or(guestShard(shardID, "commit"), h.caughtUp(shardID)); err != nil {
		return err
	}
	return h.a.localCommit(ctx, shardID, cmd)
}

func (h busHandler) Read(ctx context.Context, shardID uint64, query []byte, stale, _ bool) (uint64, []byte, error) {
	if err := cmp.Or(guestShard(shardID, "read"), h.caughtUp(shardID)); err != nil {
		return 0, nil, err
	}
	return h.a.localRead(ctx, shardID, query, stale)
}

func (h busHandler) Index(ctx context.Context, shardID uint64) (uint64, error) {
	if err := h.caughtUp(shardID); err != nil {
		return 0, err
	}
	return h.a.localIndex(ctx, shardID)
}

// Watch is not refused while the replica here catches up (caughtUp): the
// caller's Watch does not try again after a pause, and a watch that goes
// on shows the replica's state as it catches up.
func (h busHandler) Watch(ctx context.Context, shardID uint64, query []byte, stale bool, send func(uint64, []byte) error) error {
	return h.a.localWatch(ctx, shardID, query, stale, send)
}

// addHost adds a host to the prime shard: the registry first, then Raft
// membership, so a member is never missing from the registry. A host that
// is already registered gets a new replica in place of its old one (see
// below). A host with a new ID at the API address of a registered
// one (its data was wiped) replaces it: the old host and its replicas leave
// the registry and the membership, and the new host joins as a new replica.
// While the registered one still answers at that address, the join is
// refused (ErrInvalidConfig): two processes were given one address.
// A fresh host (JoinRequest.fresh) keeps the prime replica the registry
// lists for it.
func (a *Agent) addHost(ctx context.Context, req *pb.JoinRequest) (uint64, error) {
	nh := a.NodeHost()
	if nh == nil || a.Status() != AgentStatusReady {
		return 0, ErrAgentNotReady
	}
	st := a.store.State()
	id := primeReplica(st, req.HostId)
	// A fresh host's ID was made by the process that asks, which has
	// started no replica: the replica the registry lists for it never ran
	// and has no entry to lose. It takes it as it is: a peer that the
	// others formed the prime shard with, and that found them ready
	// before it formed, takes its place among replicas 1..N.
	r, _ := st.Replica(id)
	keep := req.Fresh && r.IsNonVoting == req.NonVoting
	if id != 0 && keep {
		a.log.Info("zongzi: join: fresh host takes the prime replica listed for it", "joiner", req.HostId, "replica", id)
	}
	if id != 0 && !keep {
		// A host asks to join only when it has no prime replica on disk, so
		// the one the registry lists for it lost its data, or never ran (a
		// retried join, a peer that missed the forming, of a host that
		// cannot tell: its ID was pinned, or kept on disk). Started again
		// under its ID with an empty log, it could vote without the entries
		// it acknowledged, and its leader, which remembers how far it had
		// replicated to it, would make Dragonboat panic on it.
		a.log.Warn("zongzi: join: host has no data for its prime replica, which is replaced", "joiner", req.HostId, "replica", id)
		rep := Replica{HostID: req.HostId, ShardID: 0, IsNonVoting: req.NonVoting, Status: registry.ReplicaStatusActive}
		batch := registry.Command{Op: registry.OpBatch, Batch: []registry.Command{
			{Op: registry.OpReplicaDelete, ReplicaID: id},
			{Op: registry.OpReplicaPut, Replica: &rep},
		}}
		if _, err := a.proposeRegistry(ctx, batch); err != nil {
			return 0, fmt.Errorf("join: replace the prime replica %d of host %s: %w", id, req.HostId, err)
		}
		id = primeReplica(a.store.State(), req.HostId)
	}
	if id == 0 {
		host := Host{
			ID: req.HostId, Status: registry.HostStatusNew, Tags: req.Tags,
			ApiAddress: req.ApiAddress, RaftAddress: req.RaftAddress, ShardTypes: req.ShardTypes,
		}
		if len(host.Tags) == 0 {
			host.Tags = nil
		}
		batch := registry.Command{Op: registry.OpBatch}
		for _, old := range st.Hosts() {
			if old.ApiAddress == req.ApiAddress && old.ID != req.HostId {
				if a.answersAt(ctx, old) {
					return 0, fmt.Errorf("%w: join: host %s gives API address %s, where host %s still answers",
						ErrInvalidConfig, req.HostId, req.ApiAddress, old.ID)
				}
				batch.Batch = append(batch.Batch, registry.Command{Op: registry.OpHostDelete, HostID: old.ID})
			}
		}
		rep := Replica{HostID: req.HostId, ShardID: 0, IsNonVoting: req.NonVoting, Status: registry.ReplicaStatusActive}
		batch.Batch = append(batch.Batch,
			registry.Command{Op: registry.OpHostPut, Host: &host},
			registry.Command{Op: registry.OpReplicaPut, Replica: &rep})
		if _, err := a.proposeRegistry(ctx, batch); err != nil {
			return 0, fmt.Errorf("join: register host %s: %w", req.HostId, err)
		}
		if id = primeReplica(a.store.State(), req.HostId); id == 0 {
			return 0, fmt.Errorf("%w: join: host %s registered without a replica", ErrShardNotReady, req.HostId)
		}
	}
	// Members of replaced hosts leave before the new one joins, so the
	// voting set does not grow: here, whether or not this host leads the
	// prime shard, as the leader's host controller may remove them only
	// after the join.
	a.pruneShard(ctx, nh, 0, a.primeID.Load())
	err := a.changeMembership(ctx, &pb.MembershipRequest{ShardId: 0, ReplicaId: id, HostId: req.HostId, NonVoting: req.NonVoting})
	if err != nil {
		return 0, fmt.Errorf("join: %w", err)
	}
	return id, nil
}

// answersAt reports whether host h answers the bus at its API address: a
// joiner that gives that address is not h come back with its data wiped
// (a new host ID), but another process given h's address by mistake.
func (a *Agent) answersAt(ctx context.Context, h Host) bool {
	info, err := a.info(ctx, h.ApiAddress)
	return err == nil && info.HostId == h.ID
}

// primeReplica returns the ID of the host's prime replica, 0 if none.
func primeReplica(st *State, hostID string) uint64 {
	for _, r := range st.HostReplicas(hostID) {
		if r.ShardID == 0 {
			return r.ID
		}
	}
	return 0
}

// changeMembership adds or removes a replica of a shard served here.
func (a *Agent) changeMembership(ctx context.Context, req *pb.MembershipRequest) error {
	nh, err := a.localHost(req.ShardId)
	if err != nil {
		return err
	}
	m, err := nh.SyncGetShardMembership(ctx, req.ShardId)
	if err != nil {
		return fmt.Errorf("shard %d: membership: %w", req.ShardId, mapError(err))
	}
	_, voting := m.Nodes[req.ReplicaId]
	_, nonVoting := m.NonVotings[req.ReplicaId]
	_, witness := m.Witnesses[req.ReplicaId]
	_, removed := m.Removed[req.ReplicaId]
	var up []uint64 // the other voting members that run, when req removes a voter
	if req.Remove && (voting || witness) {
		up = a.upVotersWithout(ctx, req.ShardId, m, req.ReplicaId)
	}
	switch {
	case req.Remove && (voting || witness) && !majorityUp(m, up):
		return fmt.Errorf("%w: shard %d: removing replica %d would leave no majority of voting members up",
			errRemovalHeld, req.ShardId, req.ReplicaId)
	case req.Remove && (voting || nonVoting || witness):
		if voting {
			if err := a.handOver(ctx, nh, req.ShardId, m, req.ReplicaId, up); err != nil {
				return err
			}
			if a.beforeRemoval != nil {
				a.beforeRemoval()
			}
		}
		err = nh.SyncRequestDeleteReplica(ctx, req.ShardId, req.ReplicaId, m.ConfigChangeID)
	case !req.Remove && !req.NonVoting && nonVoting && req.ShardId != 0:
		// A learner's promotion: Dragonboat adds a non-voting replica
		// as a voter with the same ID and target (see promote).
		target, terr := a.hostTarget(req.HostId)
		if terr != nil {
			return terr
		}
		err = nh.SyncRequestAddReplica(ctx, req.ShardId, req.ReplicaId, target, m.ConfigChangeID)
	case req.Remove || removed || voting || nonVoting || witness:
		return nil
	default:
		target, terr := a.hostTarget(req.HostId)
		if terr != nil {
			return terr
		}
		if req.NonVoting {
			err = nh.SyncRequestAddNonVoting(ctx, req.ShardId, req.ReplicaId, target, m.ConfigChangeID)
		} else {
			err = nh.SyncRequestAddReplica(ctx, req.ShardId, req.ReplicaId, target, m.ConfigChangeID)
		}
	}
	if err != nil {
		return fmt.Errorf("shard %d: change membership of replica %d: %w", req.ShardId, req.ReplicaId, mapError(err))
	}
	return nil
}

// upVotersWithout returns the voting members (and witnesses) of m other
// than id that run on hosts that answer now. When they are no majority of
// those members, the shard could not commit once id is removed: its next
// removal neither. Placement does not know which hosts are down; it may
// drop a member that is up while another is down (ShardUpdate with fewer
// members, HostDelete of a host that still runs). Removed then, it would
// leave, of three members, two of which one is down: a shard that commits
// nothing and can remove no one until that host comes back, and never if
// it lost its data. Such a removal waits. A member is up when its replica
// runs on its host, as the bus's Info call reaches the agent of that host
// ID and says (runsReplica): a host that answers but does not run the
// member (its state machine type is not registered there, or Dragonboat
// unloaded it) does not count.
func (a *Agent) upVotersWithout(ctx context.Context, shardID uint64, m *dragonboat.Membership, id uint64) []uint64 {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st := a.store.State()
	var mu sync.Mutex
	var up []uint64
	var wg sync.WaitGroup
	for _, voters := range []map[uint64]string{m.Nodes, m.Witnesses} {
		for rid, target := range voters {
			if rid == id {
				continue
			}
			host := targetHost(st, target)
			wg.Go(func() {
				if a.runsReplica(ctx, st, host, shardID, rid) {
					mu.Lock()
					up = append(up, rid)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	slices.Sort(up)
	return up
}

// majorityUp reports whether up, the voting members that run other than
// the one being removed (upVotersWithout), are a majority of the others.
func majorityUp(m *dragonboat.Membership, up []uint64) bool {
	return len(up) > (len(m.Nodes)+len(m.Witnesses)-1)/2
}

// runsReplica reports whether replica rid of shardID runs on host: this
// host, or one that answers the bus's Info call.
func (a *Agent) runsReplica(ctx context.Context, st *State, host string, shardID, rid uint64) bool {
	var info *pb.InfoResponse
	if host == a.hostID {
		info, _ = busHandler{a}.Info(ctx, shardID)
	} else if addr := a.hostAddr(ctx, st, host); addr != "" {
		info, _ = a.pool.InfoShard(ctx, addr, shardID)
	}
	switch {
	case info == nil || info.HostId != host:
		return false
	case shardID == 0:
		return info.PrimeReplicaId == rid
	}
	return info.ShardReplicaId == rid
}

// hostAddr returns the API address of the host hostID (apiAddrs), or,
// for a host the registry deleted before this agent started, which
// apiAddrs never listed, the address of the peer that answers with that
// ID: deleted while it runs, a host is up as long as it answers (see
// apiBook), and the prime shard's voters are the peers.
func (a *Agent) hostAddr(ctx context.Context, st *State, hostID string) string {
	if addr := a.apiAddrs.lookup(st, hostID); addr != "" {
		return addr
	}
	listed := map[string]bool{}
	for _, h := range st.Hosts() {
		listed[h.ApiAddress] = true
	}
	for _, p := range a.peers {
		if p == a.apiAddr || listed[p] { // another host answers there
			continue
		}
		if info, err := a.pool.Info(ctx, p); err == nil && info.HostId == hostID {
			a.apiAddrs.learn(st, hostID, p)
			return p
		}
	}
	return ""
}

// targetHost returns the ID of the host a membership target names: the
// target itself, or, for a member recorded by raft address in data written
// before replicas were addressed by host ID, the ID of the host the
// registry lists at that address.
func targetHost(st *State, target string) string {
	if _, ok := st.Host(target); ok {
		return target
	}
	for _, h := range st.Hosts() {
		if h.RaftAddress == target {
			return h.ID
		}
	}
	return target
}

// apiBook is where hosts answer the bus, by host ID: as the registry
// lists them, and, for at most maxUnregistered hosts it deleted, as it
// last listed them, or, deleted before this agent started, as a peer
// answered with their ID (hostAddr). A host deleted while it runs
// (HostDelete) keeps its members, and runs them, until their removal
// leaves a majority up; it is up as long as it answers, and taken as down
// it would keep another host's members too: with A and C up, B down, and
// B and C deleted, neither B's members (leaving A and C) nor C's (leaving
// A and B) could leave.
type apiBook struct {
	mu    sync.Mutex
	state *State // the registry view addrs was last updated from
	addrs map[string]string
}

// update takes the addresses of st's hosts, keeping those of hosts st no
// longer lists up to the bound.
func (b *apiBook) update(st *State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st == b.state {
		return
	}
	next := map[string]string{}
	for _, h := range st.Hosts() {
		if h.ApiAddress != "" {
			next[h.ID] = h.ApiAddress
		}
	}
	kept := 0
	for id, addr := range b.addrs {
		if _, listed := next[id]; listed || kept >= maxUnregistered {
			continue
		}
		if _, ok := st.Host(id); !ok {
			next[id] = addr
			kept++
		}
	}
	b.state, b.addrs = st, next
}

// learn records addr as the API address of hostID, a host st does not
// list, among those it keeps (hostAddr).
func (b *apiBook) learn(st *State, hostID, addr string) {
	b.update(st)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.addrs[hostID]; !ok {
		b.addrs[hostID] = addr
	}
}

// unlisted returns the API addresses the book keeps of hosts st does not
// list, sorted.
func (b *apiBook) unlisted(st *State) []string {
	b.update(st)
	b.mu.Lock()
	defer b.mu.Unlock()
	var addrs []string
	for id, addr := range b.addrs {
		if _, listed := st.Host(id); !listed {
			addrs = append(addrs, addr)
		}
	}
	slices.Sort(addrs)
	return addrs
}

// lookup returns the API address of the host hostID, "" if unknown.
func (b *apiBook) lookup(st *State, hostID string) string {
	b.update(st)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addrs[hostID]
}

// hostTarget returns how Dragonboat addresses the host with the given ID:
// by the ID, once the registry has the host.
func (a *Agent) hostTarget(hostID string) (string, error) {
	h, ok := a.store.State().Host(hostID)
	if !ok {
		return "", fmt.Errorf("%w: host %s not in registry", ErrShardNotReady, hostID)
	}
	return h.ID, nil
}
