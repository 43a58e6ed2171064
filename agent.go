package zongzi

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"

	"github.com/zongzi-kv/zongzi/internal/bus"
	"github.com/zongzi-kv/zongzi/internal/registry"
)

// Agent runs one Dragonboat host as a member of a Zongzi cluster: it forms
// or joins the prime shard, keeps its local replicas matching the registry
// and routes shard requests. Create it with NewAgent, then Start it.
type Agent struct {
	clusterName string
	peers       []string

	apiAddr, apiBind       string
	raftAddr, raftBind     string
	gossipAddr, gossipBind string
	hostTags               map[string]string
	hostConfig             config.NodeHostConfig
	raftDir, walDir        string // WithDirRaft's and WithDirWAL's, over hostConfig's
	replicaConfig          config.Config
	memoryLimit            uint64
	leaderAffinity         bool
	controller             ShardController
	tls                    *tls.Config // WithTLS's clone; nil: plain connections
	log                    *slog.Logger
	holdActive             func(Replica) bool        // tests: replicas kept from being marked active
	holdLeader             func(shardID uint64) bool // tests: shards whose new leaders are not recorded
	beforeReady            func()                    // tests: runs as Start is about to succeed
	holdPromotion          func(shardID uint64) bool // tests: shards whose learners wait to be promoted
	beforeRemoval          func()                    // tests: runs before a voting member's removal is proposed

	status   atomic.Int32
	store    *registry.Store
	registry registrySession // proposes registry commands exactly once
	resolver *hostResolver   // Dragonboat's node registry without gossip

	nh       atomic.Pointer[dragonboat.NodeHost]
	primeID  atomic.Uint64                 // this host's prime replica ID
	local    cowMap[uint64, *localReplica] // running replicas by shard ID
	leaders  cowMap[uint64, leaderInfo]    // leaders seen by the local raft event listener
	routes   cowMap[uint64, *shardRoute]   // where to forward requests for shards without a local replica
	barriers cowMap[uint64, *readBarrier]  // coalesced ReadIndex rounds of local replicas

	mu         sync.RWMutex // guards the fields below
	hostID     string
	primeReady bool
	wasReady   bool // it restarts its prime replica, recorded as ready before
	types      map[string]stateMachineType

	server *bus.Server
	pool   *bus.Pool

	// bg lives from NewAgent to Stop: the controllers run under it, and
	// Start's work ends with it.
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// hostCalls is read-locked by each call into the Dragonboat host
	// that hostCall makes, and locked by teardown before it closes the
	// host.
	hostCalls sync.RWMutex

	life     sync.Mutex    // guards starting and stopped
	starting chan struct{} // closed when Start has returned; nil until Start
	stopped  bool          // Stop was called
	stopOnce sync.Once     // for teardown
	dirs     []string      // the dirs claimDirs recorded, until teardown

	events chan leaderInfo
	// leaderMoved wakes runLeaderAffinity when a leader changes, or a
	// replica here caught up (catchUp).
	leaderMoved chan struct{}
	// hostKick wakes the host controller when a replica here that the
	// registry does not record as active learns its shard's leader: it
	// can be marked active, and a joiner's shard, whose leader stays,
	// writes no registry entry that would wake it.
	hostKick chan struct{}
	// sweep is how often the host and shard controllers reconcile when
	// nothing changes: hostSweep, longer in tests that must not lean on it.
	sweep time.Duration
	// leaderSweep is how often the leader worker reports again every
	// leader of a replica here (leaderSweep), longer in tests that must
	// not lean on it.
	leaderSweep time.Duration
	// formRetry is how often formOrJoin asks the peers again:
	// retryInterval, longer in tests that show a peer that finds the
	// others ready before it could form with them.
	formRetry time.Duration
	// deletedLogged: registerSelf warned that this host was deleted.
	deletedLogged atomic.Bool
	// apiAddrs: where hosts answer the bus, deleted ones too
	// (upVotersWithout).
	apiAddrs apiBook
	// warned holds the failures logErr last warned of, by what failed and
	// shard, until that succeeds again.
	warned sync.Map // warnedKey → string
	// closing holds, by shard, the state machine of the replica last
	// started here until its Close has returned (see waitClosed).
	closing sync.Map // shardID → *guest
}

// stateMachineType is a registered guest shard type.
type stateMachineType struct {
	memory StateMachineFactory
	disk   StateMachinePersistentFactory
}

