package zongzi

import (
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/lni/dragonboat/v4/config"
)

// AgentOption configures an Agent. An option given a bad value makes
// NewAgent return an error wrapping ErrInvalidConfig.
type AgentOption func(*Agent) error

// Default addresses and settings of an agent.
const (
	DefaultApiAddress    = "127.0.0.1:17003"
	DefaultRaftAddress   = "127.0.0.1:17002"
	DefaultGossipAddress = "127.0.0.1:17001"
	// DefaultHostMemoryLimit bounds the memory of Dragonboat's log storage
	// (write buffers); small enough for three hosts on a laptop.
	DefaultHostMemoryLimit = 64 << 20
)

// checkAddrs validates an advertise address and an optional bind address.
func checkAddrs(what string, addrs []string) (advertise, bind string, err error) {
	if len(addrs) == 0 || len(addrs) > 2 {
		return "", "", fmt.Errorf("%w: %s address: want advertise and optional bind address, got %d values", ErrInvalidConfig, what, len(addrs))
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return "", "", fmt.Errorf("%w: %s address %q: %w", ErrInvalidConfig, what, a, err)
		}
	}
	advertise, bind = addrs[0], addrs[0]
	if len(addrs) == 2 {
		bind = addrs[1]
	}
	return advertise, bind, nil
}

// WithAddrApi sets the address of the agent's message bus: advertise
// address, then an optional bind address.
func WithAddrApi(addrs ...string) AgentOption {
	return func(a *Agent) (err error) {
		a.apiAddr, a.apiBind, err = checkAddrs("api", addrs)
		return err
	}
}

// WithAddrRaft sets the Raft address: advertise address, then an optional
// bind address. Replicas are addressed by host ID, not by this address, so a
// host may restart on another one (see WithAddrGossip for how the others
// learn it).
func WithAddrRaft(addrs ...string) AgentOption {
	return func(a *Agent) (err error) {
		a.raftAddr, a.raftBind, err = checkAddrs("raft", addrs)
		return err
	}
}

// WithAddrGossip sets the gossip address: advertise address, then an
// optional bind address. Gossip is off unless this option is given. Either
// way replicas are addressed by host ID and a host may restart on another
// raft address. Without gossip, the agent finds hosts in the registry and
// through raftnet, whose connections say where their sender listens; with
// it, Dragonboat's gossip finds them, and peers exchange gossip addresses
// during bootstrap. Gossip costs CPU on every host all the time, and a
// data directory keeps the mode it was created with.
func WithAddrGossip(addrs ...string) AgentOption {
	return func(a *Agent) (err error) {
		a.gossipAddr, a.gossipBind, err = checkAddrs("gossip", addrs)
		return err
	}
}

// WithDirRaft sets the directory of Dragonboat's host data.
func WithDirRaft(dir string) AgentOption {
	return func(a *Agent) error {
		if dir == "" {
			return fmt.Errorf("%w: empty raft dir", ErrInvalidConfig)
		}
		a.raftDir = dir
		return nil
	}
}

// WithDirWAL sets the directory of the write-ahead log (defaults to the raft dir).
func WithDirWAL(dir string) AgentOption {
	return func(a *Agent) error {
		if dir == "" {
			return fmt.Errorf("%w: empty WAL dir", ErrInvalidConfig)
		}
		a.walDir = dir
		return nil
	}
}

// WithHostTags sets this host's tags, each "key=value" or "key". A key
// given twice, here or in another WithHostTags, must have the same value.
func WithHostTags(tags ...string) AgentOption {
	return func(a *Agent) error {
		for _, t := range tags {
			k, v, _ := strings.Cut(t, "=")
			if k == "" {
				return fmt.Errorf("%w: host tag %q has no key", ErrInvalidConfig, t)
			}
			if old, ok := a.hostTags[k]; ok && old != v {
				return fmt.Errorf("%w: host tag %q given the values %q and %q", ErrInvalidConfig, k, old, v)
			}
			a.hostTags[k] = v
		}
		return nil
	}
}

