package zongzi_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// testNilType is the shard type whose factory returns nil, as a faulty one
// may; nilFactoryCalls counts its calls.
const testNilType = "zongzi://github.com/zongzi-kv/zongzi/test/nil"

var nilFactoryCalls atomic.Int64

func newNilSM(_, _ uint64) zongzi.StateMachine {
	nilFactoryCalls.Add(1)
	return nil
}

// TestNilStateMachineIsRefused: a replica whose factory returns nil does
// not start, and its host lives on (Dragonboat would panic the process on
// a nil state machine) and runs other shards.
func TestNilStateMachineIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, a := startOne(ctx, t)
	defer c.stop()
	checkFactoryRefused(ctx, t, a, testNilType, &nilFactoryCalls)
}

// checkFactoryRefused creates a shard of shardType, whose factory calls
// counts, on a, the only host, and checks that its replica is never
// started but tried again, and that a goes on running other shards.
func checkFactoryRefused(ctx context.Context, t *testing.T, a *zongzi.Agent, shardType string, calls *atomic.Int64) {
	t.Helper()
	before := calls.Load()
	s, _, err := a.ShardCreate(ctx, shardType, zongzi.WithName("refused "+shardType), zongzi.WithPlacementMembers(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "a second attempt to start the replica", func() bool { return calls.Load() >= before+2 })
	reps := a.State().ShardReplicas(s.ID)
	if len(reps) != 1 || reps[0].Status != zongzi.ReplicaStatusNew {
		t.Fatalf("replicas %+v, want one, new: it never started", reps)
	}
	if st := a.Status(); st != zongzi.AgentStatusReady {
		t.Fatalf("agent %v, want ready", st)
	}
	ok, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("after "+shardType), zongzi.WithPlacementMembers(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "a shard of another type active", func() bool { return allActive(a.State(), ok.ID, 1) })
}

// testPanicType is the shard type whose factory panics, as a faulty one
// may; panicFactoryCalls counts its calls.
const testPanicType = "zongzi://github.com/zongzi-kv/zongzi/test/panic"

var panicFactoryCalls atomic.Int64

func newPanicSM(_, _ uint64) zongzi.StateMachine {
	panicFactoryCalls.Add(1)
	panic("factory fails")
}

// TestPanickingFactoryIsRefused: a replica whose factory panics does not
// start, as one whose factory returns nil, and its host lives on and runs
// other shards. The panic used to stop the host's process, and then that
// of every host the shard was placed on.
func TestPanickingFactoryIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newCluster(t, "a")
	c.nodes[0].register = func(a *zongzi.Agent) error { return a.StateMachineRegister(testPanicType, newPanicSM) }
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	checkFactoryRefused(ctx, t, c.nodes[0].agent, testPanicType, &panicFactoryCalls)
}

// testNilPointerType is the shard type whose factory returns a nil
// pointer in a non-nil StateMachine, as a factory that returns its
// constructor's result after a failure may; nilPointerFactoryCalls counts
// its calls.
const testNilPointerType = "zongzi://github.com/zongzi-kv/zongzi/test/nil-pointer"

var nilPointerFactoryCalls atomic.Int64

func newNilPointerSM(_, _ uint64) zongzi.StateMachine {
	nilPointerFactoryCalls.Add(1)
	var s *logSM // the constructor failed
	return s
}

// testNilPointerDiskType is testNilPointerType's persistent counterpart.
const testNilPointerDiskType = "zongzi://github.com/zongzi-kv/zongzi/test/nil-pointer-disk"

var nilPointerDiskFactoryCalls atomic.Int64

func newNilPointerDiskSM(_, _ uint64) zongzi.StateMachinePersistent {
	nilPointerDiskFactoryCalls.Add(1)
	var s *diskSM
	return s
}

// TestNilPointerStateMachineIsRefused: a nil pointer is refused as a nil
// state machine is, in-memory or persistent. It used to start: the
// persistent one's Open, or the in-memory one's first Update, panicked the
// host's process in a Dragonboat worker, again at each restart, and on
// every host the shard was placed on.
func TestNilPointerStateMachineIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newCluster(t, "a")
	c.nodes[0].register = func(a *zongzi.Agent) error {
		return errors.Join(a.StateMachineRegister(testNilPointerType, newNilPointerSM),
			a.StateMachineRegisterPersistent(testNilPointerDiskType, newNilPointerDiskSM))
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	checkFactoryRefused(ctx, t, c.nodes[0].agent, testNilPointerType, &nilPointerFactoryCalls)
	checkFactoryRefused(ctx, t, c.nodes[0].agent, testNilPointerDiskType, &nilPointerDiskFactoryCalls)
}
