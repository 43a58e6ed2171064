package zongzi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/client"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// registryAttempt bounds one attempt of a registry proposal. A proposal
// forwarded to a leader that just died is lost; the next attempt reaches
// the new leader.
const registryAttempt = 2 * time.Second

// registrySession proposes registry commands exactly once. It holds a
// Dragonboat client session on the prime shard: a proposal whose outcome
// is unknown (timed out, dropped) is proposed again with the same series
// ID, and the prime shard applies it at most once. A session carries one
// proposal at a time, so proposals from this host are serialised; the
// registry is written rarely.
type registrySession struct {
	mu      sync.Mutex
	session *client.Session
}

// propose applies cmd on the prime shard and returns its result, retrying
// until it is applied, rejected, or ctx is done.
func (r *registrySession) propose(ctx context.Context, nh *dragonboat.NodeHost, cmd []byte) (sm.Result, error) {
	if nh == nil {
		return sm.Result{}, ErrAgentNotReady
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		res, err := r.attempt(ctx, nh, cmd)
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, ErrOutcomeUnknown) && !errors.Is(err, ErrShardNotReady) {
			return res, fmt.Errorf("registry: %w", err)
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("registry: %w", mapError(ctx.Err()))
		}
		if errors.Is(err, ErrShardNotReady) {
			if err := sleep(ctx, 50*time.Millisecond); err != nil {
				return res, fmt.Errorf("registry: %w", mapError(err))
			}
		}
	}
}

// attempt makes one bounded attempt, registering the session first if needed.
func (r *registrySession) attempt(ctx context.Context, nh *dragonboat.NodeHost, cmd []byte) (sm.Result, error) {
	actx, cancel := context.WithTimeout(ctx, registryAttempt)
	defer cancel()
	if r.session == nil {
		s, err := nh.SyncGetSession(actx, 0)
		if err != nil {
			return sm.Result{}, mapError(err)
		}
		r.session = s
	}
	res, err := nh.SyncPropose(actx, r.session, cmd)
	switch {
	case err == nil:
		r.session.ProposalCompleted()
		return res, nil
	case errors.Is(err, dragonboat.ErrInvalidSession):
		r.session = nil // evicted: register a new one
		return res, fmt.Errorf("%w: %w", ErrShardNotReady, err)
	}
	return res, mapError(err)
}
