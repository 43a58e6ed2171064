package kv1proc

import (
	"errors"
	"fmt"
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

// TestProcessCPUOfAnExitedProcess: a process that has exited has no CPU
// time to charge, even while its zombie still shows it in /proc.
func TestProcessCPUOfAnExitedProcess(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if _, err := ProcessCPU(pid); err != nil {
		t.Fatalf("a running process: %v", err)
	}
	// Killed but not waited for: a zombie.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, err := statFields(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		if f[0] == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %s 5 s after SIGKILL", f[0])
		}
		time.Sleep(time.Millisecond)
	}
	if d, err := ProcessCPU(pid); !errors.Is(err, ErrExited) {
		t.Errorf("a zombie: %v, %v; want ErrExited", d, err)
	}
	cmd.Wait()
	if d, err := ProcessCPU(pid); !errors.Is(err, ErrExited) {
		t.Errorf("a process waited for: %v, %v; want ErrExited", d, err)
	}
}