// WithHostConfig replaces Dragonboat's host configuration. Directories set
// by WithDirRaft and WithDirWAL still apply. Addresses are set by the
// agent's options only, and the agent listens for raft events itself: a
// config that sets RaftAddress, ListenAddress, Gossip or RaftEventListener
// is refused.
//
// A zero RTTMillisecond, the raft clock's tick, means 20 ms. The prime
// shard, and guest shards unless WithReplicaConfig sets their ticks, count
// their election timeout (200 ms, randomized up to 400) and heartbeat
// interval (40 ms) in ticks of that clock.
//
// Unless the config names its own transport (Expert.TransportFactory) or
// asks for Dragonboat's mutual TLS (MutualTLS), raft messages between
// hosts go through the agent's own TCP module, which sends a message batch
// with one system call instead of Dragonboat's three. Every host of a
// cluster must use the same one. WithTLS needs the agent's module and
// covers the message bus too: NewAgent refuses it beside either.
//
// NotifyCommit is the config's own, off by default: with it on,
// ShardClient.Commit returns as soon as its command is committed rather
// than once the replica that took it has applied it, and every write on
// the host passes through one more stage of Dragonboat's pipeline (a
// commit worker between its raft step and its apply).
func WithHostConfig(cfg config.NodeHostConfig) AgentOption {
	return func(a *Agent) error {
		g := cfg.Gossip
		switch {
		case cfg.RaftAddress != "" || cfg.ListenAddress != "":
			return fmt.Errorf("%w: host config sets a raft address: use WithAddrRaft", ErrInvalidConfig)
		case g.BindAddress != "" || g.AdvertiseAddress != "" || len(g.Seed) > 0 || len(g.Meta) > 0:
			return fmt.Errorf("%w: host config sets gossip: use WithAddrGossip", ErrInvalidConfig)
		case cfg.RaftEventListener != nil:
			return fmt.Errorf("%w: host config sets a raft event listener, which the agent needs for its own", ErrInvalidConfig)
		}
		a.hostConfig = cfg // NewAgent puts WithDirRaft's and WithDirWAL's in it
		return nil
	}
}

// WithReplicaConfig sets the Dragonboat replica configuration used for guest
// shards; start from DefaultReplicaConfig. ShardID, ReplicaID and
// IsNonVoting are filled in per replica. ElectionRTT and HeartbeatRTT are
// ticks of the host's RTTMillisecond; leave both zero to have them set in
// time as by default.
func WithReplicaConfig(cfg config.Config) AgentOption {
	return func(a *Agent) error {
		inTime := cfg.ElectionRTT == 0 && cfg.HeartbeatRTT == 0
		if !inTime && (cfg.ElectionRTT == 0 || cfg.HeartbeatRTT == 0 || cfg.ElectionRTT <= 2*cfg.HeartbeatRTT) {
			return fmt.Errorf("%w: replica config needs ElectionRTT > 2*HeartbeatRTT > 0, or both zero", ErrInvalidConfig)
		}
		// Check the rest as Dragonboat will, per replica, when it starts one.
		check := cfg
		check.ShardID, check.ReplicaID, check.IsNonVoting = 1, 1, false
		if inTime {
			check.ElectionRTT, check.HeartbeatRTT = raftTicks(defaultRTTMillisecond)
		}
		if err := check.Validate(); err != nil {
			return fmt.Errorf("%w: replica config: %w", ErrInvalidConfig, err)
		}
		a.replicaConfig = cfg
		return nil
	}
}

// WithHostMemoryLimit bounds the memory of Dragonboat's log storage, in bytes.
//
// Unless the host config names its own Expert.LogDB, the agent sizes the log
// storage and, in a Linux build with cgo, fixes glibc's mmap threshold at
// 128 KiB for the whole process: Pebble allocates its write buffers with C
// calloc, and without this glibc keeps each freed buffer resident.
func WithHostMemoryLimit(bytes uint64) AgentOption {
	return func(a *Agent) error {
		if bytes < 4<<20 {
			return fmt.Errorf("%w: host memory limit %d below 4 MiB", ErrInvalidConfig, bytes)
		}
		a.memoryLimit = bytes
		return nil
	}
}

// WithShardController replaces the placement controller that runs on the
// prime shard's leader. Give it to every agent of a cluster: the leader
// may move to any peer, and one without it runs the default controller,
// which places the shards that have placement tags by those tags.
func WithShardController(c ShardController) AgentOption {
	return func(a *Agent) error {
		if c == nil {
			return fmt.Errorf("%w: nil shard controller", ErrInvalidConfig)
		}
		a.controller = c
		return nil
	}
}

// WithLeaderAffinity gathers the leaders of guest shards on one host: while
// this host leads the prime shard, it asks for the leadership of every guest
// shard it has a voting replica of, once that replica has caught up with its
// shard. Give it to every agent of a cluster, so
// that leaders follow the prime shard's leader wherever it moves.
//
// In a small cluster this saves CPU on every write: one raft step on the
// leaders' host carries the entries of every shard, and each follower takes
// them in one step, with one log sync. It also puts all the leaders' work
// on one host, which becomes the limit in a larger cluster; and while a
// leadership moves, a shard takes no proposals (Agent.LeadersGathered
// says when the moves are done). Off by default: Zongzi leaves leaders
// where Raft elects them.
func WithLeaderAffinity() AgentOption {
	return func(a *Agent) error {
		a.leaderAffinity = true
		return nil
	}
}

// WithLogger sets the logger for the agent's own logs (slog.Default() without
// it). Dragonboat's logs, at error level, go to the logger of the first agent
// in the process to Start: Dragonboat takes one logger per process.
func WithLogger(l *slog.Logger) AgentOption {
	return func(a *Agent) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidConfig)
		}
		a.log = l
		return nil
	}
}
