package zongzi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/lni/vfs"

	"github.com/zongzi-kv/zongzi/internal/bus"
	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"github.com/zongzi-kv/zongzi/internal/memtrim"
	"github.com/zongzi-kv/zongzi/internal/raftnet"
	"github.com/zongzi-kv/zongzi/internal/registry"
)

// primeFile records this host's prime replica, so a restart finds it.
const primeFile = "zongzi-prime.json"

type primeRecord struct {
	// ClusterName: the cluster the replica belongs to (NewAgent's name).
	// Empty in records written before it was kept.
	ClusterName string `json:"clusterName,omitempty"`
	ReplicaID   uint64 `json:"replicaID"`
	NonVoting   bool   `json:"nonVoting"`
	// Ready: the agent was ready with this replica once, so the cluster
	// was formed; a peer that stopped while forming it has no Ready.
	Ready bool `json:"ready,omitempty"`
	// Init: the registry's first entry, as this peer formed the prime
	// shard, until it is ready. Every peer may have stopped before one
	// was committed: restarted from their replicas, they propose it again.
	Init *registry.Command `json:"init,omitempty"`
}

// retryInterval is the pause between bootstrap attempts.
const retryInterval = 200 * time.Millisecond

// errNoNodeHost is Start's error when Dragonboat returns no host and no error.
var errNoNodeHost = errors.New("dragonboat returned no host and no error (it recovered from a panic; a custom Expert.FS is one cause)")

// Start starts the host and brings it into the cluster: it forms the prime
// shard with its peers when none is initialised, joins an existing cluster
// (as non-voting when it is not a peer), or rejoins from its data on disk.
// It returns once the agent is ready, or ctx is done, or Stop is called;
// on error the agent is stopped.
func (a *Agent) Start(ctx context.Context) (err error) {
	a.life.Lock()
	if a.stopped || !a.status.CompareAndSwap(int32(AgentStatusPending), int32(AgentStatusInitializing)) {
		a.life.Unlock()
		return fmt.Errorf("%w: agent already started or stopped", ErrInvalidConfig)
	}
	done := make(chan struct{})
	a.starting = done
	a.life.Unlock()
	defer close(done) // last: Stop waits for it, then finds the agent torn down
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(a.bg, cancel)() // Stop ends Start's waits
	routeDragonboatLogs(a.log)
	defer func() {
		if err != nil {
			a.teardown()
		}
	}()
	dialOpts, serveOpts := a.busOptions()
	a.pool = bus.NewPool(busCodes, dialOpts...)
	a.server = bus.NewServer(busHandler{a}, busCodes, serveOpts...)
	if _, err := a.server.Listen(a.apiBind); err != nil {
		return fmt.Errorf("%w: %w", ErrBootstrap, err)
	}
	if err := a.claimDirs(); err != nil {
		return fmt.Errorf("%w: %w", ErrBootstrap, err)
	}
	nhc, err := a.nodeHostConfig(ctx)
	if err != nil {
		return err
	}
	fresh := freshHostID(nhc)
	nh, err := dragonboat.NewNodeHost(nhc)
	if err == nil && nh == nil {
		// NewNodeHost recovers from a panic whose value is not an error and
		// then returns neither a host nor an error, e.g. when its log storage
		// refuses a custom Expert.FS.
		err = errNoNodeHost
	}
	if err != nil {
		return fmt.Errorf("%w: start host: %w", ErrBootstrap, err)
	}
	rec, found, recErr := a.readPrimeRecord()
	restart := recErr == nil && found && nh.HasNodeInfo(0, rec.ReplicaID)
	// Info names the host once nh is stored, and says then whether it was
	// ready before: a peer that asks in between must not take it for one
	// of a cluster never formed (formOrJoin).
	a.mu.Lock()
	a.hostID = nh.ID()
	a.wasReady = restart && rec.Ready
	a.mu.Unlock()
	a.nh.Store(nh)
	a.log = a.log.With("host", nh.ID())

	var peersChecked <-chan struct{} // restart: closed once the peers were checked (learnPeers)
	switch {
	case recErr != nil:
		return recErr
	case found && rec.ClusterName != "" && rec.ClusterName != a.clusterName:
		// Its replicas would rejoin their own cluster while this host
		// told every other that it belongs to another.
		return fmt.Errorf("%w: %w: the raft dir %s holds a host of cluster %q, not %q",
			ErrBootstrap, ErrInvalidConfig, a.hostConfig.NodeHostDir, rec.ClusterName, a.clusterName)
	case restart:
		a.setStatus(AgentStatusRejoining)
		var refuse context.CancelCauseFunc
		ctx, refuse = context.WithCancelCause(ctx)
		defer refuse(nil)
		stopLearning, checked := a.learnPeers(ctx, refuse)
		defer stopLearning()
		peersChecked = checked
		err = a.startPrime(nil, false, rec)
		if err == nil && !rec.Ready && rec.Init != nil {
			err = a.initRegistry(ctx, *rec.Init)
		}
	case slices.Contains(a.peers, a.apiAddr):
		a.setStatus(AgentStatusInitializing)
		err = a.formOrJoin(ctx, fresh)
	default:
		a.setStatus(AgentStatusJoining)
		err = a.join(ctx, true, fresh)
	}
	if err != nil {
		return err
	}
	if err := a.awaitPrime(ctx, peersChecked); err != nil {
		return err
	}
	if err := a.recordReady(); err != nil {
		return err
	}
	if a.beforeReady != nil {
		a.beforeReady()
	}
	// A Stop that came after Start's last wait tears the agent down as soon
	// as Start returns: Start must not report success then.
	a.life.Lock()
	defer a.life.Unlock()
	if a.stopped {
		return fmt.Errorf("%w: agent stopped while starting", ErrBootstrap)
	}
	a.startControllers(a.bg)
	a.setStatus(AgentStatusReady)
	return nil
}

