package zongzi

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// replicaGuest is the state machine of a replica about to start, built
// from its type's factory before anything about the replica is proposed:
// one of memory and disk is set.
type replicaGuest struct {
	memory *memoryGuest
	disk   *diskGuest
}

// newReplicaGuest calls t's factory for r. A factory that returns nil (see
// isNil) is a configuration error: Dragonboat would panic the host on it.
// So is one that panics: the panic would stop this host, every replica on
// it, and again at each restart, and then every other host the shard is
// placed on.
// What the state machine reports and Dragonboat must not get goes to log.
func newReplicaGuest(t stateMachineType, r Replica, log *slog.Logger) (g replicaGuest, err error) {
	defer func() {
		if p := recover(); p != nil {
			g, err = replicaGuest{}, fmt.Errorf("%w: state machine factory panicked: %v", ErrInvalidConfig, p)
		}
	}()
	log = log.With("shard", r.ShardID, "replica", r.ID)
	if t.disk != nil {
		if s := t.disk(r.ShardID, r.ID); !isNil(s) {
			return replicaGuest{disk: newDiskGuest(s, log)}, nil
		}
	} else if s := t.memory(r.ShardID, r.ID); !isNil(s) {
		return replicaGuest{memory: newMemoryGuest(s, log)}, nil
	}
	return replicaGuest{}, fmt.Errorf("%w: state machine factory returned nil", ErrInvalidConfig)
}

// isNil reports whether a factory's state machine is nil: a nil interface,
// or one that holds a nil pointer (or map, slice, func or chan), as a
// factory that returns its constructor's result after a failure does. The
// first call to its methods would panic in Dragonboat's workers, as with
// a nil interface.
func isNil(s any) bool {
	if s == nil {
		return true
	}
	switch v := reflect.ValueOf(s); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

func (g replicaGuest) guest() *guest {
	if g.disk != nil {
		return &g.disk.guest
	}
	return &g.memory.guest
}

// start starts the replica on nh with this state machine. Dragonboat takes
// the state machine only once it cannot fail any more, so on an error it
// was not used and is closed here.
func (g replicaGuest) start(nh *dragonboat.NodeHost, members map[uint64]dragonboat.Target, join bool, cfg config.Config) error {
	var err error
	if g.disk != nil {
		err = nh.StartOnDiskReplica(members, join, func(uint64, uint64) sm.IOnDiskStateMachine { return g.disk }, cfg)
	} else {
		err = nh.StartConcurrentReplica(members, join, func(uint64, uint64) sm.IConcurrentStateMachine { return g.memory }, cfg)
	}
	if err != nil {
		return errors.Join(err, g.discard())
	}
	return nil
}

// discard closes a state machine whose replica did not start, and returns
// the error of its Close.
func (g replicaGuest) discard() error {
	g.guest().closeWatches()
	defer g.guest().closeDone()
	var err error
	if g.disk != nil {
		err = g.disk.sm.Close()
	} else {
		err = g.memory.sm.Close()
	}
	if err != nil {
		return fmt.Errorf("zongzi: close state machine: %w", err)
	}
	return nil
}
