package test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

// e2eShardCount starts nodes with another shard count (-s) than the
// cluster's: a new node with more shards and a peer restarted with fewer.
// Each must exit at start-up with the error on stderr and create no
// shard; the cluster goes on as before, and the peer started again with
// the cluster's count rejoins and serves.
func e2eShardCount(t *testing.T, bin string) {
	c := e2eStart(t, bin)
	n1, n3 := c.Nodes[0], c.Nodes[2]
	rec := e2eExpectRecord(t, "create", e2ePut(t, n1, "/shardkey?val=v"), "/shardkey", "v")

	n4, err := c.Add()
	if err != nil {
		t.Fatal(err)
	}
	n4.Args = []string{"-s", strconv.Itoa(2 * e2eShards)}
	e2eExpectRefused(t, c, n4, 2*e2eShards)

	if err := c.Stop(n3); err != nil {
		t.Fatal(err)
	}
	n3.Args = []string{"-s", strconv.Itoa(e2eShards - 2)}
	e2eExpectRefused(t, c, n3, e2eShards-2)

	reg := e2eGetRegistry(t, n1)
	if reg.Header.Shards != 1+e2eShards {
		t.Fatalf("registry has %d shards after the refused nodes, want %d", reg.Header.Shards, 1+e2eShards)
	}
	for _, s := range reg.Shards[1:] {
		if s.Tags["kv1:shards"] != strconv.Itoa(e2eShards) {
			t.Errorf("shard %s tags %v, want kv1:shards=%d", s.Name, s.Tags, e2eShards)
		}
	}

	n3.Args = nil
	if err := c.Start(n3); err != nil {
		t.Fatal(err)
	}
	e2eWaitHealthy(t, c, n3)
	e2eReadAll(t, c.Nodes[:3], rec)
}

// e2eExpectRefused starts node n, whose -s is shards where the cluster's
// is e2eShards, and waits for it to exit with status 1, saying why on
// stderr.
func e2eExpectRefused(t *testing.T, c *kv1proc.Cluster, n *kv1proc.Node, shards int) {
	t.Helper()
	if err := c.Start(n); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), e2eStartTimeout)
	defer cancel()
	code, err := n.Wait(ctx)
	if err != nil {
		t.Fatalf("node %d with -s %d: %v", n.N, shards, err)
	}
	stderr, err := os.ReadFile(n.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("-s %d, but the cluster has %d kv shards (tag kv1:shards=%d on kv1-00001); start kv1 with -s %d",
		shards, e2eShards, e2eShards, e2eShards)
	if code != 1 || !strings.Contains(string(stderr), want) {
		t.Fatalf("node %d with -s %d: exit status %d, want 1 and %q on stderr:\n%s",
			n.N, shards, code, want, e2eTail(n.Stderr, e2eLogTail))
	}
}

// e2eOtherCluster restarts a peer on its data dir under another cluster
// name (-n): it must exit at start-up with the error on stderr instead of
// rejoining the cluster its data belongs to, and start again under the
// cluster's name.
func e2eOtherCluster(t *testing.T, bin string) {
	c := e2eStart(t, bin)
	n3 := c.Nodes[2]
	if err := c.Stop(n3); err != nil {
		t.Fatal(err)
	}
	n3.Args = []string{"-n", "other"}
	if err := c.Start(n3); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), e2eStartTimeout)
	defer cancel()
	code, err := n3.Wait(ctx)
	if err != nil {
		t.Fatalf("node 3 with -n other: %v", err)
	}
	stderr, err := os.ReadFile(n3.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	want := `holds a host of cluster \"kv1\", not \"other\"` // as slog quotes it
	if code != 1 || !strings.Contains(string(stderr), want) {
		t.Fatalf("node 3 with -n other: exit status %d, want 1 and %q on stderr:\n%s", code, want, e2eTail(n3.Stderr, e2eLogTail))
	}
	n3.Args = nil
	if err := c.Start(n3); err != nil {
		t.Fatal(err)
	}
	e2eWaitHealthy(t, c, n3)
}
