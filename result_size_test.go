package zongzi_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi"
)

// testSizedType is the shard type of sizedSM.
const testSizedType = "zongzi://github.com/zongzi-kv/zongzi/test/sized"

// sizedSM is logSM whose results are as large as asked: a command or a
// query that is a decimal number n gets n bytes of Data back (a watch,
// one such result), anything else logSM's answer.
type sizedSM struct{ logSM }

func newSizedSM(_, replicaID uint64) zongzi.StateMachine {
	return &sizedSM{logSM: logSM{replica: strconv.AppendUint(nil, replicaID, 10)}}
}

// sized returns the n bytes that b, a decimal number n, asks for.
func sized(b []byte) ([]byte, bool) {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		return nil, false
	}
	return bytes.Repeat([]byte{'x'}, n), true
}

func (s *sizedSM) Update(entries []zongzi.Entry) []zongzi.Entry {
	entries = s.logSM.Update(entries)
	for i := range entries {
		if d, ok := sized(entries[i].Cmd); ok {
			entries[i].Result.Data = d
		}
	}
	return entries
}

func (s *sizedSM) Query(ctx context.Context, q []byte) *zongzi.Result {
	if d, ok := sized(q); ok {
		return &zongzi.Result{Value: 1, Data: d}
	}
	return s.logSM.Query(ctx, q)
}

func (s *sizedSM) Watch(ctx context.Context, q []byte, results chan<- *zongzi.Result) {
	if d, ok := sized(q); ok {
		select {
		case results <- &zongzi.Result{Value: 1, Data: d}:
		case <-ctx.Done():
		}
	}
	<-ctx.Done()
}

// TestForwardedResultTooLarge: a result over the bus's message limit
// (5 MiB here) cannot be carried back to a host that forwarded the call.
// For a write the outcome is known, whatever the size: it applied, once,
// and its caller hears so (ErrResultTooLarge, with the result's value),
// not that its outcome is unknown (it would read the state to find out,
// or write again), nor that it was too large (not proposed). A read or a
// watch is refused with ErrTooLarge. On a host with a replica the same
// calls get the whole result.
func TestForwardedResultTooLarge(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c", "d")
	for _, n := range c.nodes {
		n.register = func(a *zongzi.Agent) error { return a.StateMachineRegister(testSizedType, newSizedSM) }
	}
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	s := c.createActive(ctx, c.nodes[0].agent, testSizedType, "sized")
	var in, out *zongzi.Agent
	for _, n := range c.nodes {
		if len(replicasOn(n.agent, s.ID)) == 0 {
			out = n.agent
		} else {
			in = n.agent
		}
	}
	if out == nil {
		t.Fatal("every host has a replica of the shard")
	}
	writeEventually(ctx, t, out, s.ID, "a first write through the host without a replica")
	const large = 5 << 20
	big := []byte(strconv.Itoa(large))
	count := func() uint64 {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		n, _, err := out.Client(s.ID).Read(rctx, nil, false)
		if err != nil {
			t.Fatalf("read the count: %v", err)
		}
		return n
	}

	before := count()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	value, _, err := out.Client(s.ID).Apply(actx, big)
	acancel()
	if !errors.Is(err, zongzi.ErrResultTooLarge) || errors.Is(err, zongzi.ErrOutcomeUnknown) || errors.Is(err, zongzi.ErrTooLarge) {
		t.Fatalf("forwarded apply with a 5 MiB result: %v, want ErrResultTooLarge, and neither ErrOutcomeUnknown nor ErrTooLarge", err)
	}
	if got := count(); got != before+1 {
		t.Fatalf("%d commands applied by the forwarded apply, want 1", got-before)
	}
	// The result's value comes back: the entry's index, as sizedSM says.
	ictx, icancel := context.WithTimeout(ctx, 10*time.Second)
	index, err := out.Client(s.ID).Index(ictx)
	icancel()
	if err != nil || value != index {
		t.Fatalf("the forwarded apply's value is %d, want its index %d (%v)", value, index, err)
	}

	// The commit of the same command has no result to carry.
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	err = out.Client(s.ID).Commit(cctx, big)
	ccancel()
	if err != nil {
		t.Fatalf("forwarded commit of a command with a 5 MiB result: %v", err)
	}

	for _, stale := range []bool{false, true} {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		_, _, err := out.Client(s.ID).Read(rctx, big, stale)
		rcancel()
		if !errors.Is(err, zongzi.ErrTooLarge) {
			t.Fatalf("forwarded read (stale=%v) of a 5 MiB result: %v, want ErrTooLarge", stale, err)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	err = out.Client(s.ID).Watch(wctx, big, make(chan *zongzi.Result, 1), true)
	wcancel()
	// The serving host says so rather than send it: the caller's gRPC
	// would refuse the message once it came whole.
	if !errors.Is(err, zongzi.ErrTooLarge) || !strings.Contains(err.Error(), "over the bus's message limit") {
		t.Fatalf("forwarded watch of a 5 MiB result: %v, want ErrTooLarge, over the bus's message limit", err)
	}

	// A replica here hands its results over whole.
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	defer lcancel()
	if _, d, err := in.Client(s.ID).Apply(lctx, big); err != nil || len(d) != large {
		t.Fatalf("local apply: %d bytes, %v; want %d bytes", len(d), err, large)
	}
	if _, d, err := in.Client(s.ID).Read(lctx, big, false); err != nil || len(d) != large {
		t.Fatalf("local read: %d bytes, %v; want %d bytes", len(d), err, large)
	}
}
