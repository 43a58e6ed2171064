package kv1proc

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNodeDiesWithItsParent starts a node from a child process that then
// exits without Close, as a test binary does on a -timeout panic: the node
// must not outlive it.
func TestNodeDiesWithItsParent(t *testing.T) {
	if dir, ok := os.LookupEnv("KV1PROC_TEST_PARENT"); ok {
		// The child: start a node, say its PID, exit without cleaning up.
		c := &Cluster{Bin: filepath.Join(dir, "node.sh"), Root: dir}
		n, err := c.Add()
		if err == nil {
			err = c.Start(n)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(n.PID())), 0o644)
		}
		if err != nil {
			os.Exit(3)
		}
		time.Sleep(200 * time.Millisecond)
		os.Exit(1)
	}
	if runtime.GOOS != "linux" {
		t.Skip("only Linux kills a child when its parent dies")
	}
	dir := t.TempDir()
	// A stand-in for kv1 that ignores its flags.
	if err := os.WriteFile(filepath.Join(dir, "node.sh"), []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestNodeDiesWithItsParent$")
	parent.Env = append(os.Environ(), "KV1PROC_TEST_PARENT="+dir)
	if err := parent.Run(); err == nil || parent.ProcessState.ExitCode() != 1 {
		t.Fatalf("parent: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil || pid <= 0 {
		t.Fatalf("pid file %q", b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // the node this test started
			t.Fatalf("node (PID %d) still runs 5 s after the process that started it exited", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(after, "Z")
}