// localReplica is a replica running on this host.
type localReplica struct {
	replicaID uint64
	nonVoting bool
	guest     *guest
	// stopped is done once the replica stops here (or the agent does):
	// watches on it end.
	stopped context.Context
	stop    context.CancelFunc
	// joined: the replica started empty, joining its shard's members.
	joined bool
	// learner: the replica joined its shard as a learner, to be promoted
	// to a voting member once it has caught up (promote).
	learner bool
	// caughtUp is set once a read barrier passed on the replica (catchUp),
	// and a learner was promoted: it has applied what its shard had
	// committed when it started.
	caughtUp atomic.Bool
}

// leaderInfo is a shard's leader as reported by a raft event.
type leaderInfo struct {
	shardID, replicaID, leader, term uint64
}

var clusterNamePattern = regexp.MustCompile(`^[0-9a-z]{1,12}$`)

// NewAgent returns an agent of the cluster clusterName (base36, at most 12
// characters) whose voting peers have the given API addresses. The agent
// is one of the peers when its own API address (WithAddrApi, as advertised)
// is in the list, written the same way; otherwise it joins as non-voting.
func NewAgent(clusterName string, peers []string, opts ...AgentOption) (*Agent, error) {
	if !clusterNamePattern.MatchString(clusterName) {
		return nil, fmt.Errorf("%w: cluster name %q must be 1 to 12 base36 characters [0-9a-z]", ErrInvalidConfig, clusterName)
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("%w: no peers", ErrInvalidConfig)
	}
	sorted := slices.Clone(peers)
	slices.Sort(sorted)
	for i, p := range sorted {
		if _, _, err := checkAddrs("peer", []string{p}); err != nil {
			return nil, err
		}
		if i > 0 && sorted[i-1] == p {
			return nil, fmt.Errorf("%w: peer %s listed twice", ErrInvalidConfig, p)
		}
	}
	a := &Agent{
		clusterName: clusterName,
		peers:       sorted,
		apiAddr:     DefaultApiAddress, apiBind: DefaultApiAddress,
		raftAddr: DefaultRaftAddress, raftBind: DefaultRaftAddress,
		hostTags:      map[string]string{},
		replicaConfig: DefaultReplicaConfig(),
		memoryLimit:   DefaultHostMemoryLimit,
		controller:    defaultShardController{},
		log:           slog.Default(),
		store:         registry.New(),
		registry:      newRegistrySession(),
		types:         map[string]stateMachineType{},
		events:        make(chan leaderInfo, 1024),
		leaderMoved:   make(chan struct{}, 1),
		hostKick:      make(chan struct{}, 1),
		sweep:         hostSweep,
		leaderSweep:   leaderSweep,
		formRetry:     retryInterval,
	}
	a.bg, a.cancel = context.WithCancel(context.Background())
	a.resolver = newHostResolver(a.store.State)
	for _, opt := range opts {
		if err := opt(a); err != nil {
			return nil, err
		}
	}
	if err := a.checkAddrsDiffer(); err != nil {
		return nil, err
	}
	if err := a.checkTLSHost(); err != nil {
		return nil, err
	}
	if a.raftDir != "" {
		a.hostConfig.NodeHostDir = a.raftDir
	}
	if a.walDir != "" {
		a.hostConfig.WALDir = a.walDir
	}
	if a.hostConfig.NodeHostDir == "" {
		return nil, fmt.Errorf("%w: no raft dir (WithDirRaft)", ErrInvalidConfig)
	}
	if a.hostConfig.RTTMillisecond == 0 {
		a.hostConfig.RTTMillisecond = defaultRTTMillisecond
	}
	if a.replicaConfig.ElectionRTT == 0 {
		a.replicaConfig.ElectionRTT, a.replicaConfig.HeartbeatRTT = raftTicks(a.hostConfig.RTTMillisecond)
	}
	if len(a.hostTags) == 0 {
		a.hostTags = nil
	}
	return a, nil
}

// checkAddrsDiffer refuses two of the agent's addresses (API, raft and
// gossip) on one port, as advertised or as bound.
func (a *Agent) checkAddrsDiffer() error {
	type addr struct{ what, advertise, bind string }
	addrs := []addr{{"api", a.apiAddr, a.apiBind}, {"raft", a.raftAddr, a.raftBind}}
	if a.gossipAddr != "" {
		addrs = append(addrs, addr{"gossip", a.gossipAddr, a.gossipBind})
	}
	for i, x := range addrs {
		for _, y := range addrs[:i] {
			if x.advertise == y.advertise || x.bind == y.bind {
				return fmt.Errorf("%w: the %s and %s addresses are the same", ErrInvalidConfig, y.what, x.what)
			}
		}
	}
	return nil
}

