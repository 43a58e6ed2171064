package main

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Platform is what the machine charges for the work every request does
// underneath kv1, measured in the run: a write's durability and the idle
// cluster's clock. The CPU per request of each row includes both.
type Platform struct {
	// FsyncUS and FsyncCPUUS are the wall and CPU time of one 4 KiB append
	// and fdatasync in the directory of the nodes' data, as a write-ahead
	// log pays it when it grows its file.
	FsyncUS    float64 `json:"fsyncUs"`
	FsyncCPUUS float64 `json:"fsyncCpuUs"`
	// OverwriteSyncUS and OverwriteSyncCPUUS are the same for a 4 KiB
	// overwrite of a block already written, as a log pays it in a file it
	// recycles: the file's size does not change, so the sync writes no
	// metadata.
	OverwriteSyncUS    float64 `json:"overwriteSyncUs"`
	OverwriteSyncCPUUS float64 `json:"overwriteSyncCpuUs"`
	// IdleCPUPct is the CPU the three nodes use together while no request
	// is sent, in percent of one core: Dragonboat's raft clock (a tick every
	// RTT for every replica, heartbeats, gossip).
	IdleCPUPct float64 `json:"idleCpuPct"`
	// IdleNodeCPUPct is each node's part of IdleCPUPct, node 1 first: under
	// a load, the rows' CPU by node shows what the nodes it is not sent to
	// use against this.
	IdleNodeCPUPct []float64 `json:"idleCpuPctByNode"`
}

// fsyncRounds is how many append-and-sync rounds the disk probe times.
const fsyncRounds = 400

// probeFsync times fsyncRounds writes of 4 KiB, each followed by
// fdatasync, in a new file in dir, and returns the wall and CPU time of one
// round: appends, or with overwrite, writes over the blocks of a file
// written and synced before. The CPU is this process's, system time
// included, and the probe runs while nothing else in it works.
func probeFsync(dir string, overwrite bool) (wall, cpu time.Duration, err error) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 4096)
	if overwrite {
		if _, err := f.Write(make([]byte, fsyncRounds*len(block))); err != nil {
			return 0, 0, fmt.Errorf("fsync probe: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("fsync probe: %w", err)
		}
	}
	cpu0, err := selfCPU()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	for i := range fsyncRounds {
		if overwrite {
			_, err = f.WriteAt(block, int64(i*len(block)))
		} else {
			_, err = f.Write(block)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("fsync probe: %w", err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return 0, 0, fmt.Errorf("fsync probe: %w", err)
		}
	}
	wall = time.Since(start)
	cpu1, err := selfCPU()
	if err != nil {
		return 0, 0, err
	}
	return wall / fsyncRounds, (cpu1 - cpu0) / fsyncRounds, nil
}

// selfCPU returns the user and system time this process has used.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// probeIdle returns the CPU each process uses over d while no load runs,
// in percent of one core.
func probeIdle(ctx context.Context, pids []int, d time.Duration) ([]float64, error) {
	before, err := cpuOf(pids)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(d):
	}
	after, err := cpuOf(pids)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	pct := make([]float64, len(pids))
	for i := range pids {
		pct[i] = 100 * float64(after[i]-before[i]) / float64(elapsed)
	}
	return pct, nil
}

// probePlatform measures the disk under root and the idle cluster.
func probePlatform(ctx context.Context, root string, pids []int) (Platform, error) {
	wall, cpu, err := probeFsync(root, false)
	if err != nil {
		return Platform{}, err
	}
	owall, ocpu, err := probeFsync(root, true)
	if err != nil {
		return Platform{}, err
	}
	idle, err := probeIdle(ctx, pids, idleWindow)
	if err != nil {
		return Platform{}, fmt.Errorf("idle probe: %w", err)
	}
	p := Platform{FsyncUS: us(wall), FsyncCPUUS: us(cpu), OverwriteSyncUS: us(owall), OverwriteSyncCPUUS: us(ocpu), IdleNodeCPUPct: idle}
	for _, pct := range idle {
		p.IdleCPUPct += pct
	}
	return p, nil
}

// idleWindow is how long the idle cluster's CPU is measured.
const idleWindow = 5 * time.Second

// us returns d in microseconds.
func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
