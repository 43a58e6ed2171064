package zongzi

import (
	"context"
	"time"
)

// every calls f every d until ctx is done; the first call comes after d.
func every(ctx context.Context, d time.Duration, f func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f()
		}
	}
}