// freshHostID reports whether Dragonboat will make a new host ID for nhc:
// none is pinned, and the host dir has none recorded. No replica ever ran
// under such an ID before this process.
func freshHostID(nhc config.NodeHostConfig) bool {
	if nhc.NodeHostID != "" {
		return false
	}
	fs := nhc.Expert.FS
	if fs == nil {
		fs = vfs.Default
	}
	_, err := fs.Stat(fs.PathJoin(nhc.NodeHostDir, nodeHostIDFile))
	return errors.Is(err, os.ErrNotExist)
}

// nodeHostIDFile is where Dragonboat records the host's ID in its host dir.
const nodeHostIDFile = "NODEHOST.ID"

// nodeHostConfig builds Dragonboat's host configuration from the options.
func (a *Agent) nodeHostConfig(ctx context.Context) (config.NodeHostConfig, error) {
	nhc := a.hostConfig
	nhc.RaftAddress = a.raftAddr
	if a.raftBind != a.raftAddr {
		nhc.ListenAddress = a.raftBind
	}
	nhc.RaftEventListener = raftEvents{a}
	if nhc.Expert.LogDB.IsEmpty() {
		nhc.Expert.LogDB = logDBConfig(a.memoryLimit)
		memtrim.Fix()
	}
	// Replicas are addressed by host ID. Without gossip, the agent's
	// resolver finds hosts: in the registry, or as raftnet heard from them.
	var learn func(hostID, addr string)
	if a.gossipAddr == "" && nhc.Expert.NodeRegistryFactory == nil && !nhc.DefaultNodeRegistryEnabled {
		nhc.Expert.NodeRegistryFactory = a.resolver
		learn = a.resolver.learn
	}
	// Raft messages go through raftnet, which writes a batch with one
	// system call instead of three, unless the host config brings its own
	// transport or asks for Dragonboat's TLS. With WithTLS, raftnet does
	// TLS (NewAgent refused a host config that brings either).
	//lint:ignore SA1019 a config may still set the deprecated field; Dragonboat refuses both set
	if nhc.Expert.TransportFactory == nil && nhc.RaftRPCFactory == nil && !nhc.MutualTLS {
		// Hosts keeps snapshots for replicas that never started here from
		// Dragonboat's chunk handler, which panics on them.
		hosts := func(shardID, replicaID uint64) bool {
			nh := a.nh.Load()
			return nh != nil && nh.HasNodeInfo(shardID, replicaID)
		}
		nhc.Expert.TransportFactory = raftnet.Factory{Learn: learn, TLS: a.tls, Hosts: hosts, Log: a.log}
	}
	if a.gossipAddr != "" {
		seeds, err := a.gossipSeeds(ctx)
		if err != nil {
			return nhc, err
		}
		nhc.DefaultNodeRegistryEnabled = true
		nhc.Gossip = config.GossipConfig{BindAddress: a.gossipBind, AdvertiseAddress: a.gossipAddr, Seed: seeds}
	}
	return nhc, nil
}

