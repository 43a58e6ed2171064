package zongzi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/raftio"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"github.com/zongzi-kv/zongzi/internal/registry"
)

// Host is one process running one agent, as recorded in the registry.
type Host = registry.Host

// Host statuses: a host is new when another host registered it (at the
// cluster's bootstrap, or as it joined through that host), and active once
// its own agent has written its record.
const (
	HostStatusNew    = registry.HostStatusNew
	HostStatusActive = registry.HostStatusActive
)

// hostSweep is how often the host controller reconciles when nothing changes.
const hostSweep = 3 * time.Second

// runHostController makes this host's replicas match the registry whenever
// the registry changes or a replica not yet active learns its shard's
// leader (hostKick), and at every sweep as a safety net.
func (a *Agent) runHostController(ctx context.Context) {
	every(ctx, a.sweep, a.store.Changed, a.hostKick, func() { a.reconcileHost(ctx) })
}

// reconcileHost makes one pass: register this host, start the replicas the
// registry assigns to it, stop those it removed, mark started ones active.
//
// Stopping a replica and removing a deleted one's data can each wait
// seconds, and fail, on a shard that lost its quorum or on hosts that do
// not answer, pass after pass. So the replicas of shards this host has
// nothing else of start, and running ones are marked active, first; the
// stops run side by side; a replica of a shard of which another replica
// runs here or left data starts only after those went (lateShards).
func (a *Agent) reconcileHost(ctx context.Context) {
	st := a.store.State()
	a.apiAddrs.update(st)
	a.registerSelf(ctx, st)
	want := map[uint64]Replica{}
	for _, r := range st.HostReplicas(a.hostID) {
		if r.ShardID != 0 {
			want[r.ShardID] = r
		}
	}
	running := a.local.Snapshot()
	// The replicas with data here, read from the log DB once per pass: stops
	// leave their data, which removeDeletedData removes.
	var logInfo []raftio.NodeInfo
	if nh := a.NodeHost(); nh != nil {
		logInfo = nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{}).LogInfo
	}
	late := lateShards(want, running, logInfo)
	shards := slices.Sorted(maps.Keys(want))
	for _, shardID := range shards {
		r := want[shardID]
		switch lr, ok := running[shardID]; {
		case ok && lr.replicaID == r.ID:
			a.logErr(a.markActive(ctx, r, lr), "mark replica active", shardID)
		case !late[shardID]:
			a.logErr(a.startReplica(ctx, st, r), "start replica", shardID)
		}
	}
	var stops sync.WaitGroup
	for shardID, lr := range running {
		if r, ok := want[shardID]; !ok || r.ID != lr.replicaID {
			stops.Go(func() { a.logErr(a.stopReplica(ctx, st, shardID, lr), "stop replica", shardID) })
		}
	}
	stops.Wait()
	a.removeDeletedData(ctx, st, logInfo) // before a new replica of the same shard starts
	a.sweepLearnerMarks(st, logInfo)
	a.pruneMembers(ctx, running)
	for _, shardID := range shards {
		if late[shardID] {
			a.logErr(a.startReplica(ctx, st, want[shardID]), "start replica", shardID)
		}
	}
}

// lateShards returns the shards of the wanted replicas that must wait for
// stopReplica and removeDeletedData: another replica of the shard runs
// here, or left its data here (logInfo). A host runs one replica of a
// shard, and the data of a deleted one goes before a new one starts.
func lateShards(want map[uint64]Replica, running map[uint64]*localReplica, logInfo []raftio.NodeInfo) map[uint64]bool {
	late := map[uint64]bool{}
	for shardID, lr := range running {
		if r, ok := want[shardID]; ok && r.ID != lr.replicaID {
			late[shardID] = true
		}
	}
	for _, ni := range logInfo {
		if r, ok := want[ni.ShardID]; ok && r.ID != ni.ReplicaID {
			late[ni.ShardID] = true
		}
	}
	return late
}

// logErr logs the failure of what, for a shard, by a controller pass: at
// Warn, but at Debug while it repeats the one before it (a removal held
// pass after pass, say). A success, err nil, ends the repeat.
func (a *Agent) logErr(err error, what string, shardID uint64) {
	key := warnedKey{what, shardID}
	switch {
	case err == nil:
		a.warned.Delete(key)
	case !ctxAlive(err):
	case warnedOf(&a.warned, key, err.Error()):
		a.log.Debug("zongzi: "+what, "shard", shardID, "err", err)
	default:
		a.log.Warn("zongzi: "+what, "shard", shardID, "err", err)
	}
}

