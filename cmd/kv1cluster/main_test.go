package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestStopLeavesOtherProcesses gives stop PID files whose processes are not
// the cluster's nodes, as when a node died and its PID was reused: stop must
// leave them running, and start must not take them for running nodes.
func TestStopLeavesOtherProcesses(t *testing.T) {
	dir := t.TempDir()
	c := cluster(filepath.Join(dir, "kv1"), dir, 4)
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = other.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = other.Process.Kill() // the process this test started
		<-exited
	})
	for _, n := range c.Nodes {
		if err := os.WriteFile(pidFile(dir, n), []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if isNode(other.Process.Pid, dir, n) {
			t.Errorf("node %d: sleep taken for the node", n.N)
		}
	}
	if err := stop(dir); err != nil {
		t.Errorf("stop: %v", err)
	}
	select {
	case <-exited:
		t.Fatal("stop signalled a process that is not a node")
	case <-time.After(200 * time.Millisecond):
	}
	for _, n := range c.Nodes {
		if _, err := os.Stat(pidFile(dir, n)); err == nil {
			t.Errorf("node %d: stale PID file kept", n.N)
		}
	}
}
