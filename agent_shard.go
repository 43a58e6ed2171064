package zongzi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// ShardCreate creates a guest shard of the given type, or returns the
// existing shard of the same name: created is true only for the call whose
// proposal made it. Placement options decide where its replicas go; the
// default shard controller gives a shard without them no replica. A shard
// without WithName gets a random name.
func (a *Agent) ShardCreate(ctx context.Context, shardType string, opts ...ShardOption) (shard Shard, created bool, err error) {
	if shardType == "" {
		return shard, false, fmt.Errorf("%w: empty shard type", ErrInvalidConfig)
	}
	s := Shard{Type: shardType, Status: registry.ShardStatusNew}
	for _, opt := range opts {
		if err := opt(&s); err != nil {
			return shard, false, err
		}
	}
	if err := checkPlacement(s); err != nil {
		return shard, false, err
	}
	if s.Name == "" {
		s.Name = uuid.NewString()
	}
	id, data, err := a.proposeRegistryResult(ctx, registry.Command{Op: registry.OpShardPut, Shard: &s})
	if err != nil {
		return shard, false, fmt.Errorf("create shard %q: %w", s.Name, err)
	}
	shard, _ = a.store.State().Shard(id)
	return shard, len(data) == 1 && data[0] == 1, nil
}

// ShardUpdate changes a shard's name or tags with the given options. A
// shard this host's registry does not hold is ErrShardNotFound. The
// options are applied to the shard as the registry holds it when the
// change is written: when the shard changed in between, they are applied
// again to the new version.
func (a *Agent) ShardUpdate(ctx context.Context, shardID uint64, opts ...ShardOption) (Shard, error) {
	if shardID == 0 {
		return Shard{}, fmt.Errorf("%w: the prime shard cannot be updated", ErrInvalidConfig)
	}
	if a.Status() != AgentStatusReady {
		return Shard{}, fmt.Errorf("update shard %d: %w", shardID, ErrAgentNotReady)
	}
	for {
		s, ok := a.store.State().Shard(shardID)
		if !ok {
			return s, fmt.Errorf("%w: %d", ErrShardNotFound, shardID)
		}
		read := s.Updated
		tags := make(map[string]string, len(s.Tags))
		for k, v := range s.Tags {
			tags[k] = v
		}
		s.Tags = tags
		for _, opt := range opts {
			if err := opt(&s); err != nil {
				return s, err
			}
		}
		if err := checkPlacement(s); err != nil {
			return s, err
		}
		// The shard is written only as it was read: a change made since,
		// here or on another host, is not undone. The local registry has
		// applied the entry that refused it, so the next pass reads that
		// change.
		_, err := a.proposeRegistry(ctx, registry.Command{Op: registry.OpShardPut, Shard: &s, IfUpdated: read})
		if errors.Is(err, ErrRejected) && ctx.Err() == nil {
			now, ok := a.store.State().Shard(shardID)
			if !ok { // deleted meanwhile, which the refusal says
				return s, fmt.Errorf("update shard %d: %w: deleted meanwhile: %w", shardID, ErrShardNotFound, err)
			}
			if now.Updated != read {
				continue
			}
		}
		if err != nil {
			return s, fmt.Errorf("update shard %d: %w", shardID, err)
		}
		s, _ = a.store.State().Shard(shardID)
		return s, nil
	}
}

// ShardDelete deletes a guest shard; hosts stop its replicas and delete their
// data. A shard this host's registry does not hold is ErrShardNotFound.
func (a *Agent) ShardDelete(ctx context.Context, shardID uint64) error {
	if shardID == 0 {
		return fmt.Errorf("%w: the prime shard cannot be deleted", ErrInvalidConfig)
	}
	if a.Status() != AgentStatusReady {
		return fmt.Errorf("delete shard %d: %w", shardID, ErrAgentNotReady)
	}
	if _, ok := a.store.State().Shard(shardID); !ok {
		return fmt.Errorf("delete shard %d: %w", shardID, ErrShardNotFound)
	}
	if _, err := a.proposeRegistry(ctx, registry.Command{Op: registry.OpShardDelete, ShardID: shardID}); err != nil {
		return fmt.Errorf("delete shard %d: %w", shardID, err)
	}
	return nil
}

