// Package kv1proc runs kv1 clusters as real processes on loopback, for the
// end-to-end tests, the fault tests and the benchmark. It starts, kills,
// pauses and restarts nodes by PID, and stops every process it started.
package kv1proc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zongzi-kv/zongzi/internal/freeport"
)

// Zones of the peers, then of the nodes that join as non-voting.
var Zones = []string{"us-west-1a", "us-west-1c", "us-west-1f"}

// Region of every node.
const Region = "us-central1"

// Build compiles kv1 into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kv1")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./_examples/kv1")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kv1proc: build kv1: %w\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("kv1proc: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("kv1proc: not inside the zongzi module")
	}
	return filepath.Dir(mod), nil
}

// Node is one kv1 process and the settings to restart it.
type Node struct {
	N                     int // 1-based
	Dir                   string
	Raft, API, HTTP, Zone string
	Pprof                 string   // net/http/pprof address, empty for none
	Stderr                string   // path of the node's log file
	Stdout                string   // path of the node's stdout file
	Args                  []string // extra flags, after the cluster's (the last of a repeated flag wins)
	cmd                   *exec.Cmd
	done                  chan struct{}
}

// URL returns the node's HTTP URL for path (which starts with "/").
func (n *Node) URL(path string) string { return "http://" + n.HTTP + path }

// PID returns the process ID of the running node, 0 when it is not running.
func (n *Node) PID() int {
	if n.cmd == nil || n.cmd.Process == nil || n.exited() {
		return 0
	}
	return n.cmd.Process.Pid
}

func (n *Node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// Wait waits until node n's process, started by Start, exits, for as
// long as ctx allows, and returns its exit status (-1 if a signal ended
// it).
func (n *Node) Wait(ctx context.Context) (int, error) {
	if n.cmd == nil {
		return 0, fmt.Errorf("kv1proc: node %d was not started", n.N)
	}
	select {
	case <-n.done:
		return n.cmd.ProcessState.ExitCode(), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("kv1proc: node %d still running: %w", n.N, ctx.Err())
	}
}

// Cluster is a set of kv1 nodes sharing one peer list.
type Cluster struct {
	Bin    string
	Root   string // each node's data and logs live in Root/node-N
	Shards int
	Peers  []string
	Nodes  []*Node
	Args   []string // extra flags for every node
	// Detach lets the nodes outlive this process (kv1cluster start).
	// Otherwise, on Linux, a node is killed when this process dies, even
	// without Close.
	Detach bool
	mu     sync.Mutex
}

// New prepares (without starting) a cluster of peers voting nodes on free
// loopback ports, with data under root.
func New(bin, root string, peers, shards int) (*Cluster, error) {
	c := &Cluster{Bin: bin, Root: root, Shards: shards}
	for range peers {
		n, err := c.Add()
		if err != nil {
			return nil, err
		}
		c.Peers = append(c.Peers, n.API)
	}
	return c, nil
}

// Add prepares one more node; nodes after the peers join as non-voting.
func (c *Cluster) Add() (*Node, error) {
	ports, err := freeport.Addrs(4)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := len(c.Nodes) + 1
	dir := filepath.Join(c.Root, fmt.Sprintf("node-%d", i))
	n := &Node{
		N: i, Dir: dir, Zone: Zones[(i-1)%len(Zones)],
		Raft: ports[0], API: ports[1], HTTP: ports[2], Pprof: ports[3],
		Stderr: dir + ".log", Stdout: dir + ".out",
	}
	c.Nodes = append(c.Nodes, n)
	return n, nil
}

// Command returns the kv1 command line of node n, as the Makefile builds it.
func (c *Cluster) Command(n *Node) []string {
	args := []string{c.Bin, "-d", n.Dir, "-r", n.Raft, "-a", n.API, "-h", n.HTTP,
		"-p", strings.Join(c.Peers, ","), "-z", n.Zone, "-re", Region, "-s", fmt.Sprint(c.Shards)}
	if n.Pprof != "" {
		args = append(args, "-pprof", n.Pprof)
	}
	args = append(args, c.Args...)
	return append(args, n.Args...)
}

// Start starts node n's process, appending to its log files.
func (c *Cluster) Start(n *Node) error {
	if n.PID() != 0 {
		return fmt.Errorf("kv1proc: node %d already running", n.N)
	}
	if err := os.MkdirAll(filepath.Dir(n.Stderr), 0o755); err != nil {
		return err
	}
	stderr, err := os.OpenFile(n.Stderr, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	stdout, err := os.OpenFile(n.Stdout, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		stderr.Close()
		return err
	}
	args := c.Command(n)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = procAttr(c.Detach)
	if err := cmd.Start(); err != nil {
		stderr.Close()
		stdout.Close()
		return fmt.Errorf("kv1proc: start node %d: %w", n.N, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		stderr.Close()
		stdout.Close()
		close(done)
	}()
	n.cmd, n.done = cmd, done
	return nil
}

// StartAll starts every node that is not running.
func (c *Cluster) StartAll() error {
	for _, n := range c.Nodes {
		if n.PID() == 0 {
			if err := c.Start(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// Signal sends sig to node n's process.
func (c *Cluster) Signal(n *Node, sig syscall.Signal) error {
	pid := n.PID()
	if pid == 0 {
		return fmt.Errorf("kv1proc: node %d is not running", n.N)
	}
	return syscall.Kill(pid, sig)
}

// Pause stops node n with SIGSTOP and waits until every thread of it has
// stopped. The kernel stops a process's threads only as each one next
// runs: on a loaded machine some go on for milliseconds after kill
// returns, long enough to answer a raft message.
func (c *Cluster) Pause(n *Node) error {
	if err := c.Signal(n, syscall.SIGSTOP); err != nil {
		return err
	}
	pid := n.PID()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, err := stopped(pid)
		if err != nil {
			return fmt.Errorf("kv1proc: pause node %d: %w", n.N, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kv1proc: pause node %d: not stopped after 5 s", n.N)
		}
		time.Sleep(time.Millisecond)
	}
}

// Kill sends SIGKILL to node n and waits for it to exit.
func (c *Cluster) Kill(n *Node) error { return c.end(n, syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM to node n and waits for it to exit, killing it after
// the timeout.
func (c *Cluster) Stop(n *Node) error {
	if err := c.end(n, syscall.SIGTERM, 15*time.Second); err != nil {
		return c.Kill(n)
	}
	return nil
}

func (c *Cluster) end(n *Node, sig syscall.Signal, timeout time.Duration) error {
	if n.PID() == 0 {
		return nil
	}
	_ = syscall.Kill(n.cmd.Process.Pid, syscall.SIGCONT) // a paused node cannot exit
	if err := c.Signal(n, sig); err != nil {
		return err
	}
	select {
	case <-n.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("kv1proc: node %d did not exit after %v", n.N, sig)
	}
}

// Close kills every node still running. Tests defer it, so processes end
// even when a test fails.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		_ = c.Kill(n)
	}
}

// WaitHealthy waits until every given node answers /healthz with 200.
func (c *Cluster) WaitHealthy(ctx context.Context, nodes ...*Node) error {
	client := &http.Client{Timeout: time.Second}
	for _, n := range nodes {
		for {
			if n.exited() {
				return fmt.Errorf("kv1proc: node %d exited while starting; see %s", n.N, n.Stderr)
			}
			resp, err := client.Get(n.URL("/healthz"))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("kv1proc: node %d not healthy: %w", n.N, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