// logDBConfig sizes Dragonboat's log storage to stay within limit bytes.
func logDBConfig(limit uint64) config.LogDBConfig {
	cfg := config.GetTinyMemLogDBConfig()
	cfg.Shards = 1
	cfg.KVMaxWriteBufferNumber = 4
	cfg.KVWriteBufferSize = max(limit/cfg.KVMaxWriteBufferNumber, 1<<20)
	cfg.KVKeepLogFileNum = 4
	return cfg
}

// gossipSeeds asks the peers for their gossip addresses until at least one
// other peer answers.
func (a *Agent) gossipSeeds(ctx context.Context) ([]string, error) {
	for {
		var seeds []string
		for _, p := range a.peers {
			if p == a.apiAddr {
				continue
			}
			if info, err := a.info(ctx, p); err == nil && info.GossipAddress != "" {
				seeds = append(seeds, info.GossipAddress)
			}
		}
		if len(seeds) > 0 {
			return seeds, nil
		}
		if len(a.peers) == 1 && a.peers[0] == a.apiAddr {
			return nil, fmt.Errorf("%w: gossip needs another peer to seed it", ErrInvalidConfig)
		}
		if err := sleep(ctx, retryInterval); err != nil {
			return nil, fmt.Errorf("%w: waiting for a peer's gossip address: %w", ErrBootstrap, err)
		}
	}
}

