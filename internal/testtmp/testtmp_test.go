package testtmp

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m, nil)) }

// TestSweepRemovesOnlyDeadProcessesDirs: a directory named for a process
// that has exited is removed, those of live processes and other names
// are kept.
func TestSweepRemovesOnlyDeadProcessesDirs(t *testing.T) {
	base := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := prefix + strconv.Itoa(cmd.Process.Pid) + "-1"
	live := prefix + strconv.Itoa(os.Getpid()) + "-2"
	for _, name := range []string{dead, live, "zongzi-test-bin123", "other"} {
		if err := os.MkdirAll(filepath.Join(base, name, "raft"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sweep(base)
	for name, want := range map[string]bool{dead: false, live: true, "zongzi-test-bin123": true, "other": true} {
		_, err := os.Stat(filepath.Join(base, name))
		if got := err == nil; got != want {
			t.Errorf("%s present: %v, want %v", name, got, want)
		}
	}
}

// TestRunSetsTMPDIR: temporary directories of the run are inside the
// directory Run made for this process.
func TestRunSetsTMPDIR(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Base(filepath.Dir(filepath.Dir(dir)))
	if pid, ok := pidOf(parent); !ok || pid != os.Getpid() {
		t.Fatalf("t.TempDir() is %s, not in a directory of PID %d", dir, os.Getpid())
	}
}
