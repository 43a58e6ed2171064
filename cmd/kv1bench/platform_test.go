package main

import (
	"context"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestProbeFsync(t *testing.T) {
	for _, overwrite := range []bool{false, true} {
		dir := t.TempDir()
		wall, cpu, err := probeFsync(dir, overwrite)
		if err != nil {
			t.Fatal(err)
		}
		if wall <= 0 || cpu < 0 || cpu > 10*wall+time.Millisecond {
			t.Errorf("one write and sync (overwrite %v): wall %v, CPU %v", overwrite, wall, cpu)
		}
		left, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("the probe (overwrite %v) left %d files behind", overwrite, len(left))
		}
	}
}

// TestProbeIdle measures this process while one goroutine spins: the
// probe must see it working.
func TestProbeIdle(t *testing.T) {
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			runtime.Gosched()
		}
	}()
	pcts, err := probeIdle(context.Background(), []int{os.Getpid()}, 300*time.Millisecond)
	stop.Store(true)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if len(pcts) != 1 {
		t.Fatalf("one process measured as %d", len(pcts))
	}
	if pct := pcts[0]; pct <= 0 || pct > 100*float64(runtime.NumCPU())+1 {
		t.Errorf("a spinning goroutine measured at %.1f%% of a core", pct)
	}
}
