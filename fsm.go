package zongzi

import (
	"fmt"
	"io"
	"log/slog"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// primeFSM is the prime shard's state machine: the registry. It applies
// registry commands to the agent's store and saves and recovers snapshots in
// the JSON-lines format of State.Save.
type primeFSM struct {
	store *registry.Store
	log   *slog.Logger
}

var _ sm.IStateMachine = (*primeFSM)(nil)

// Update applies one registry command. A malformed command is rejected with
// a result (Value 0, Data the reason) and logged, never an error.
func (f *primeFSM) Update(e sm.Entry) (sm.Result, error) {
	r := f.store.Apply(e.Index, e.Cmd)
	if r.Value == 0 {
		f.log.Debug("zongzi: registry command rejected", "index", e.Index, "reason", string(r.Data))
	}
	return sm.Result{Value: r.Value, Data: r.Data}, nil
}

// Lookup returns a snapshot of the registry; reading it through SyncRead
// makes it linearizable.
func (f *primeFSM) Lookup(any) (any, error) {
	return f.store.State(), nil
}

// SaveSnapshot writes the registry in JSON lines.
func (f *primeFSM) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	if err := f.store.State().Save(w); err != nil {
		return fmt.Errorf("zongzi: save registry snapshot: %w", err)
	}
	return nil
}

// RecoverFromSnapshot replaces the registry with a saved one.
func (f *primeFSM) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	if err := f.store.Load(r); err != nil {
		return fmt.Errorf("zongzi: recover registry snapshot: %w", err)
	}
	return nil
}

// Close does nothing: the store belongs to the agent.
func (f *primeFSM) Close() error { return nil }