// warnedKey is what failed, and for which shard, in logErr.
type warnedKey struct {
	what  string
	shard uint64
}

// warnedOf reports whether m holds msg under key, and stores it there.
func warnedOf(m *sync.Map, key warnedKey, msg string) bool {
	old, ok := m.Swap(key, msg)
	return ok && old.(string) == msg
}

// registerSelf writes this host's record when the registry's differs.
// A host whose prime replica the registry no longer lists was deleted
// (HostDelete) while it ran: it does not register again. Its prime
// replica leaves the prime shard, after which it can write no registry
// entry; placed on it, a replica would join its shard's membership (a
// host running the shard adds it) and never be marked started, nor run:
// a voter that never votes.
func (a *Agent) registerSelf(ctx context.Context, st *State) {
	if primeReplica(st, a.hostID) == 0 {
		if !a.deletedLogged.Swap(true) {
			a.log.Warn("zongzi: this host was deleted from the registry; it does not register again, and must be wiped to join again")
		}
		return
	}
	h, _ := st.Host(a.hostID)
	want := Host{
		ID: a.hostID, Created: h.Created, Updated: h.Updated, Status: registry.HostStatusActive,
		Tags: a.hostTags, ApiAddress: a.apiAddr, RaftAddress: a.raftAddr, ShardTypes: a.shardTypes(),
	}
	if h.Status == want.Status && maps.Equal(h.Tags, want.Tags) && h.ApiAddress == want.ApiAddress &&
		h.RaftAddress == want.RaftAddress && slices.Equal(h.ShardTypes, want.ShardTypes) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// Conditional on the record read: were the host deleted before this
	// entry applies, it would otherwise be registered again, without a
	// prime replica, and placement would put replicas on it.
	_, err := a.proposeRegistry(ctx, registry.Command{Op: registry.OpHostPut, Host: &want, IfUpdated: h.Updated})
	a.logErr(err, "register host", 0)
}

// markActive records r, running here as lr, as active once its shard has a
// leader and it has caught up (catchUp): other hosts then send it requests,
// and placement counts it as a member that can take the place of another.
// The leader is the one the raft events reported, which wake the host
// controller (hostKick), as catchUp does: Dragonboat's GetLeaderID learns
// it later.
func (a *Agent) markActive(ctx context.Context, r Replica, lr *localReplica) error {
	if r.Status == registry.ReplicaStatusActive || a.holdActive != nil && a.holdActive(r) {
		return nil
	}
	if li, ok := a.localLeader(r.ShardID); !ok || li.replicaID != r.ID || !lr.caughtUp.Load() {
		return nil
	}
	return a.setReplicaStatus(ctx, r, registry.ReplicaStatusActive)
}

// setReplicaStatus records r's new status in the registry.
func (a *Agent) setReplicaStatus(ctx context.Context, r Replica, status string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := a.proposeRegistry(ctx, registry.Command{
		Op: registry.OpStatusSet, Kind: registry.KindReplica, ReplicaID: r.ID, Status: status,
	})
	if err != nil {
		return fmt.Errorf("mark replica %d %s: %w", r.ID, status, err)
	}
	return nil
}

// startReplica starts a replica the registry assigned to this host: from its
// data on disk, as an initial member of a new shard, or as a joiner added
// through a host that already runs the shard. A replica that may have run
// here but whose data is gone is not started: it is deleted, to be
// replaced.
func (a *Agent) startReplica(ctx context.Context, st *State, r Replica) error {
	t, err := a.shardType(st, r.ShardID)
	if err != nil {
		return err
	}
	nh := a.NodeHost()
	fresh := !nh.HasNodeInfo(r.ShardID, r.ID)
	if fresh && r.Status != registry.ReplicaStatusNew {
		return a.deleteLostReplica(ctx, r)
	}
	if err := a.waitClosed(ctx, r.ShardID); err != nil {
		return fmt.Errorf("start replica %d: %w", r.ID, err)
	}
	g, err := newReplicaGuest(t, r, a.log)
	if err != nil {
		return fmt.Errorf("start replica %d of shard %d: %w", r.ID, r.ShardID, err)
	}
	var members map[uint64]dragonboat.Target
	join := false
	if fresh {
		if members = a.initialMembers(st, r); members == nil {
			join = true
			learner := !r.IsNonVoting
			if learner {
				err = a.markLearner(r.ShardID, r.ID)
			}
			if err == nil {
				err = a.requestJoin(ctx, st, r, learner)
			}
		}
		if err == nil { // from here on it may hold data: lost, it is replaced
			err = a.setReplicaStatus(ctx, r, registry.ReplicaStatusStarted)
		}
		if err != nil {
			return errors.Join(err, g.discard())
		}
	}
	return a.runReplica(nh, r, g, members, join, true)
}