// DefaultReplicaConfig returns the Dragonboat replica configuration of
// guest shards, for WithReplicaConfig to start from. Its ElectionRTT and
// HeartbeatRTT are zero: NewAgent sets them in time from the host's raft
// clock.
//
// A replica takes a snapshot every 100,000 entries (etcd's default
// snapshot count) and keeps the 5,000 entries before it for followers that
// lag. Every replica of every shard pays for a snapshot with a copy of its
// whole state; every 10,000 entries, that put 8–12% on the p99 of kv1's
// writes.
func DefaultReplicaConfig() config.Config {
	return config.Config{
		CheckQuorum:        true,
		PreVote:            true,
		SnapshotEntries:    100000,
		CompactionOverhead: 5000,
		WaitReady:          false,
	}
}

// StateMachineRegister registers the in-memory state machine of a guest
// shard type (a URI), once. Call it before Start.
func (a *Agent) StateMachineRegister(uri string, f StateMachineFactory) error {
	return a.register(uri, stateMachineType{memory: f}, f == nil)
}

// StateMachineRegisterPersistent registers the on-disk state machine of a
// guest shard type (a URI), once. Call it before Start.
func (a *Agent) StateMachineRegisterPersistent(uri string, f StateMachinePersistentFactory) error {
	return a.register(uri, stateMachineType{disk: f}, f == nil)
}

func (a *Agent) register(uri string, t stateMachineType, isNil bool) error {
	if uri == "" || isNil {
		return fmt.Errorf("%w: state machine type needs a URI and a factory", ErrInvalidConfig)
	}
	a.mu.Lock() // Start reads the types under it once it has left pending
	defer a.mu.Unlock()
	if a.Status() != AgentStatusPending {
		return fmt.Errorf("%w: register state machine %s before Start", ErrInvalidConfig, uri)
	}
	if _, ok := a.types[uri]; ok {
		return fmt.Errorf("%w: state machine type %s registered twice", ErrInvalidConfig, uri)
	}
	a.types[uri] = t
	return nil
}

// Status reports where the agent is in its life.
func (a *Agent) Status() AgentStatus { return AgentStatus(a.status.Load()) }

func (a *Agent) setStatus(s AgentStatus) {
	a.status.Store(int32(s))
	a.log.Info("zongzi: agent status", "status", s.String())
}

// HostID returns this host's ID (Dragonboat's NodeHost ID), empty before Start.
func (a *Agent) HostID() string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.hostID
}

// NodeHost returns the underlying Dragonboat host, nil before Start and
// after Stop.
func (a *Agent) NodeHost() *dragonboat.NodeHost { return a.nh.Load() }

// State returns a snapshot of this host's copy of the registry, which may
// lag the prime shard's leader. It never blocks.
func (a *Agent) State() *State { return a.store.State() }

// StateLinearizable returns a snapshot of the registry read through the
// prime shard with a read barrier. Like a ShardClient's reads, it tries
// again while the prime shard has no leader and ctx's deadline leaves
// time.
func (a *Agent) StateLinearizable(ctx context.Context) (*State, error) {
	nh := a.NodeHost()
	if nh == nil || a.Status() != AgentStatusReady {
		return nil, ErrAgentNotReady
	}
	var v any
	err := a.whileNotReady(ctx, func() (err error) {
		v, err = a.lookup(ctx, nh, 0, nil, false)
		return mapError(err)
	})
	if err != nil {
		return nil, fmt.Errorf("zongzi: read registry: %w", err)
	}
	return v.(*State), nil
}

// Stop stops the agent's controllers, message bus and host. It is prompt and
// leaves no goroutine behind. A Start still running returns, with an error,
// before Stop tears the agent down. Stop may be called more than once, and
// before Start, which then fails.
func (a *Agent) Stop() {
	a.cancel()
	a.life.Lock()
	a.stopped = true
	starting := a.starting
	a.life.Unlock()
	if starting != nil {
		<-starting
	}
	a.teardown()
}

// teardown stops the controllers, the message bus (waiting for its
// handlers) and the host, once.
func (a *Agent) teardown() {
	a.stopOnce.Do(func() {
		a.setStatus(AgentStatusStopping)
		a.cancel()
		if a.server != nil {
			a.server.Stop()
		}
		a.wg.Wait()
		nh := a.nh.Swap(nil)
		a.local.Update(func(m map[uint64]*localReplica) { clear(m) })
		// Calls into nh made before the swap return before nh closes;
		// those after it fail (hostCall).
		a.hostCalls.Lock()
		if nh != nil {
			nh.Close()
		}
		a.hostCalls.Unlock()
		a.releaseDirs() // once Dragonboat let go of them
		if a.pool != nil {
			a.pool.Close()
		}
		a.setStatus(AgentStatusStopped)
	})
}