// HostDelete removes a host and its replicas from the registry, for a host
// that is gone for good; the shard controller replaces its replicas
// elsewhere. A host deleted while it runs does not register again: its
// prime replica leaves the prime shard, its replicas leave theirs, and
// placement puts nothing on it; wiped, it can join again as a new host.
func (a *Agent) HostDelete(ctx context.Context, hostID string) error {
	if a.Status() != AgentStatusReady {
		return fmt.Errorf("delete host %s: %w", hostID, ErrAgentNotReady)
	}
	if hostID == a.HostID() {
		return fmt.Errorf("%w: a host cannot delete itself", ErrInvalidConfig)
	}
	if _, err := a.proposeRegistry(ctx, registry.Command{Op: registry.OpHostDelete, HostID: hostID}); err != nil {
		return fmt.Errorf("delete host %s: %w", hostID, err)
	}
	return nil
}

// ShardFind returns the shard with the given name from the local registry.
func (a *Agent) ShardFind(name string) (Shard, bool) {
	return a.store.State().ShardByName(name)
}

// Client returns a client of the shard with the given ID.
func (a *Agent) Client(shardID uint64) *ShardClient {
	return &ShardClient{a: a, shardID: shardID}
}

// ClientByName returns a client of the shard with the given name.
func (a *Agent) ClientByName(name string) (*ShardClient, error) {
	s, ok := a.ShardFind(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrShardNotFound, name)
	}
	return a.Client(s.ID), nil
}

// proposeRegistry proposes a registry command through this host's prime
// replica and returns the ID it affected; a rejected command is an error
// wrapping ErrRejected.
func (a *Agent) proposeRegistry(ctx context.Context, cmd registry.Command) (uint64, error) {
	v, _, err := a.proposeRegistryResult(ctx, cmd)
	return v, err
}

func (a *Agent) proposeRegistryResult(ctx context.Context, cmd registry.Command) (uint64, []byte, error) {
	res, err := a.registry.propose(ctx, a.NodeHost(), cmd.Encode())
	if err != nil {
		return 0, nil, err
	}
	if res.Value == 0 {
		return 0, nil, fmt.Errorf("%w: registry %s: %s", ErrRejected, cmd.Op, res.Data)
	}
	return res.Value, res.Data, nil
}

// startControllers starts the agent's background work, all ending with ctx.
func (a *Agent) startControllers(ctx context.Context) {
	for _, run := range []func(context.Context){
		a.runHostController, a.runShardController, a.runLeaderWorker, a.runProber, a.runStallWatch,
		a.runLeaderAffinity,
	} {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			run(ctx)
		}()
	}
}

// runProber measures the round trip to every other host, for routing, and
// closes the bus's connections to addresses at which neither the registry
// lists a host nor a peer was configured (a host deleted, or back at
// another address), once no call is in progress on them.
func (a *Agent) runProber(ctx context.Context) {
	every(ctx, 2*time.Second, nil, nil, func() {
		listed := map[string]bool{}
		for _, h := range a.store.State().Hosts() {
			listed[h.ApiAddress] = true
			if h.ID == a.hostID || h.ApiAddress == "" {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			_, _ = a.pool.Info(pctx, h.ApiAddress)
			cancel()
		}
		a.routes.Update(func(m map[uint64]*shardRoute) { clear(m) }) // re-sort by the new round trips
		a.pool.Retain(func(addr string) bool { return listed[addr] || slices.Contains(a.peers, addr) })
	})
}

// ctxAlive reports whether err is something other than a cancellation.
func ctxAlive(err error) bool {
	return !errors.Is(err, context.Canceled)
}