// shardType returns the registered state machine type of a shard.
func (a *Agent) shardType(st *State, shardID uint64) (stateMachineType, error) {
	shard, ok := st.Shard(shardID)
	if !ok {
		return stateMachineType{}, fmt.Errorf("%w: %d", ErrShardNotFound, shardID)
	}
	a.mu.RLock()
	t, ok := a.types[shard.Type]
	a.mu.RUnlock()
	if !ok {
		return stateMachineType{}, fmt.Errorf("%w: %s", ErrShardTypeUnknown, shard.Type)
	}
	return t, nil
}

// closeWait bounds how long waitClosed holds a host controller pass.
const closeWait = 3 * time.Second

// waitClosed waits, up to closeWait, until the state machine of the
// shard's replica last started here has closed, and returns
// ErrShardNotReady if it has not: a replica of the shard must start only
// then. Dragonboat closes the state machine of a replica it stops later,
// on another goroutine, and would open the next one's meanwhile: a
// persistent state machine would open the files of a replica still open,
// those of the same replica when restartHeld starts it again. Once that
// Close returns, the host controller is woken (runReplica), not left to
// its sweep.
func (a *Agent) waitClosed(ctx context.Context, shardID uint64) error {
	v, ok := a.closing.Load(shardID)
	if !ok {
		return nil
	}
	g := v.(*guest)
	if lr, running := a.local.Load(shardID); running { // its stop failed
		return fmt.Errorf("%w: shard %d: replica %d still runs here", ErrShardNotReady, shardID, lr.replicaID)
	}
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-g.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	return fmt.Errorf("%w: shard %d: the state machine of its previous replica here has not closed yet", ErrShardNotReady, shardID)
}

// runReplica starts replica r on nh with state machine g and records it
// as running here. A replica that joined its shard as a learner starts
// as non-voting (see promote); promote: if it is a voting member of the
// registry, it asks for its promotion once it has caught up (its
// promotion may not have come before it stopped).
func (a *Agent) runReplica(nh *dragonboat.NodeHost, r Replica, g replicaGuest, members map[uint64]dragonboat.Target, join, promote bool) error {
	marked := a.isLearner(r.ShardID, r.ID)
	cfg := a.replicaConfig
	cfg.ShardID, cfg.ReplicaID = r.ShardID, r.ID
	cfg.IsNonVoting = r.IsNonVoting || marked
	lr := &localReplica{replicaID: r.ID, nonVoting: r.IsNonVoting, guest: g.guest(), joined: join,
		learner: promote && marked && !r.IsNonVoting}
	lr.guest.onClose = func() {
		a.closing.CompareAndDelete(r.ShardID, lr.guest)
		kick(a.hostKick) // a start that waitClosed held can go on
	}
	a.closing.Store(r.ShardID, lr.guest)
	lr.stopped, lr.stop = context.WithCancel(a.bg)
	if err := g.start(nh, members, join, cfg); err != nil {
		lr.stop()
		return fmt.Errorf("start replica %d: %w", r.ID, err)
	}
	a.local.Update(func(m map[uint64]*localReplica) { m[r.ShardID] = lr })
	go a.catchUp(nh, r.ShardID, lr)
	a.log.Info("zongzi: replica started", "shard", r.ShardID, "replica", r.ID, "join", join, "nonVoting", r.IsNonVoting)
	return nil
}

// catchUp marks lr caught up once a read barrier has passed on it, and
// so it has applied what its shard had committed when it started. Until
// then this host's requests for the shard go to other hosts' replicas
// first (see ShardClient.localTurn): a replica that joined, or restarted
// after a long time down, may still be applying the shard's log or its
// snapshot, and would answer a stale read from a state far behind the
// others', and a write or a linearizable read only once it has applied
// it all.
func (a *Agent) catchUp(nh *dragonboat.NodeHost, shardID uint64, lr *localReplica) {
	for lr.stopped.Err() == nil {
		if a.barrier(shardID).wait(lr.stopped, nh, shardID) == nil {
			if lr.learner {
				a.promote(nh, shardID, lr)
			}
			lr.caughtUp.Store(true)
			kick(a.hostKick) // markActive can act now
			if a.leaderAffinity {
				kick(a.leaderMoved) // and gatherLeaders
			}
			return
		}
		_ = sleep(lr.stopped, retryMaxPause) // no leader yet, say
	}
}