// info asks the host at addr to describe itself, answering locally for self.
func (a *Agent) info(ctx context.Context, addr string) (*pb.InfoResponse, error) {
	if addr == a.apiAddr {
		return busHandler{a}.Info(ctx, 0)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return a.pool.Info(ctx, addr)
}

// formOrJoin forms the prime shard with the peers when every peer answers
// and none is initialised; it joins when one is ready. While a peer that
// was ready once rejoins from its data, and none is ready yet, it waits:
// this peer lost its data (or never had any) and forming again would start
// the prime shard's old replica IDs with empty logs.
//
// A peer that comes up after the others formed without it, or that did
// not hear from them all before they were ready (its retries to peers that
// were not up yet back off), finds them ready, and joins. When its host ID
// is fresh (freshHostID), its replica of the forming never ran, and the
// join gives it that replica: it takes its place among replicas 1..N, as
// if it had formed, instead of replacing it as a peer that lost its data.
//
// A host of another cluster (a peer address given by mistake) counts as a
// peer that does not answer, and is not joined. Nor does it form while a
// peer's list differs from its own: replica IDs follow the sorted list, so
// peers with different lists would give one ID to two hosts, whose raft
// messages then crash Dragonboat, or form prime shards of different
// members. It waits instead, for the peer whose list is wrong to be
// restarted with the right one, and says why when it gives up.
func (a *Agent) formOrJoin(ctx context.Context, fresh bool) error {
	var warned string // the last mismatch logged, so that a round does not log it again
	for {
		infos := make([]*pb.InfoResponse, len(a.peers))
		all := true
		var last error // this round's last failure to answer, for the error on giving up
		for i, p := range a.peers {
			info, err := a.info(ctx, p)
			if err == nil && info.ClusterName != a.clusterName {
				err = fmt.Errorf("peer %s is a host of cluster %q, not %q", p, info.ClusterName, a.clusterName)
			}
			if err != nil && ctx.Err() == nil {
				last = err
			}
			if err != nil || info.RaftAddress == "" || info.HostId == "" {
				all = false
				continue
			}
			a.resolver.learn(info.HostId, info.RaftAddress)
			if info.Ready {
				return a.join(ctx, false, fresh)
			}
			if info.Initialised {
				all = false
			}
			if !slices.Equal(info.Peers, a.peers) {
				last = fmt.Errorf("the peer lists differ: peer %s has %v, this host %v", p, info.Peers, a.peers)
				all = false
			}
			infos[i] = info
		}
		if all {
			return a.form(ctx, infos)
		}
		if msg := fmt.Sprint(last); last != nil && msg != warned {
			warned = msg
			a.log.Warn("zongzi: not forming the cluster", "err", last)
		}
		if err := sleep(ctx, a.formRetry); err != nil {
			return fmt.Errorf("%w: waiting for peers %v: %w%s", ErrBootstrap, a.peers, err, lastError(last))
		}
	}
}

// form starts this host's replica of a new prime shard whose members are the
// peers, replica IDs 1..N in sorted peer order, and proposes the registry's
// first entry.
func (a *Agent) form(ctx context.Context, infos []*pb.InfoResponse) error {
	members := map[uint64]dragonboat.Target{}
	init := registry.Command{Op: registry.OpInit}
	var self uint64
	for i, info := range infos {
		id := uint64(i + 1)
		members[id] = info.HostId
		if a.peers[i] == a.apiAddr {
			self = id
		}
		init.Hosts = append(init.Hosts, Host{ID: info.HostId, Status: registry.HostStatusNew, ApiAddress: a.peers[i], RaftAddress: info.RaftAddress})
		init.Replicas = append(init.Replicas, Replica{ID: id, HostID: info.HostId, ShardID: 0, Status: registry.ReplicaStatusActive})
	}
	if err := a.startPrime(members, false, primeRecord{ReplicaID: self, Init: &init}); err != nil {
		return err
	}
	return a.initRegistry(ctx, init)
}

// initRegistry proposes the registry's first entry until the registry has
// one. Every peer proposes the same first entry; the registry accepts only
// the first and rejects the rest.
func (a *Agent) initRegistry(ctx context.Context, init registry.Command) error {
	for {
		if a.store.State().Index() > 0 {
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := a.proposeRegistry(pctx, init)
		cancel()
		if err == nil || errors.Is(err, ErrRejected) {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: initialise registry: %w", ErrBootstrap, context.Cause(ctx))
		}
		a.log.Debug("zongzi: registry init", "err", err)
	}
}

// join asks the peers, one after the other, to add this host to the prime
// shard, then starts its replica as a joiner. fresh: the host's ID is new
// (freshHostID), and no replica ever ran under it (JoinRequest.fresh).
func (a *Agent) join(ctx context.Context, nonVoting, fresh bool) error {
	req := &pb.JoinRequest{
		HostId: a.hostID, RaftAddress: a.raftAddr, ApiAddress: a.apiAddr,
		Tags: a.hostTags, ShardTypes: a.shardTypes(), NonVoting: nonVoting, ClusterName: a.clusterName,
		Fresh: fresh,
	}
	var last error                 // the last peer's answer, for the error on giving up
	refused := map[string]string{} // by peer, the last refusal logged
	for {
		for _, p := range a.peers {
			if p == a.apiAddr {
				continue
			}
			if info, err := a.info(ctx, p); err == nil {
				// The peer may lead the prime shard: this host must
				// reach it before it has the registry.
				a.resolver.learn(info.HostId, info.RaftAddress)
			}
			jctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			id, err := a.pool.Join(jctx, p, req)
			cancel()
			if err == nil {
				return a.startPrime(nil, true, primeRecord{ReplicaID: id, NonVoting: nonVoting})
			}
			if ctx.Err() == nil {
				last = err
			}
			if errors.Is(err, ErrInvalidConfig) && err.Error() != refused[p] {
				// Not healed by waiting: say why now, once per peer and reason.
				refused[p] = err.Error()
				a.log.Warn("zongzi: join refused", "peer", p, "err", err)
			} else {
				a.log.Debug("zongzi: join", "peer", p, "err", err)
			}
		}
		if err := sleep(ctx, retryInterval); err != nil {
			return fmt.Errorf("%w: joining through peers %v: %w%s", ErrBootstrap, a.peers, err, lastError(last))
		}
	}
}

// learnPeers asks the peers, and the hosts of the prime shard's voters
// that the registry lists, where they listen for raft messages, again and
// again until the returned func is called or ctx is done. A host that
// rejoins from its data finds the others' raft addresses in its registry,
// but every host may have come back on another one (new machines, new
// pod IPs): none could reach another, and none would hear where another
// listens now. Their API addresses, the peer list, do not change.
//
// A host that answers with a replica of the prime shard that this host's
// registry gives another host is of another cluster: the same cluster
// never gives a replica ID twice. This host's data is then another
// cluster's (a raft dir copied or reused by mistake, same cluster name):
// its prime replica would wait for its old cluster's hosts for good, or,
// the only member of its prime shard, lead a cluster of its own.
// learnPeers calls refuse with the reason, and Start fails. Each answer is
// checked once the registry is replayed from this host's data. checked,
// for awaitPrime, is closed at the first answer that the registry
// confirms (the host has the replica it says), or after a round that
// found no such host: a peer that does not answer delays it only when no
// other one confirms.
func (a *Agent) learnPeers(ctx context.Context, refuse context.CancelCauseFunc) (stop func(), checked <-chan struct{}) {
	ctx, cancel := context.WithCancel(ctx)
	done, checkedc := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var checkedOnce sync.Once
		for {
			addrs := map[string]bool{}
			for _, p := range a.peers {
				addrs[p] = true
			}
			st := a.store.State()
			for _, r := range st.ShardReplicas(0) {
				if h, ok := st.Host(r.HostID); ok && !r.IsNonVoting && h.ApiAddress != "" {
					addrs[h.ApiAddress] = true
				}
			}
			delete(addrs, a.apiAddr)
			var wg sync.WaitGroup
			for addr := range addrs {
				wg.Go(func() {
					info, err := a.info(ctx, addr)
					if err != nil || info.HostId == "" {
						return
					}
					a.resolver.learn(info.HostId, info.RaftAddress)
					if info.ClusterName != a.clusterName || info.PrimeReplicaId == 0 {
						return
					}
					// Wait for the registry's first entry: this host's prime
					// replica replays its log from its data.
					st, err := a.awaitRegistry(ctx, func(st *State) bool { return st.Index() > 0 })
					if err != nil {
						return
					}
					r, ok := st.Replica(info.PrimeReplicaId)
					switch {
					case !ok || r.ShardID != 0: // a replica added since, or unknown: says nothing
					case r.HostID == info.HostId:
						checkedOnce.Do(func() { close(checkedc) })
					default:
						refuse(fmt.Errorf("%w: host %s at %s has replica %d of the prime shard, which this host's registry gives host %s: "+
							"the raft dir %s holds another cluster's data; wipe it to join this cluster",
							ErrInvalidConfig, info.HostId, addr, r.ID, r.HostID, a.hostConfig.NodeHostDir))
					}
				})
			}
			wg.Wait()
			if ctx.Err() != nil {
				return
			}
			if a.store.State().Index() > 0 { // every answer of the round was checked
				checkedOnce.Do(func() { close(checkedc) })
			}
			if sleep(ctx, retryInterval) != nil {
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}, checkedc
}

// awaitRegistry waits until the registry is as ready says, and returns
// it then; or, once ctx is done, as it is, with ctx's error.
func (a *Agent) awaitRegistry(ctx context.Context, ready func(*State) bool) (*State, error) {
	for {
		changed := a.store.Changed()
		if st := a.store.State(); ready(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return a.store.State(), ctx.Err()
		case <-changed:
		}
	}
}

// lastError describes the last failed attempt of a bootstrap step that
// gave up, "" if none failed: a peer's TLS refusing this host's
// certificate, say, which the step's own error (its context's) would hide.
func lastError(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprintf(" (last attempt: %v)", err)
}

// startPrime starts this host's replica of the prime shard and records it on disk.
func (a *Agent) startPrime(members map[uint64]dragonboat.Target, join bool, rec primeRecord) error {
	election, heartbeat := raftTicks(a.hostConfig.RTTMillisecond)
	cfg := config.Config{
		ShardID: 0, ReplicaID: rec.ReplicaID, IsNonVoting: rec.NonVoting,
		ElectionRTT: election, HeartbeatRTT: heartbeat, CheckQuorum: true, PreVote: true,
		SnapshotEntries: 1000, CompactionOverhead: 500,
	}
	nh := a.NodeHost()
	err := nh.StartReplica(members, join, func(uint64, uint64) sm.IStateMachine {
		return &primeFSM{store: a.store, log: a.log}
	}, cfg)
	if err != nil {
		return fmt.Errorf("%w: start prime replica %d: %w", ErrBootstrap, rec.ReplicaID, err)
	}
	a.primeID.Store(rec.ReplicaID)
	return a.writePrimeRecord(rec)
}

// awaitPrime waits until the prime shard has a leader, the local registry
// lists this host, and a read barrier has passed on the local prime
// replica: the registry has applied all that was committed when it
// started. Before then it may still be replaying, from a state where the
// replicas of a shard were all new: a host that lost its data but kept its
// ID is listed from the first entries, and its host controller, seeing its
// lost replica of such a shard as new, would start it as a first member
// with an empty log instead of deleting it (deleteLostReplica); its vote
// could then elect a leader without acknowledged writes.
//
// A host that rejoins from its data and that the registry, once
// initialised, does not list was deleted (HostDelete) while its prime
// replica remained a voter, as its removal was held (changeMembership):
// past the barrier, it is ready too. Its host controller does not register
// it again, and starts its deleted members that are still voters again
// from their data (removeDeletedData); waiting for a listing that never
// comes, it would leave their shards, and the prime shard as soon as Start
// gave up, a vote short.
//
// Such a host's prime replica may have left the prime shard already while
// a guest member stayed (a non-voting prime replica leaves at once; in a
// larger prime shard a voter's removal may not wait): replaying its log,
// it applies its own removal and Dragonboat unloads it. No leader ever
// comes then, nor a barrier; the registry it replayed, up to its removal,
// has its deletion, and it is ready too, as a host deleted while running
// goes on once its prime replica left: its held members run until they
// may leave. A prime replica that left before it applied its own removal
// replays none: no leader comes either. While there is none, and once its
// replayed registry stayed the same for a second, the host asks the prime
// shard's other hosts once a second whether its prime replica is a member
// (leftElsewhere). If not, it is ready when its registry has
// its deletion; when it does not (the host was deleted while down), Start
// fails and says to wipe the host, as its registry can never catch up.
//
// A host that rejoins waits too until peersChecked is closed: its peers
// were asked whether its data is another cluster's (learnPeers). A nil
// peersChecked waits for nothing.
func (a *Agent) awaitPrime(ctx context.Context, peersChecked <-chan struct{}) error {
	nh := a.NodeHost()
	rejoining := a.Status() == AgentStatusRejoining
	var (
		asked      time.Time
		askedIndex uint64
	)
	for {
		checked := true
		if peersChecked != nil {
			select {
			case <-peersChecked:
			default:
				checked = false
			}
		}
		_, _, ok, err := nh.GetLeaderID(0)
		st := a.store.State()
		_, found := st.Host(a.hostID)
		deleted := !found && rejoining && st.Index() > 0
		removed := deleted && errors.Is(err, dragonboat.ErrShardNotFound)
		// Asked with a leader known too: a removed replica may have heard
		// from the leader (what it had queued for it) and learn no more.
		if rejoining && !removed && st.Index() > 0 && time.Since(asked) >= time.Second {
			// The registry is replayed from the log meanwhile: what it says
			// of this host counts once it stayed the same for a second.
			settled := st.Index() == askedIndex
			asked, askedIndex = time.Now(), st.Index()
			if id := a.primeID.Load(); settled && a.leftElsewhere(ctx, st, 0, id) {
				if !deleted {
					return fmt.Errorf("%w: prime replica %d left the prime shard while this host was down, which its "+
						"registry does not know: the host was deleted from the cluster; wipe the raft dir %s to join it again",
						ErrBootstrap, id, a.hostConfig.NodeHostDir)
				}
				removed = true
			}
		}
		if checked && (removed || ok && (found || deleted) && a.primeBarrier(ctx, nh) == nil) {
			if removed {
				a.log.Warn("zongzi: this host was deleted from the registry and its prime replica left the prime shard; " +
					"it runs its deleted members that are still voters until they may leave, and must be wiped to join again")
			}
			a.mu.Lock()
			a.primeReady = true
			a.mu.Unlock()
			return nil
		}
		if sleep(ctx, 20*time.Millisecond) != nil {
			return fmt.Errorf("%w: waiting for the prime shard: %w", ErrBootstrap, context.Cause(ctx))
		}
	}
}

// primeBarrier waits, for up to a second, for a read barrier on the prime
// replica. awaitPrime tries again: its replica may have been removed from
// the prime shard while it knew a leader, whose ReadIndex then never
// completes, for it gets no entry any more (see leftElsewhere).
func (a *Agent) primeBarrier(ctx context.Context, nh *dragonboat.NodeHost) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return a.barrier(0).wait(ctx, nh, 0)
}

// leftElsewhere reports whether a linearizable read of the shard's
// membership by another host lists replicaID in none of its roles. A
// replica removed while its host was down, or before it applied its own
// removal, never learns it: no member sends to it any more. Deleted from
// the registry, this host would wait for a leader of its prime replica for
// good.
func (a *Agent) leftElsewhere(ctx context.Context, st *State, shardID, replicaID uint64) bool {
	left := false
	err := a.askShardHosts(ctx, st, shardID, func(ctx context.Context, addr string) error {
		m, err := a.pool.Members(ctx, addr, shardID)
		switch {
		case err != nil:
			return err
		case m.Stale:
			return fmt.Errorf("%w: shard %d has no leader", ErrShardNotReady, shardID)
		}
		left = !slices.Contains(m.Voting, replicaID) && !slices.Contains(m.NonVoting, replicaID) &&
			!slices.Contains(m.Witnesses, replicaID)
		return nil
	})
	return err == nil && left
}

func (a *Agent) shardTypes() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	types := make([]string, 0, len(a.types))
	for uri := range a.types {
		types = append(types, uri)
	}
	slices.Sort(types)
	return types
}

// recordReady notes in the prime record that the agent was ready with its
// prime replica, so that its peers do not form the prime shard again while
// it rejoins, and names its cluster in a record written before it did.
func (a *Agent) recordReady() error {
	rec, found, err := a.readPrimeRecord()
	if err != nil || !found || rec.Ready && rec.ClusterName != "" {
		return err
	}
	rec.Ready, rec.Init = true, nil
	return a.writePrimeRecord(rec)
}

func (a *Agent) readPrimeRecord() (primeRecord, bool, error) {
	var rec primeRecord
	b, err := os.ReadFile(filepath.Join(a.hostConfig.NodeHostDir, primeFile))
	if errors.Is(err, os.ErrNotExist) {
		return rec, false, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		return rec, false, fmt.Errorf("%w: read %s: %w", ErrBootstrap, primeFile, err)
	}
	return rec, true, nil
}

// writePrimeRecord writes rec, naming this agent's cluster in it.
func (a *Agent) writePrimeRecord(rec primeRecord) error {
	rec.ClusterName = a.clusterName
	b, _ := json.Marshal(rec)
	if err := writeFileDurably(filepath.Join(a.hostConfig.NodeHostDir, primeFile), b); err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrBootstrap, primeFile, err)
	}
	return nil
}

// writeFileDurably replaces the file at path with b so that a crash leaves
// the old file or the new one: it writes and syncs a temporary file,
// renames it over path, and syncs the directory.
func writeFileDurably(path string, b []byte) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
