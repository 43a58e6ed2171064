package zongzi

import (
	"fmt"
	"path/filepath"
	"sync"
)

// dirsInUse holds the raft and WAL dirs of the agents of this process
// that have started and not stopped. Dragonboat locks its dirs with
// fcntl locks, which a process always gets again: a second agent on
// an agent's dir in the same process passed it, and the log storage's
// own lock then made Pebble panic while it cleaned up, which crashed
// the process.
var dirsInUse = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

// claimDirs records the agent's raft dir, and its WAL dir if it has its
// own, as in use by it, or fails with ErrInvalidConfig when another agent
// of this process uses one. releaseDirs gives them back.
func (a *Agent) claimDirs() error {
	var dirs []string
	for _, d := range []string{a.hostConfig.NodeHostDir, a.hostConfig.WALDir} {
		if d == "" {
			continue
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		dirs = append(dirs, abs)
	}
	dirsInUse.Lock()
	defer dirsInUse.Unlock()
	for _, d := range dirs {
		if dirsInUse.m[d] {
			return fmt.Errorf("%w: the dir %s is used by another agent of this process", ErrInvalidConfig, d)
		}
	}
	for _, d := range dirs {
		dirsInUse.m[d] = true
	}
	a.dirs = dirs
	return nil
}

// releaseDirs gives back the dirs claimDirs recorded.
func (a *Agent) releaseDirs() {
	dirsInUse.Lock()
	defer dirsInUse.Unlock()
	for _, d := range a.dirs {
		delete(dirsInUse.m, d)
	}
	a.dirs = nil
}
