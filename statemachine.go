package zongzi

import (
	"context"
	"io"
)

// Entry is one committed command handed to a guest state machine. Index is
// the raft index of the entry; Update fills in Result.
type Entry struct {
	Index  uint64
	Cmd    []byte
	Result Result
}

// Result is what a state machine returns for a command or a query. Value is
// a small code or number chosen by the state machine; Data is its payload.
// Both cross the network unchanged when a call is forwarded to another host,
// but for an empty Data, which arrives nil whether it was nil or not, and
// a Data over the message bus's limit (see ErrTooLarge and
// ErrResultTooLarge). A local call hands Data to its caller without a copy:
// once returned or sent, neither the state machine nor the caller may
// change it.
type Result struct {
	Value uint64
	Data  []byte
}

// StateMachine is an in-memory guest state machine. Update, PrepareSnapshot,
// RecoverFromSnapshot and Close are called one at a time. Query and Watch
// may run concurrently with every method but Close and with each other,
// and SaveSnapshot with Update, so the implementation synchronises its own
// state. None starts once Close was called, and Close waits for those
// running to return, for up to 10 s: a Query should end with its ctx. Update must be deterministic:
// every replica applies the same entries and must reach the same state and
// results.
//
// Business rejections (a version mismatch, a malformed command) are result
// codes set in Entry.Result, never panics. Update returns every entry it was
// given, in order: Dragonboat stops the process with a panic when a batch
// fails to apply, and a different number of entries, or another order,
// fails it. A panic in any method stops the process too: for Query and
// Watch, that of the host serving the call, which may be another one.
//
// The library owns the slices it passes in: Update may neither change an
// entry's Cmd nor keep entries or a Cmd after it returns (the slice is
// reused for the next batch), and Query and Watch may not keep query once
// they return. Copy what you keep.
type StateMachine interface {
	// Update applies entries in order and returns them with Result set.
	Update(entries []Entry) []Entry
	// Query answers a read-only query; a nil result reads as a zero one.
	// The library keeps no reference to the returned Result, only to its
	// Data (see Result).
	Query(ctx context.Context, query []byte) *Result
	// Watch streams results for query to results until ctx is done. ctx
	// also ends when the replica stops, and Close comes once Watch has
	// returned (or 10 s after ctx ended, with a warning logged). A nil
	// result is skipped. Watch must not close results.
	Watch(ctx context.Context, query []byte, results chan<- *Result)
	// PrepareSnapshot captures a point-in-time cursor while updates are
	// paused. An error stops the process: Dragonboat panics on it.
	PrepareSnapshot() (cursor any, err error)
	// SaveSnapshot writes the state captured by cursor to w. When close is
	// closed (the replica is stopping), or a write to w fails (the host a
	// snapshot streams to went away), it may return early with any error:
	// the agent reports w's.
	SaveSnapshot(cursor any, w io.Writer, close <-chan struct{}) error
	// RecoverFromSnapshot replaces the state with the snapshot read from r,
	// and like SaveSnapshot may return early with any error once close is
	// closed. Another error from either stops the process: Dragonboat
	// panics on a snapshot that fails.
	RecoverFromSnapshot(r io.Reader, close <-chan struct{}) error
	// Close releases resources held by the state machine. It is also
	// called, alone, on one whose replica failed to start. An error is
	// logged by the agent; the replica stops all the same.
	Close() error
}

// StateMachineFactory builds the state machine of one replica, empty: the
// replica restores it from snapshots and the log. It is called each time
// a replica starts on this host, and again when a first start is retried.
// A nil state machine, or one that holds a nil pointer, is refused: the
// replica does not start, and the host logs why at each attempt. So is a
// call that panics.
type StateMachineFactory func(shardID, replicaID uint64) StateMachine

// StateMachinePersistent is an on-disk guest state machine: it owns its
// storage and reports, from Open, the index of the last entry it applied, so
// that a restart replays only what came after. It keeps the contract of
// StateMachine (concurrency, determinism, panics, slices), and Sync is
// called one at a time with Update, PrepareSnapshot, RecoverFromSnapshot
// and Close.
type StateMachinePersistent interface {
	// Open opens the on-disk state and returns the index of the last entry
	// applied to it, 0 for a new one. Nothing else is called before Open
	// returns. The index must be stored atomically with the state it
	// applies: after a crash, a state without entry i must not hold an
	// entry after i. When stopc is closed (the replica is stopping) it may
	// return early with any error; another error stops the process, as
	// Dragonboat panics on an Open that fails.
	Open(stopc <-chan struct{}) (index uint64, err error)
	// Update applies entries in order and returns them with Result set.
	// It may make them durable at once, or leave that to Sync.
	Update(entries []Entry) []Entry
	// Query answers a read-only query; a nil result reads as a zero one.
	Query(ctx context.Context, query []byte) *Result
	// Watch streams results for query to results until ctx is done. ctx
	// also ends when the replica stops, and Close comes once Watch has
	// returned (or 10 s after ctx ended, with a warning logged). A nil
	// result is skipped. Watch must not close results.
	Watch(ctx context.Context, query []byte, results chan<- *Result)
	// Sync makes every applied entry durable. An error stops the
	// process: Dragonboat panics on it.
	Sync() error
	// PrepareSnapshot captures a point-in-time cursor while updates are
	// paused. An error stops the process: Dragonboat panics on it.
	PrepareSnapshot() (cursor any, err error)
	// SaveSnapshot writes the state captured by cursor to w. When close is
	// closed (the replica is stopping), or a write to w fails (the host a
	// snapshot streams to went away), it may return early with any error:
	// the agent reports w's.
	SaveSnapshot(cursor any, w io.Writer, close <-chan struct{}) error
	// RecoverFromSnapshot replaces the state with the snapshot read from r,
	// and like SaveSnapshot may return early with any error once close is
	// closed. Another error from either stops the process: Dragonboat
	// panics on a snapshot that fails.
	RecoverFromSnapshot(r io.Reader, close <-chan struct{}) error
	// Close releases resources held by the state machine. It is also
	// called, without Open, on one whose replica failed to start. An
	// error is logged by the agent; the replica stops all the same.
	Close() error
}

// StateMachinePersistentFactory builds the on-disk state machine of one
// replica. Keep each replica's state apart, by shard and replica ID: when a
// replica leaves a host, the agent removes Dragonboat's data but not the
// state machine's, and a later replica of the same shard on that host has
// another replica ID (Dragonboat stops a replica that opens at an index
// its log does not have). A replica of a shard opens its state machine
// only once that of the shard's previous replica on the host has closed,
// so the same replica started again finds its files closed. A nil state
// machine is refused as StateMachineFactory's is.
type StateMachinePersistentFactory func(shardID, replicaID uint64) StateMachinePersistent
