package zongzi

import (
	"context"
	"time"
)

// every calls f at once, then again every d and whenever wake's channel or
// kick receives, until ctx is done. wake, unless nil, is asked for its
// channel before each call, so that a change made while f runs wakes the
// next one (the registry's Changed, say); a nil wake never wakes. kick is
// for wake-ups that are not registry changes: a buffered channel of one,
// sent to without blocking, keeps one made while f runs; nil never wakes.
func every(ctx context.Context, d time.Duration, wake func() <-chan struct{}, kick <-chan struct{}, f func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		var woken <-chan struct{}
		if wake != nil {
			woken = wake()
		}
		f()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-woken:
		case <-kick:
		}
	}
}