// behind reports whether lr, this host's replica of shardID, may be
// catching up (see catchUp): one that joined its shard, until the first
// read barrier passed on it; one that started from its data, once it
// knows a leader and until then. Before it knows one, a replica that
// started from its data is as good as any: the other hosts are likely out
// of reach too, and a stale read gets the state it had.
func (a *Agent) behind(shardID uint64, lr *localReplica) bool {
	if lr.caughtUp.Load() {
		return false
	}
	_, known := a.localLeader(shardID)
	return lr.joined || known
}

// deleteLostReplica deletes from the registry a replica that ran here (its
// host marked it started or active) but whose data this host no longer has: it was
// wiped or lost. Started again under its ID with an empty log, a voting one
// could vote for a candidate that lacks acknowledged entries and lose them,
// and the leader, which remembers how far it had replicated to it, voting
// or not, would make Dragonboat panic on it. Deleted, it leaves the shard's
// membership and the shard controller places a new replica, with a new ID,
// which joins and catches up.
func (a *Agent) deleteLostReplica(ctx context.Context, r Replica) error {
	a.log.Warn("zongzi: replica lost its data; deleting it so that a new replica replaces it",
		"shard", r.ShardID, "replica", r.ID)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := a.proposeRegistry(ctx, registry.Command{Op: registry.OpReplicaDelete, ReplicaID: r.ID})
	if err != nil {
		return fmt.Errorf("delete replica %d, which lost its data: %w", r.ID, err)
	}
	return nil
}

// initialMembers returns the shard's first members when r is one of them:
// the voting replicas written in the same registry entry as the shard's
// oldest voting replicas. It returns nil when r must join instead. The
// shard controller keeps a shard's members until their replacements are
// active, so a member added later is never among the oldest and joins.
// Hosts deleted from the registry take their members at once, though, so a
// member placed later can become the oldest. Once one of the first members
// was marked started (the shard's Formed), the shard may hold data, and a
// member created later joins it, through the deleted hosts that still run
// the first members if no other has them (askShardHosts), rather than
// start a second, empty group; so does one when any replica of the shard
// is active. Only a member placed after first members that never started
// starts the shard anew.
func (a *Agent) initialMembers(st *State, r Replica) map[uint64]dragonboat.Target {
	if s, ok := st.Shard(r.ShardID); ok && s.Formed != 0 && r.Created != s.Formed {
		return nil
	}
	reps := st.ShardReplicas(r.ShardID)
	first := r.Created
	for _, o := range reps {
		if o.ID != r.ID && o.Status == registry.ReplicaStatusActive {
			return nil
		}
		if !o.IsNonVoting && !o.IsWitness { // non-voting replicas placed before any member join later
			first = min(first, o.Created)
		}
	}
	if r.IsNonVoting || r.Created != first {
		return nil
	}
	members := map[uint64]dragonboat.Target{}
	for _, o := range reps {
		if o.Created != first || o.IsNonVoting {
			continue
		}
		h, ok := st.Host(o.HostID)
		if !ok {
			return nil
		}
		members[o.ID] = h.ID
	}
	return members
}

// requestJoin asks a host running the shard to add r to its membership:
// non-voting when it is a learner (see promote).
func (a *Agent) requestJoin(ctx context.Context, st *State, r Replica, learner bool) error {
	req := &pb.MembershipRequest{ShardId: r.ShardID, ReplicaId: r.ID, HostId: r.HostID, NonVoting: r.IsNonVoting || learner}
	return a.askShardHosts(ctx, st, r.ShardID, func(ctx context.Context, addr string) error {
		return a.pool.Membership(ctx, addr, req)
	})
}

