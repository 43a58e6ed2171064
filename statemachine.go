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
// Both cross the network unchanged when a call is forwarded to another host.
type Result struct {
	Value uint64
	Data  []byte
}

// StateMachine is an in-memory guest state machine. Update is called by one
// goroutine at a time; Query and Watch may run concurrently with Update and
// with each other, so the implementation synchronises its own state.
//
// Business rejections (a version mismatch, a malformed command) are result
// codes set in Entry.Result, never panics. Update returns every entry it was
// given, in order: Dragonboat stops the process with a panic when a batch
// fails to apply, and a different number of entries, or another order,
// fails it.
type StateMachine interface {
	// Update applies entries in order and returns them with Result set.
	Update(entries []Entry) []Entry
	// Query answers a read-only query. The returned Result may be reused by
	// the caller only until the next call.
	Query(ctx context.Context, query []byte) *Result
	// Watch streams results for query to results until ctx is done. ctx
	// also ends when the replica stops, and Close may come before Watch
	// has returned. A nil result is skipped.
	Watch(ctx context.Context, query []byte, results chan<- *Result)
	// PrepareSnapshot captures a point-in-time cursor while updates are paused.
	PrepareSnapshot() (cursor any, err error)
	// SaveSnapshot writes the state captured by cursor to w. When close is
	// closed (the replica is stopping) it may return early with any error.
	SaveSnapshot(cursor any, w io.Writer, close <-chan struct{}) error
	// RecoverFromSnapshot replaces the state with the snapshot read from r,
	// and like SaveSnapshot may return early with any error once close is
	// closed. Another error from either stops the process: Dragonboat
	// panics on a snapshot that fails.
	RecoverFromSnapshot(r io.Reader, close <-chan struct{}) error
	// Close releases resources held by the state machine.
	Close() error
}

// StateMachineFactory builds the state machine of one replica.
type StateMachineFactory func(shardID, replicaID uint64) StateMachine

// StateMachinePersistent is an on-disk guest state machine: it owns its
// storage and reports, from Open, the index of the last entry it applied, so
// that a restart replays only what came after.
type StateMachinePersistent interface {
	// Open opens the on-disk state and returns the last applied index.
	Open(stopc <-chan struct{}) (index uint64, err error)
	// Update applies entries in order and returns them with Result set.
	Update(entries []Entry) []Entry
	// Query answers a read-only query.
	Query(ctx context.Context, query []byte) *Result
	// Watch streams results for query to results until ctx is done. ctx
	// also ends when the replica stops, and Close may come before Watch
	// has returned. A nil result is skipped.
	Watch(ctx context.Context, query []byte, results chan<- *Result)
	// Sync makes every applied entry durable.
	Sync() error
	// PrepareSnapshot captures a point-in-time cursor.
	PrepareSnapshot() (cursor any, err error)
	// SaveSnapshot writes the state captured by cursor to w. When close is
	// closed (the replica is stopping) it may return early with any error.
	SaveSnapshot(cursor any, w io.Writer, close <-chan struct{}) error
	// RecoverFromSnapshot replaces the state with the snapshot read from r,
	// and like SaveSnapshot may return early with any error once close is
	// closed. Another error from either stops the process: Dragonboat
	// panics on a snapshot that fails.
	RecoverFromSnapshot(r io.Reader, close <-chan struct{}) error
	// Close releases resources held by the state machine.
	Close() error
}

// StateMachinePersistentFactory builds the on-disk state machine of one
// replica. Keep each replica's state apart, by shard and replica ID: when a
// replica leaves a host, the agent removes Dragonboat's data but not the
// state machine's, and a later replica of the same shard on that host has
// another replica ID (Dragonboat stops a replica that opens at an index
// its log does not have).
type StateMachinePersistentFactory func(shardID, replicaID uint64) StateMachinePersistent
