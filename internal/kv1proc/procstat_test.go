package kv1proc

import (
	"os/exec"
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
