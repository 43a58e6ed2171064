package zongzi

import "errors"

// Sentinel errors. An error returned by this package wraps one of these, or
// a context error, with context, so callers test them with errors.Is. The
// exceptions are failures no sentinel describes (an unexpected error of
// Dragonboat's, or one a remote host answered with a code the bus does not
// map), which keep their message.
var (
	// ErrInvalidConfig: an option or argument has a bad value.
	ErrInvalidConfig = errors.New("zongzi: invalid configuration")
	// ErrAgentNotReady: the agent has not finished starting, or has stopped.
	ErrAgentNotReady = errors.New("zongzi: agent not ready")
	// ErrShardNotFound: no shard has the given ID or name.
	ErrShardNotFound = errors.New("zongzi: shard not found")
	// ErrShardNotReady: the shard exists but no replica can serve it yet.
	// A proposal that fails with it was not applied: no replica took it.
	// A ShardClient call tries again while its deadline leaves time.
	ErrShardNotReady = errors.New("zongzi: shard not ready")
	// ErrShardTypeUnknown: no state machine is registered for the shard type.
	ErrShardTypeUnknown = errors.New("zongzi: shard type not registered")
	// ErrOutcomeUnknown: a proposal was made but its result never came
	// back, so it may or may not have applied: the deadline passed
	// (ErrTimeout, which wraps it), the context was cancelled (the error
	// wraps context.Canceled too), the replica that took it closed, or the
	// connection to the host serving it broke. Such a proposal is never
	// retried elsewhere; the caller decides, e.g. by reading the state.
	ErrOutcomeUnknown = errors.New("zongzi: outcome unknown")
	// ErrTimeout: the deadline passed; a proposal may or may not have
	// applied. It wraps ErrOutcomeUnknown.
	ErrTimeout error = &childError{msg: "zongzi: timeout, outcome unknown", parent: ErrOutcomeUnknown}
	// ErrRejected: the request was rejected and not applied.
	ErrRejected = errors.New("zongzi: request rejected")
	// ErrTooLarge: a command, query or result is over a size limit: the
	// message bus's, just under 4 MiB, for a request sent to another host,
	// or the raft transport's, just under 256 MiB, for a command (an entry
	// must reach the followers whole). A command that fails with it was not
	// proposed; a write whose result is over the bus's limit fails with
	// ErrResultTooLarge instead.
	ErrTooLarge = errors.New("zongzi: too large")
	// ErrResultTooLarge: a write applied, but its result is over the
	// message bus's limit, so the host that served it could not send it
	// back to this one: the outcome is known, the result is not. Unlike
	// ErrTooLarge, it does not mean that nothing was proposed: the write
	// must not be made again.
	ErrResultTooLarge = errors.New("zongzi: write applied, result too large to return")
	// ErrBootstrap: the agent could not form or join the cluster.
	ErrBootstrap = errors.New("zongzi: bootstrap failed")
)

// childError is a sentinel that is also a case of a broader one: errors.Is
// matches it and its parent.
type childError struct {
	msg    string
	parent error
}

func (e *childError) Error() string { return e.msg }

func (e *childError) Unwrap() error { return e.parent }
