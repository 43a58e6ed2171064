package main

import (
	"context"
	"sync/atomic"
	"time"
)

// requestDeadlines hands out the contexts that bound requests. Requests
// that start within one slot of width share a context whose deadline is
// timeout after the slot ends, so each gets between timeout and
// timeout+width, and none pays for a context and a timer of its own
// (BenchmarkHandlerGet: 4 allocations and about 400 ns less per request).
type requestDeadlines struct {
	timeout, width time.Duration
	cur            atomic.Pointer[deadlineSlot]
}

// deadlineSlot is the context shared by the requests that start before end.
// It ends at its deadline; cancel is kept with it only because a context's
// cancel function must not be dropped.
type deadlineSlot struct {
	ctx    context.Context
	cancel context.CancelFunc
	end    time.Time
}

// context returns the context of a request that starts now.
func (d *requestDeadlines) context() context.Context {
	now := time.Now()
	for {
		s := d.cur.Load()
		if s != nil && now.Before(s.end) {
			return s.ctx
		}
		end := now.Add(d.width)
		ctx, cancel := context.WithDeadline(context.Background(), end.Add(d.timeout))
		if d.cur.CompareAndSwap(s, &deadlineSlot{ctx: ctx, cancel: cancel, end: end}) {
			return ctx
		}
		cancel() // another request started a slot: use it if it covers now
	}
}
