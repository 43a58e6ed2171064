package zongzi

import "errors"

// Sentinel errors. Every error returned by this package wraps one of these
// (or a context error) with context, so callers test them with errors.Is.
var (
	// ErrInvalidConfig: an option or argument has a bad value.
	ErrInvalidConfig = errors.New("zongzi: invalid configuration")
	// ErrAgentNotReady: the agent has not finished starting, or has stopped.
	ErrAgentNotReady = errors.New("zongzi: agent not ready")
	// ErrShardNotFound: no shard has the given ID or name.
	ErrShardNotFound = errors.New("zongzi: shard not found")
	// ErrShardNotReady: the shard exists but no replica can serve it yet.
	ErrShardNotReady = errors.New("zongzi: shard not ready")
	// ErrShardTypeUnknown: no state machine is registered for the shard type.
	ErrShardTypeUnknown = errors.New("zongzi: shard type not registered")
	// ErrTimeout: the deadline passed; a proposal may or may not have applied.
	ErrTimeout = errors.New("zongzi: timeout, outcome unknown")
	// ErrRejected: the request was rejected and not applied.
	ErrRejected = errors.New("zongzi: request rejected")
	// ErrBootstrap: the agent could not form or join the cluster.
	ErrBootstrap = errors.New("zongzi: bootstrap failed")
)
