package main

import (
	"context"
	"sync"

	"github.com/zongzi-kv/zongzi"
)

// fakeClient is a shardClient over one real state machine, with a counter
// as the raft index: every proposal, accepted or rejected, takes the next
// index, as in a real shard.
type fakeClient struct {
	mu        sync.Mutex
	sm        zongzi.StateMachine
	index     uint64 // last index used
	proposals int    // Apply and Commit calls that reached the state machine
	reads     []string

	err      error // returned before proposing or reading
	errAfter error // returned after applying: the outcome is unknown to the caller
	block    bool  // wait for ctx to be done, then return ctx.Err()
}

var _ shardClient = (*fakeClient)(nil)

// newFakeClient returns a client whose first write gets index first.
func newFakeClient(first uint64) *fakeClient {
	return &fakeClient{sm: newStateMachine(1, 1), index: first - 1}
}

func (f *fakeClient) propose(ctx context.Context, cmd []byte) (zongzi.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return zongzi.Result{}, f.err
	}
	f.index++
	f.proposals++
	out := f.sm.Update([]zongzi.Entry{{Index: f.index, Cmd: cmd}})
	if f.block {
		f.mu.Unlock()
		<-ctx.Done()
		f.mu.Lock()
		return zongzi.Result{}, ctx.Err()
	}
	if f.errAfter != nil {
		return zongzi.Result{}, f.errAfter
	}
	return out[0].Result, nil
}

// Apply proposes cmd and returns its result.
func (f *fakeClient) Apply(ctx context.Context, cmd []byte) (uint64, []byte, error) {
	r, err := f.propose(ctx, cmd)
	return r.Value, r.Data, err
}

// Commit proposes cmd and drops its result.
func (f *fakeClient) Commit(ctx context.Context, cmd []byte) error {
	_, err := f.propose(ctx, cmd)
	return err
}

// Read queries the state machine, recording "read" or "stale".
func (f *fakeClient) Read(ctx context.Context, query []byte, stale bool) (uint64, []byte, error) {
	kind := "read"
	if stale {
		kind = "stale"
	}
	return f.query(ctx, kind, query)
}

// LeaderRead queries the state machine, recording "leader".
func (f *fakeClient) LeaderRead(ctx context.Context, query []byte) (uint64, []byte, error) {
	return f.query(ctx, "leader", query)
}

func (f *fakeClient) query(ctx context.Context, kind string, query []byte) (uint64, []byte, error) {
	f.mu.Lock()
	f.reads = append(f.reads, kind)
	err, block := f.err, f.block
	f.mu.Unlock()
	if err != nil {
		return 0, nil, err
	}
	if block {
		<-ctx.Done()
		return 0, nil, ctx.Err()
	}
	r := f.sm.Query(ctx, query)
	return r.Value, r.Data, nil
}

// counts returns the number of proposals and reads so far.
func (f *fakeClient) counts() (proposals, reads int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.proposals, len(f.reads)
}

// lastRead returns the kind of the last read.
func (f *fakeClient) lastRead() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reads) == 0 {
		return ""
	}
	return f.reads[len(f.reads)-1]
}
