package registry

import (
	"fmt"
	"strings"
)

// Result is the outcome of Store.Apply, returned by the prime shard's state
// machine as its Raft result.
//
// An accepted command has a non-zero Value: the shard ID for OpShardPut,
// the replica ID for OpReplicaPut, the number of commands for OpBatch, and 1
// for every other op. For OpShardPut, Data is one byte: 1 when the shard
// was created, 0 when a shard with its name already existed. A rejected
// command has Value 0 and Data holding the reason ("registry: ...").
type Result struct {
	Value uint64
	Data  []byte
}

// Err returns nil for an accepted command, else an error wrapping
// ErrRejected with the reason.
func (r Result) Err() error {
	if r.Value != 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrRejected, strings.TrimPrefix(string(r.Data), "registry: "))
}

// rejected returns the Result of a command rejected for err.
func rejected(err error) Result {
	return Result{Data: []byte(err.Error())}
}