// askShardHosts makes call to the hosts of the shard's active replicas
// other than this host, one after another, until one call succeeds. When
// the registry lists none, it asks the hosts it deleted that still answer
// (apiBook): one deleted while it runs keeps its members until their
// removal leaves a majority up, and may run the shard's only members. It
// returns the last call's error, or ErrShardNotReady when there is no
// such host.
func (a *Agent) askShardHosts(ctx context.Context, st *State, shardID uint64, call func(ctx context.Context, addr string) error) error {
	var last error = fmt.Errorf("%w: shard %d has no active replica on another host", ErrShardNotReady, shardID)
	var addrs []string
	for _, o := range st.ShardReplicas(shardID) {
		if o.HostID == a.hostID || o.Status != registry.ReplicaStatusActive {
			continue
		}
		if h, ok := st.Host(o.HostID); ok {
			addrs = append(addrs, h.ApiAddress)
		}
	}
	if len(addrs) == 0 {
		addrs = a.apiAddrs.unlisted(st)
	}
	for _, addr := range addrs {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := call(rctx, addr)
		cancel()
		if err == nil {
			return nil
		}
		last = err
	}
	return last
}

// stopReplica takes a replica the registry no longer assigns to this host
// out of the shard's membership and stops it; removeDeletedData then
// removes its data. A voting replica whose removal would leave no
// majority of the other members up keeps running until it would
// (changeMembership). A deleted shard's replicas are stopped without
// membership changes. A replica that Dragonboat already unloaded (it does
// so once the replica is out of the membership), or that the shard's
// other hosts no longer count as a voter while it cannot learn so itself
// (goneElsewhere), is only cleaned up.
func (a *Agent) stopReplica(ctx context.Context, st *State, shardID uint64, lr *localReplica) error {
	nh := a.NodeHost()
	if _, ok := st.Shard(shardID); ok {
		mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := a.changeMembership(mctx, &pb.MembershipRequest{ShardId: shardID, ReplicaId: lr.replicaID, Remove: true})
		cancel()
		// goneElsewhere gets its own time: a replica that cannot read its
		// membership used all of mctx.
		if err != nil && !errors.Is(err, dragonboat.ErrShardNotFound) && !a.goneElsewhere(ctx, st, shardID, lr.replicaID, err) {
			return err
		}
	}
	if err := nh.StopReplica(shardID, lr.replicaID); err != nil && !errors.Is(err, dragonboat.ErrShardNotFound) {
		return fmt.Errorf("stop replica %d: %w", lr.replicaID, err)
	}
	a.local.Update(func(m map[uint64]*localReplica) { delete(m, shardID) })
	lr.stop() // its watches end
	a.leaders.Update(func(m map[uint64]leaderInfo) { delete(m, shardID) })
	a.log.Info("zongzi: replica stopped", "shard", shardID, "replica", lr.replicaID)
	return nil
}

// pruneMembers removes from the Raft membership of every shard this host
// leads the replicas the registry no longer has: those of deleted hosts,
// or whose host could not remove them itself. Replicas enter the registry
// before the membership, and replica IDs only grow, so a member whose ID the
// local registry has allocated but no longer lists is gone; a higher ID
// means the local registry is behind. As any removal, a voting member's
// waits while it would leave no majority of the others up
// (changeMembership).
func (a *Agent) pruneMembers(ctx context.Context, running map[uint64]*localReplica) {
	shards := map[uint64]uint64{0: a.primeID.Load()}
	for shardID, lr := range running {
		shards[shardID] = lr.replicaID
	}
	nh := a.NodeHost()
	if nh == nil { // stopped
		return
	}
	for shardID, self := range shards {
		if li, ok := a.localLeader(shardID); !ok || li.leader != self {
			continue
		}
		a.pruneShard(ctx, nh, shardID, self)
	}
}

// pruneShard removes from the shard's Raft membership the replicas the
// registry no longer has (see pruneMembers). self is this host's replica
// of the shard, never removed.
func (a *Agent) pruneShard(ctx context.Context, nh *dragonboat.NodeHost, shardID, self uint64) {
	mctx, cancel := context.WithTimeout(ctx, time.Second)
	m, err := nh.SyncGetShardMembership(mctx, shardID)
	cancel()
	if err != nil {
		return
	}
	st := a.store.State()
	for _, members := range []map[uint64]string{m.Nodes, m.NonVotings, m.Witnesses} {
		for id := range members {
			if _, ok := st.Replica(id); ok || id == self || id > st.LastReplicaID() {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := a.changeMembership(dctx, &pb.MembershipRequest{ShardId: shardID, ReplicaId: id, Remove: true})
			cancel()
			a.logErr(err, fmt.Sprintf("remove replica %d missing from the registry", id), shardID)
		}
	}
}
