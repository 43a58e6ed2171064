package zongzi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lni/dragonboat/v4"

	"github.com/zongzi-kv/zongzi/internal/raftnet"
)

// This file holds the operations on replicas running on this host. The
// shard client calls them for local replicas, and the bus handler for
// requests forwarded from other hosts.

// localReplicaOf returns this host's running replica of a shard, if any.
func (a *Agent) localReplicaOf(shardID uint64) (*dragonboat.NodeHost, *localReplica, bool) {
	r, ok := a.local.Load(shardID)
	if !ok {
		return nil, nil, false
	}
	nh := a.NodeHost()
	return nh, r, nh != nil
}

// localHost returns the Dragonboat host when this host runs the shard.
func (a *Agent) localHost(shardID uint64) (*dragonboat.NodeHost, error) {
	if shardID == 0 {
		if nh := a.NodeHost(); nh != nil {
			return nh, nil
		}
		return nil, ErrAgentNotReady
	}
	nh, _, ok := a.localReplicaOf(shardID)
	if !ok {
		return nil, fmt.Errorf("%w: shard %d has no replica on this host", ErrShardNotReady, shardID)
	}
	return nh, nil
}

func (a *Agent) localApply(ctx context.Context, shardID uint64, cmd []byte) (uint64, []byte, error) {
	rs, err := a.localPropose(ctx, shardID, cmd)
	if err != nil {
		return 0, nil, fmt.Errorf("shard %d: apply: %w", shardID, err)
	}
	select {
	case r := <-rs.AppliedC():
		if !r.Completed() {
			return 0, nil, fmt.Errorf("shard %d: apply: %w", shardID, resultError(r))
		}
		res := r.GetResult()
		rs.Release()
		return res.Value, res.Data, nil
	case <-ctx.Done():
		return 0, nil, fmt.Errorf("shard %d: apply: %w", shardID, pendingError(ctx.Err()))
	}
}

func (a *Agent) localCommit(ctx context.Context, shardID uint64, cmd []byte) error {
	rs, err := a.localPropose(ctx, shardID, cmd)
	if err != nil {
		return fmt.Errorf("shard %d: commit: %w", shardID, err)
	}
	select {
	case r := <-rs.ResultC():
		if r.Committed() { // or applied, which Committed counts too
			return nil
		}
		return fmt.Errorf("shard %d: commit: %w", shardID, resultError(r))
	case <-ctx.Done():
		return fmt.Errorf("shard %d: commit: %w", shardID, pendingError(ctx.Err()))
	}
}

// localPropose hands cmd to the local replica, unless it is over the
// raft transport's limit (ErrTooLarge). When it fails, nothing was
// proposed; among its errors is ErrTimeout for a deadline less than a raft
// tick away, which reads as unknown but is not. A proposal made reports
// its outcome on the returned request's channels.
func (a *Agent) localPropose(ctx context.Context, shardID uint64, cmd []byte) (*dragonboat.RequestState, error) {
	nh, err := a.localHost(shardID)
	if err != nil {
		return nil, err
	}
	if len(cmd) > raftnet.MaxCommand {
		return nil, fmt.Errorf("%w: a command of %d bytes is over the raft transport's limit of %d bytes", ErrTooLarge, len(cmd), raftnet.MaxCommand)
	}
	timeout, err := timeoutOf(ctx)
	if err != nil {
		return nil, err
	}
	var rs *dragonboat.RequestState
	err = a.hostCall(nh, func() (err error) {
		rs, err = nh.Propose(nh.GetNoOPSession(shardID), cmd, timeout)
		return err
	})
	if err != nil {
		return nil, mapError(err)
	}
	return rs, nil
}

// hostCall runs f, a call into nh that does not wait for raft, unless the
// agent has let go of nh (ErrAgentNotReady, as from a closed host):
// teardown closes nh only once no such call runs. Dragonboat's Propose
// and ReadIndex check that the host is open, then wake its engine, which
// Close drops meanwhile: made while Agent.Stop runs, they would crash the
// process.
func (a *Agent) hostCall(nh *dragonboat.NodeHost, f func() error) error {
	a.hostCalls.RLock()
	defer a.hostCalls.RUnlock()
	if a.nh.Load() != nh {
		return fmt.Errorf("%w: the host is stopping", ErrAgentNotReady)
	}
	return f()
}

func (a *Agent) localRead(ctx context.Context, shardID uint64, query []byte, stale bool) (uint64, []byte, error) {
	nh, err := a.localHost(shardID)
	if err != nil {
		return 0, nil, err
	}
	v, err := a.lookup(ctx, nh, shardID, guestQuery{ctx: ctx, query: query}, stale)
	if err != nil {
		return 0, nil, fmt.Errorf("shard %d: read: %w", shardID, mapError(err))
	}
	r, ok := v.(*Result)
	if !ok || r == nil {
		return 0, nil, nil
	}
	return r.Value, r.Data, nil
}

func (a *Agent) localIndex(ctx context.Context, shardID uint64) (uint64, error) {
	nh, err := a.localHost(shardID)
	if err != nil {
		return 0, err
	}
	if shardID == 0 {
		if _, err := a.lookup(ctx, nh, 0, nil, false); err != nil {
			return 0, fmt.Errorf("shard 0: index: %w", mapError(err))
		}
		return a.store.State().Index(), nil
	}
	v, err := a.lookup(ctx, nh, shardID, indexQuery{}, false)
	if err != nil {
		return 0, fmt.Errorf("shard %d: index: %w", shardID, mapError(err))
	}
	return v.(uint64), nil
}

