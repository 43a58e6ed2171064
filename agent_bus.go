package zongzi

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"

	"github.com/zongzi-kv/zongzi/internal/bus"
	"github.com/zongzi-kv/zongzi/internal/bus/pb"
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
	{ErrTimeout, codes.DeadlineExceeded},
	{ErrRejected, codes.Aborted},
	{ErrInvalidConfig, codes.InvalidArgument},
	{ErrShardTypeUnknown, codes.Unimplemented},
	{context.Canceled, codes.Canceled},
}

var busCodes = bus.Codes{
	ToCode: func(err error) uint32 {
		for _, e := range busErrors {
			if errors.Is(err, e.err) {
				return uint32(e.code)
			}
		}
		return uint32(codes.Unknown)
	},
	ToError: func(code uint32, msg string) error {
		for _, e := range busErrors {
			if uint32(e.code) == code {
				return fmt.Errorf("%w (remote: %s)", e.err, msg)
			}
		}
		return errors.New(msg)
	},
}

func (h busHandler) Info(context.Context) (*pb.InfoResponse, error) {
	a := h.a
	a.mu.RLock()
	defer a.mu.RUnlock()
	res := &pb.InfoResponse{GossipAddress: a.gossipAddr, PrimeReplicaId: a.primeID, Ready: a.primeReady}
	if a.nh.Load() != nil {
		res.HostId, res.RaftAddress = a.hostID, a.raftAddr
	}
	return res, nil
}

func (h busHandler) Join(ctx context.Context, req *pb.JoinRequest) (uint64, error) {
	return h.a.addHost(ctx, req)
}

func (h busHandler) Membership(ctx context.Context, req *pb.MembershipRequest) error {
	return h.a.changeMembership(ctx, req)
}

func (h busHandler) Apply(ctx context.Context, shardID uint64, cmd []byte) (uint64, []byte, error) {
	return h.a.localApply(ctx, shardID, cmd)
}

func (h busHandler) Commit(ctx context.Context, shardID uint64, cmd []byte) error {
	return h.a.localCommit(ctx, shardID, cmd)
}

func (h busHandler) Read(ctx context.Context, shardID uint64, query []byte, stale, _ bool) (uint64, []byte, error) {
	return h.a.localRead(ctx, shardID, query, stale)
}

func (h busHandler) Index(ctx context.Context, shardID uint64) (uint64, error) {
	return h.a.localIndex(ctx, shardID)
}

func (h busHandler) Watch(ctx context.Context, shardID uint64, query []byte, stale bool, send func(uint64, []byte) error) error {
	return h.a.localWatch(ctx, shardID, query, stale, send)
}

// addHost adds a host to the prime shard: the registry first, then Raft
// membership. A host whose raft target is already a member (a peer that
// started late, or whose data was wiped) gets its existing replica back.
func (a *Agent) addHost(ctx context.Context, req *pb.JoinRequest) (uint64, error) {
	nh := a.NodeHost()
	if nh == nil || a.Status() != AgentStatusReady {
		return 0, ErrAgentNotReady
	}
	target := a.target(req.HostId, req.RaftAddress)
	host := Host{
		ID: req.HostId, Status: registry.HostStatusNew, Tags: req.Tags,
		ApiAddress: req.ApiAddress, RaftAddress: req.RaftAddress, ShardTypes: req.ShardTypes,
	}
	if len(host.Tags) == 0 {
		host.Tags = nil
	}
	m, err := nh.SyncGetShardMembership(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("join: membership: %w", mapError(err))
	}
	for id, t := range m.Nodes {
		if t == target {
			return id, a.rebindReplica(ctx, host, id)
		}
	}
	for id, t := range m.NonVotings {
		if t == target {
			return id, a.rebindReplica(ctx, host, id)
		}
	}
	if _, err := a.proposeRegistry(ctx, registry.Command{Op: registry.OpHostPut, Host: &host}); err != nil {
		return 0, fmt.Errorf("join: register host: %w", err)
	}
	var id uint64
	for _, r := range a.store.State().HostReplicas(req.HostId) {
		if r.ShardID == 0 {
			id = r.ID
		}
	}
	if id == 0 {
		rep := Replica{HostID: req.HostId, ShardID: 0, IsNonVoting: req.NonVoting, Status: registry.ReplicaStatusActive}
		id, err = a.proposeRegistry(ctx, registry.Command{Op: registry.OpReplicaPut, Replica: &rep})
		if err != nil {
			return 0, fmt.Errorf("join: register replica: %w", err)
		}
	}
	if req.NonVoting {
		err = nh.SyncRequestAddNonVoting(ctx, 0, id, target, 0)
	} else {
		err = nh.SyncRequestAddReplica(ctx, 0, id, target, 0)
	}
	if err != nil {
		return 0, fmt.Errorf("join: add replica %d: %w", id, mapError(err))
	}
	return id, nil
}

// rebindReplica points an existing prime replica at the host now behind
// its raft target, dropping the host record it had before.
func (a *Agent) rebindReplica(ctx context.Context, host Host, replicaID uint64) error {
	st := a.store.State()
	r, ok := st.Replica(replicaID)
	if ok && r.HostID == host.ID {
		return nil
	}
	batch := registry.Command{Op: registry.OpBatch}
	batch.Batch = append(batch.Batch, registry.Command{Op: registry.OpHostPut, Host: &host})
	if ok {
		old := r.HostID
		r.HostID = host.ID
		batch.Batch = append(batch.Batch,
			registry.Command{Op: registry.OpReplicaPut, Replica: &r},
			registry.Command{Op: registry.OpHostDelete, HostID: old})
	}
	if _, err := a.proposeRegistry(ctx, batch); err != nil {
		return fmt.Errorf("join: rebind replica %d: %w", replicaID, err)
	}
	return nil
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
	_, removed := m.Removed[req.ReplicaId]
	switch {
	case req.Remove && (voting || nonVoting):
		err = nh.SyncRequestDeleteReplica(ctx, req.ShardId, req.ReplicaId, m.ConfigChangeID)
	case req.Remove || removed || voting || nonVoting:
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

// hostTarget returns how Dragonboat addresses the host with the given ID.
func (a *Agent) hostTarget(hostID string) (string, error) {
	h, ok := a.store.State().Host(hostID)
	if !ok {
		return "", fmt.Errorf("%w: host %s not in registry", ErrShardNotReady, hostID)
	}
	return a.target(h.ID, h.RaftAddress), nil
}
