// Command kv1cluster starts a local 3-node kv1 cluster in the background on
// the ports of the example's Makefile (HTTP 8001-8003), waits until it
// serves and prints its URLs; `kv1cluster stop` stops it by PID. The root
// Makefile's `make run` and `make stop` call it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "zongzi-run"), "data, logs and PID files")
	shards := flag.Int("s", 4, "number of kv shards")
	wait := flag.Duration("wait", time.Minute, "how long to wait for the cluster to serve")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: kv1cluster [flags] start|stop")
		flag.PrintDefaults()
	}
	flag.Parse()
	var err error
	switch flag.Arg(0) {
	case "start":
		err = start(*dir, *shards, *wait)
	case "stop":
		err = stop(*dir)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kv1cluster:", err)
		os.Exit(1)
	}
}

// cluster returns the three peers on the Makefile's ports.
func cluster(bin, dir string, shards int) *kv1proc.Cluster {
	c := &kv1proc.Cluster{Bin: bin, Root: dir, Shards: shards, Detach: true}
	for i := 1; i <= 3; i++ {
		node := filepath.Join(dir, fmt.Sprintf("node-%d", i))
		n := &kv1proc.Node{
			N: i, Dir: node, Zone: kv1proc.Zones[i-1],
			Raft: fmt.Sprintf("127.0.0.1:170%d2", i), API: fmt.Sprintf("127.0.0.1:170%d3", i),
			HTTP:   fmt.Sprintf("127.0.0.1:800%d", i),
			Stderr: node + ".log", Stdout: node + ".out",
		}
		c.Nodes = append(c.Nodes, n)
		c.Peers = append(c.Peers, n.API)
	}
	return c
}

// logSizes returns the size of each node's log before this start: the logs
// are appended to.
func logSizes(c *kv1proc.Cluster) []int64 {
	sizes := make([]int64, len(c.Nodes))
	for i, n := range c.Nodes {
		if fi, err := os.Stat(n.Stderr); err == nil {
			sizes[i] = fi.Size()
		}
	}
	return sizes
}

// withLastErrors adds to err the last error each node logged since this
// start, and how to start afresh: a node that refuses its data dir (one
// written by a kv1 with other settings) says so in its log, and the next
// start would too.
func withLastErrors(err error, c *kv1proc.Cluster, logged []int64, dir string) error {
	var b strings.Builder
	for i, n := range c.Nodes {
		if line := lastError(n.Stderr, logged[i]); line != "" {
			fmt.Fprintf(&b, "\nnode %d: %s", n.N, line)
		}
	}
	if b.Len() == 0 {
		return err
	}
	return fmt.Errorf("%w%s\nto start afresh, remove the cluster's data: rm -rf %s", err, b.String(), dir)
}

// lastError returns the last line with an error that the log at path got
// after its first from bytes.
func lastError(path string, from int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < from {
		return ""
	}
	var last string
	for line := range strings.Lines(string(b[from:])) {
		if strings.Contains(line, "level=ERROR") {
			last = strings.TrimSpace(line)
		}
	}
	return last
}

func pidFile(dir string, n *kv1proc.Node) string {
	return filepath.Join(dir, fmt.Sprintf("node-%d.pid", n.N))
}

func start(dir string, shards int, wait time.Duration) error {
	c := cluster("", dir, shards)
	for _, n := range c.Nodes {
		if pid, ok := readPID(pidFile(dir, n)); ok && isNode(pid, dir, n) {
			return fmt.Errorf("node %d is already running (PID %d); run `make stop` first", n.N, pid)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bin, err := kv1proc.Build(ctx, dir)
	if err != nil {
		return err
	}
	c.Bin = bin
	logged := logSizes(c)
	for _, n := range c.Nodes {
		if err := c.Start(n); err != nil {
			c.Close()
			return err
		}
		if err := os.WriteFile(pidFile(dir, n), []byte(strconv.Itoa(n.PID())+"\n"), 0o644); err != nil {
			c.Close()
			return err
		}
	}
	if err := c.WaitHealthy(ctx, c.Nodes...); err != nil {
		c.Close()
		return withLastErrors(err, c, logged, dir)
	}
	fmt.Println("kv1 cluster is serving:")
	for _, n := range c.Nodes {
		fmt.Printf("  node %d  %s  (PID %d, log %s)\n", n.N, n.URL("/"), n.PID(), n.Stderr)
	}
	fmt.Printf("try:   curl -X PUT \"%s\"\n", c.Nodes[0].URL("/testkey?val=testvalue"))
	fmt.Printf("       curl \"%s\"\n", c.Nodes[1].URL("/testkey?stale=true"))
	fmt.Println("stop:  make stop")
	return nil
}

func stop(dir string) error {
	c := cluster("", dir, 0)
	var errs []error
	for _, n := range c.Nodes {
		path := pidFile(dir, n)
		pid, ok := readPID(path)
		if !ok {
			continue
		}
		if !isNode(pid, dir, n) {
			// The node is gone; its PID may have been reused by a process
			// that is not ours to stop.
			fmt.Printf("node %d (PID %d) is not running\n", n.N, pid)
			os.Remove(path)
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err == nil {
			for i := 0; i < 150 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
			if syscall.Kill(pid, 0) == nil {
				errs = append(errs, fmt.Errorf("node %d (PID %d) did not stop within 15 s", n.N, pid))
				continue
			}
			fmt.Printf("stopped node %d (PID %d)\n", n.N, pid)
		}
		os.Remove(path)
	}
	return errors.Join(errs...)
}

// isNode reports whether process pid is node n of the cluster in dir: a
// PID file outlives its process, and the PID may since have been given to
// another.
func isNode(pid int, dir string, n *kv1proc.Node) bool {
	var args []string
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		args = strings.Split(string(b), "\x00")
	} else if _, err := os.Stat("/proc/self"); err == nil {
		return false // no such process
	} else if out, err := exec.Command("ps", "-o", "args=", "-p", strconv.Itoa(pid)).Output(); err == nil {
		args = strings.Fields(string(out)) // no /proc (macOS); paths without spaces
	}
	return len(args) >= 3 && args[0] == filepath.Join(dir, "kv1") && args[1] == "-d" && args[2] == n.Dir
}

func readPID(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0
}
