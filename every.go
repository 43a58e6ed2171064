package zongzi

import (
	"context"
	"time"
)

// every calls f every d, and each time wake receives, until ctx is done;
// the first call comes after d or at the first wake. A nil wake never
// receives.
func every(ctx context.Context, d time.Duration, wake <-chan struct{}, f func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
		f()
	}
}
