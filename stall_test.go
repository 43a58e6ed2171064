package zongzi

import (
	"testing"
	"time"
)

func TestStallWatch(t *testing.T) {
	start := time.Unix(1000, 0)
	w := stallWatch{threshold: 100 * time.Millisecond, last: start}
	now := start
	check := func(after time.Duration, wantWarn bool, wantStalls int, wantWorst time.Duration) {
		t.Helper()
		now = now.Add(after)
		if got := w.observe(now); got != wantWarn {
			t.Errorf("check %v after the last: warn = %v, want %v", after, got, wantWarn)
		}
		if w.stalls != wantStalls || w.worst != wantWorst {
			t.Errorf("check %v after the last: stalls %d, worst %v; want %d, %v", after, w.stalls, w.worst, wantStalls, wantWorst)
		}
		if wantWarn {
			w.stalls, w.worst = 0, 0 // as runStallWatch does once it warned
		}
	}
	check(stallCheck, false, 0, 0)                     // on time
	check(stallCheck+99*time.Millisecond, false, 0, 0) // late, under the threshold
	check(stallCheck+300*time.Millisecond, true, 1, 300*time.Millisecond)
	check(stallCheck+150*time.Millisecond, false, 1, 150*time.Millisecond) // counted, not warned again yet
	check(stallCheck+400*time.Millisecond, false, 2, 400*time.Millisecond)
	check(stallWarnEvery, true, 3, stallWarnEvery-stallCheck) // the next warning carries the stalls since
	check(stallCheck+200*time.Millisecond, false, 1, 200*time.Millisecond)
	for range 96 { // on time, up to 9.9 s after the last warning
		check(stallCheck, false, 1, 200*time.Millisecond)
	}
	check(stallCheck, true, 1, 200*time.Millisecond) // a stall left over is told once 10 s have passed
	check(stallCheck, false, 0, 0)
}
