package kv1proc

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStopped watches a child process run, stop on SIGSTOP and run again
// on SIGCONT.
func TestStopped(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	pid := cmd.Process.Pid
	want := func(what string, state bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, err := stopped(pid)
			if err != nil {
				t.Fatal(err)
			}
			if got == state {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: stopped = %v after 5 s", what, got)
			}
			time.Sleep(time.Millisecond)
		}
	}
	want("running", false)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	want("after SIGSTOP", true)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	want("after SIGCONT", false)
}

// TestDiskUsage: the size is what the files hold, without the
// directories (4 KiB each on ext4, a third of a small node's data dir);
// the allocated space counts them, as du does.
func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "f"), filepath.Join(sub, "g")} {
		if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	allocated, size, err := DiskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if size != 20 {
		t.Errorf("size of two 10-byte files in 3 directories = %d, want 20", size)
	}
	if allocated < size {
		t.Errorf("allocated %d < size %d", allocated, size)
	}
}