func (a *Agent) localWatch(ctx context.Context, shardID uint64, query []byte, stale bool, send func(uint64, []byte) error) error {
	nh, r, ok := a.localReplicaOf(shardID)
	if !ok || r.guest == nil {
		return fmt.Errorf("%w: shard %d has no replica on this host", ErrShardNotReady, shardID)
	}
	if !stale {
		if _, err := a.localIndex(ctx, shardID); err != nil {
			return err
		}
	} else if _, err := nh.StaleRead(shardID, indexQuery{}); err != nil {
		// As a stale query, refused until the replica is initialised (its
		// persistent state machine open, or its snapshot recovered): no
		// read of the index precedes a stale watch, which would be.
		return fmt.Errorf("shard %d: watch: %w", shardID, mapError(err))
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.stopped, cancel)() // the replica stops: so does the watch
	results := make(chan *Result, 16)
	if !r.guest.startWatch(wctx, query, results) {
		return fmt.Errorf("%w: shard %d: the replica serving the watch stopped", ErrShardNotReady, shardID)
	}
	for res := range results {
		if res == nil { // as Query's nil result reads as a zero one, a nil here is no result
			continue
		}
		if err := send(res.Value, res.Data); err != nil {
			cancel()
			for range results { // drain so the watcher can exit
			}
			return err
		}
	}
	if ctx.Err() == nil && (r.stopped.Err() != nil || r.guest.closed.Err() != nil) {
		return watchStopped(a.store.State(), shardID)
	}
	return nil
}

// watchStopped is the error of a watch whose replica stopped: the shard
// was deleted (ErrShardNotFound), as this host's registry, which stopped
// the replica, says, or it may be served elsewhere (ErrShardNotReady). A
// watch forwarded here gets this host's answer: its caller's route,
// taken when the watch began, may list no host that could say.
func watchStopped(st *State, shardID uint64) error {
	if _, ok := st.Shard(shardID); !ok {
		return fmt.Errorf("%w: shard %d was deleted while watched", ErrShardNotFound, shardID)
	}
	return fmt.Errorf("%w: shard %d: the replica serving the watch stopped", ErrShardNotReady, shardID)
}

// readAttempt bounds one ReadIndex round. A ReadIndex message lost with a
// leader that just changed (or dropped by a replica still catching up after
// a restart) is retried in the next round, since a read has no side effect,
// instead of waiting for the caller's whole deadline.
const readAttempt = 300 * time.Millisecond

// lookup queries the local replica: linearizably after a coalesced
// ReadIndex round (see readBarrier), or directly when stale.
func (a *Agent) lookup(ctx context.Context, nh *dragonboat.NodeHost, shardID uint64, query any, stale bool) (any, error) {
	if !stale {
		if err := a.barrier(shardID).wait(ctx, nh, shardID); err != nil {
			return nil, err
		}
	}
	return nh.StaleRead(shardID, query)
}

// timeoutOf returns the time left before ctx's deadline.
func timeoutOf(ctx context.Context) (time.Duration, error) {
	d, ok := ctx.Deadline()
	if !ok {
		return 0, fmt.Errorf("%w: context needs a deadline", ErrInvalidConfig)
	}
	left := time.Until(d)
	if left <= 0 {
		return 0, ErrTimeout
	}
	return left, nil
}

// resultError maps the result of a proposal that did not succeed. Only a
// dropped proposal (no leader, or one handing over its leadership) is known
// not to have applied; a replica that closed with the proposal pending
// leaves its outcome unknown, since the proposal may already be in the log.
func resultError(r dragonboat.RequestResult) error {
	switch {
	case r.Timeout():
		return ErrTimeout
	case r.Rejected():
		return ErrRejected
	case r.Dropped():
		return fmt.Errorf("%w: proposal dropped (no leader)", ErrShardNotReady)
	case r.Terminated():
		return fmt.Errorf("%w: the replica closed with the proposal pending", ErrOutcomeUnknown)
	default:
		return ErrOutcomeUnknown
	}
}

// pendingError is the error of a proposal given up on while pending, when
// its context is done: its outcome is unknown, whether the deadline passed
// (ErrTimeout) or the context was cancelled.
func pendingError(err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return mapError(err)
}

// mapError wraps Dragonboat and context errors in this package's sentinels.
// For a proposal it maps only errors returned before anything was proposed
// (a closed shard then means that nothing was); resultError maps the rest.
func mapError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, dragonboat.ErrTimeout),
		errors.Is(err, dragonboat.ErrTimeoutTooSmall), // less than one raft tick left
		errors.Is(err, dragonboat.ErrInvalidDeadline): // none left
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case errors.Is(err, context.Canceled), errors.Is(err, dragonboat.ErrCanceled):
		return fmt.Errorf("%w: %w", context.Canceled, err)
	case errors.Is(err, dragonboat.ErrRejected):
		return fmt.Errorf("%w: %w", ErrRejected, err)
	case errors.Is(err, dragonboat.ErrPayloadTooBig):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, dragonboat.ErrClosed):
		return fmt.Errorf("%w: %w", ErrAgentNotReady, err)
	case errors.Is(err, dragonboat.ErrShardNotFound), errors.Is(err, dragonboat.ErrShardNotReady),
		errors.Is(err, dragonboat.ErrShardClosed), errors.Is(err, dragonboat.ErrShardNotInitialized),
		errors.Is(err, dragonboat.ErrSystemBusy), errors.Is(err, dragonboat.ErrAborted):
		return fmt.Errorf("%w: %w", ErrShardNotReady, err)
	}
	return err
}
