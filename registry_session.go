package zongzi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/client"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// registryAttempt bounds one attempt of a registry proposal. A proposal
// forwarded to a leader that just died is lost; the next attempt reaches
// the new leader. An attempt also ends as soon as the local prime replica
// sees its leader change, which it does once it notices the old one gone.
const registryAttempt = 2 * time.Second

// registrySession proposes registry commands exactly once. It holds a
// Dragonboat client session on the prime shard: a proposal whose outcome
// is unknown (timed out, dropped) is proposed again with the same series
// ID, and the prime shard applies it at most once. A session carries one
// proposal at a time, so proposals from this host take turns; the registry
// is written rarely.
type registrySession struct {
	turn    chan struct{} // holds a token while a proposal runs
	session *client.Session
	// attemptTimeout is registryAttempt; tests lengthen it.
	attemptTimeout time.Duration
	// leaderMoved fires when the local prime replica's leader changes.
	leaderMoved *signal
}

func newRegistrySession() registrySession {
	return registrySession{turn: make(chan struct{}, 1), attemptTimeout: registryAttempt, leaderMoved: newSignal()}
}

// signal wakes every waiter at each fire.
type signal struct {
	mu sync.Mutex
	c  chan struct{}
}

func newSignal() *signal { return &signal{c: make(chan struct{})} }

// wait returns a channel closed at the next fire.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// fire closes the channel of the waiters so far. It never blocks long: the
// raft event listener calls it.
func (s *signal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.c)
	s.c = make(chan struct{})
}

// propose applies cmd on the prime shard and returns its result, retrying
// until it is applied, rejected, or ctx is done; it waits for its turn no
// longer than ctx allows, and proposes nothing once ctx is done. When it
// gives up, the command may have applied, or may yet apply, under the
// session's current series ID: the session
// moves on to the next series ID, as for a completed proposal, so that the
// next command is applied rather than answered with this one's cached
// result, and the prime shard ignores this one if it comes later. A
// session dropped instead (as it was) stays registered on the prime shard
// until its LRU of 4,096 sessions evicts it, evicting other hosts' live
// sessions once failures have filled it.
func (r *registrySession) propose(ctx context.Context, nh *dragonboat.NodeHost, cmd []byte) (sm.Result, error) {
	if nh == nil {
		return sm.Result{}, ErrAgentNotReady
	}
	select {
	case r.turn <- struct{}{}:
	case <-ctx.Done():
		return sm.Result{}, fmt.Errorf("registry: waiting for the previous proposal: %w", mapError(ctx.Err()))
	}
	defer func() { <-r.turn }()
	// The turn may come with ctx done (select picks either when both
	// are): proposed then, cmd could apply for a caller that gave up
	// before it began.
	if err := ctx.Err(); err != nil {
		return sm.Result{}, fmt.Errorf("registry: %w", mapError(err))
	}
	res, err := r.retry(ctx, nh, cmd)
	if err != nil && r.session != nil {
		r.session.ProposalCompleted()
	}
	return res, err
}

// retry makes attempts until one is applied or rejected, one fails for a
// reason a retry cannot mend, or ctx leaves no time for another. An attempt
// refused because the prime shard evicted the session (ErrRejected) applied
// nothing: when no earlier attempt may have been proposed either, cmd is
// proposed again under a new session. Once an attempt may have been
// proposed, an error wraps ErrOutcomeUnknown: that proposal may yet apply,
// or have applied, whatever a later attempt says; it no longer wraps
// ErrRejected, which would say that nothing applied.
func (r *registrySession) retry(ctx context.Context, nh *dragonboat.NodeHost, cmd []byte) (sm.Result, error) {
	proposed := false
	fail := func(err error) error {
		switch {
		case !proposed || errors.Is(err, ErrOutcomeUnknown):
			return fmt.Errorf("registry: %w", err)
		case errors.Is(err, ErrRejected):
			return fmt.Errorf("registry: %w: an earlier attempt may have applied; the last one: %v", ErrOutcomeUnknown, err)
		}
		return fmt.Errorf("registry: %w: %w", ErrOutcomeUnknown, err)
	}
	for {
		res, made, err := r.attempt(ctx, nh, cmd)
		if err == nil {
			return res, nil
		}
		proposed = proposed || made
		if errors.Is(err, ErrRejected) && !proposed && r.session == nil {
			continue // the session was evicted; attempt registers a new one
		}
		if !errors.Is(err, ErrOutcomeUnknown) && !errors.Is(err, ErrShardNotReady) {
			return res, fail(err)
		}
		if cerr := ctx.Err(); cerr != nil {
			return res, fail(mapError(cerr))
		}
		if errors.Is(err, dragonboat.ErrTimeoutTooSmall) { // less than a tick left: no attempt can go
			return res, fail(err)
		}
		if errors.Is(err, ErrShardNotReady) {
			if err := sleep(ctx, 50*time.Millisecond); err != nil {
				return res, fail(mapError(err))
			}
		}
	}
}

// attempt makes one bounded attempt, registering the session first if
// needed. made says whether cmd may have been proposed: it was unless the
// proposal failed before it reached the replica, or was dropped (no leader),
// or the replica rejected the session.
//
// A proposal forwarded to a leader that died is lost, and would wait for
// the attempt's whole time: the attempt ends when the local replica sees
// the leader change, and retry proposes it again, to the new leader, under
// the same series ID.
func (r *registrySession) attempt(ctx context.Context, nh *dragonboat.NodeHost, cmd []byte) (res sm.Result, made bool, err error) {
	actx, cancel := context.WithTimeout(ctx, r.attemptTimeout)
	defer cancel()
	if r.session == nil {
		// Not cut short by a leader change: a registration that was made
		// would leave a session nobody closes.
		s, err := nh.SyncGetSession(actx, 0)
		if err != nil {
			return sm.Result{}, false, mapError(err)
		}
		r.session = s
	}
	var moved atomic.Bool
	watch, done := r.leaderMoved.wait(), make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-watch:
			moved.Store(true)
			cancel()
		case <-done:
		}
	}()
	res, err = nh.SyncPropose(actx, r.session, cmd)
	if errors.Is(err, dragonboat.ErrCanceled) && moved.Load() && ctx.Err() == nil {
		return res, true, fmt.Errorf("%w: the prime shard's leader changed while the proposal was pending: %w", ErrOutcomeUnknown, err)
	}
	switch {
	case err == nil:
		r.session.ProposalCompleted()
		return res, true, nil
	case errors.Is(err, dragonboat.ErrInvalidSession):
		r.session = nil // not usable for a proposal: register a new one
		return res, false, fmt.Errorf("%w: %w", ErrShardNotReady, err)
	case errors.Is(err, dragonboat.ErrRejected):
		// The prime shard no longer knows the session (its LRU evicted
		// it), and applied nothing: the next attempt registers a new one.
		// retry makes it only if no earlier attempt of cmd was proposed,
		// as one may have applied before the eviction.
		r.session = nil
	}
	return res, proposalMade(err), mapError(err)
}

// proposalMade says whether a proposal that failed with err, an error of
// Dragonboat's SyncPropose, may be in the log: it timed out or was
// cancelled while pending, or its replica closed (ErrShardClosed, which is
// also the error of a replica closed before it took the proposal). The
// other errors come before the proposal is made, or say that it was
// dropped or rejected.
func proposalMade(err error) bool {
	return errors.Is(err, dragonboat.ErrTimeout) || errors.Is(err, dragonboat.ErrCanceled) ||
		errors.Is(err, dragonboat.ErrShardClosed) || errors.Is(err, dragonboat.ErrAborted)
}
