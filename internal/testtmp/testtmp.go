// Package testtmp gives a test binary its own temporary directory and
// removes those of test binaries that died without removing theirs.
//
// A test binary stopped by its -timeout panics and exits at once: Go runs
// no cleanup then, and every t.TempDir of the run stays behind. Run
// points TMPDIR (and so os.TempDir and t.TempDir) into a directory named
// after the binary's PID, and at each start removes the directories of
// PIDs no longer running.
package testtmp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// prefix starts the name of every directory Run makes, before the PID.
const prefix = "zongzi-test-"

// Run calls run(m), or m.Run when run is nil, with TMPDIR set to a new
// directory of this process, removed afterwards, and returns the exit
// code. Call it from TestMain before anything makes a temporary file.
func Run(m *testing.M, run func(*testing.M) int) int {
	base := os.TempDir()
	sweep(base)
	dir, err := os.MkdirTemp(base, fmt.Sprintf("%s%d-", prefix, os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "testtmp:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Setenv("TMPDIR", dir); err != nil {
		fmt.Fprintln(os.Stderr, "testtmp:", err)
		return 1
	}
	if run == nil {
		return m.Run()
	}
	return run(m)
}

// sweep removes the directories in base that Run made in processes that
// are gone.
func sweep(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := pidOf(e.Name())
		if ok && e.IsDir() && !alive(pid) {
			_ = os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
}

// pidOf reads the PID from a name Run made: prefix, PID, "-", random.
func pidOf(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	return pid, err == nil && pid > 0
}

// alive reports whether a process with this PID exists. A PID reused
// since by another process keeps the directory until a later sweep.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
