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
		stalls, worst, warn := w.observe(now)
		if warn != wantWarn {
			t.Errorf("check %v after the last: warn = %v, want %v", after, warn, wantWarn)
		}
		if !warn { // still counting: what the next warning would carry
			stalls, worst = w.stalls, w.worst
		}
		if stalls != wantStalls || worst != wantWorst {
			t.Errorf("check %v after the last: stalls %d, worst %v; want %d, %v", after, stalls, worst, wantStalls, wantWorst)
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
