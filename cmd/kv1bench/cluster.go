package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

// put writes key=val on node n within a second and returns the status code.
func put(ctx context.Context, n *kv1proc.Node, key, val string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	r, err := n.Do(ctx, http.MethodPut, key+"?val="+val, nil)
	return r.Status, err
}

// createKey writes key=val on node n, trying again for up to 30 s until it
// is answered 200 or 409: an attempt that timed out or was answered 503
// may have written the key, and the next one is then answered 409, the
// key there all the same.
func createKey(ctx context.Context, n *kv1proc.Node, key, val string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		code, err := put(ctx, n, key, val)
		if err == nil && (code == http.StatusOK || code == http.StatusConflict) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("PUT %s on node %d: last answer %d, error %v: %w", key, n.N, code, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startCluster starts every node and returns how long it took from the
// start of the processes to the first successful PUT, retried on every
// node in turn.
func startCluster(ctx context.Context, c *kv1proc.Cluster, key string) (time.Duration, error) {
	start := time.Now()
	if err := c.StartAll(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	exited := func() error {
		if err := exitedNode(c); err != nil {
			return fmt.Errorf("starting: %w", err)
		}
		return nil
	}
	if err := firstPut(ctx, c.Nodes, key, exited); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// exitedNode returns an error naming the first of c's nodes that has
// exited, and its log, or nil while every node runs.
func exitedNode(c *kv1proc.Cluster) error {
	for _, n := range c.Nodes {
		if n.PID() == 0 {
			return fmt.Errorf("node %d exited; see %s", n.N, n.Stderr)
		}
	}
	return nil
}

// firstPut creates a key on nodes in turn, a new one (key-1, key-2, …) at
// each attempt, until one is answered 200, or exited, called after each
// failed attempt, returns an error. An attempt that timed out or was
// answered 503 may still have written its key, so that the same key,
// tried again, would be answered 409 for good.
func firstPut(ctx context.Context, nodes []*kv1proc.Node, key string, exited func() error) error {
	for i := 0; ; i++ {
		if code, err := put(ctx, nodes[i%len(nodes)], fmt.Sprintf("%s-%d", key, i+1), "up"); err == nil && code == http.StatusOK {
			return nil
		}
		if err := exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no successful PUT: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// leaderAndFollower returns the node with the leader replica of key's shard
// and another node, which has a follower replica of it.
func leaderAndFollower(ctx context.Context, c *kv1proc.Cluster, key string) (leader, follower *kv1proc.Node, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	leader, err = c.LeaderOf(ctx, kv1proc.ShardName(kv1proc.ShardOf(key, c.Shards)))
	if err != nil {
		return nil, nil, fmt.Errorf("key %s: %w", key, err)
	}
	follower = c.Nodes[0]
	if follower == leader {
		follower = c.Nodes[1]
	}
	return leader, follower, nil
}

// shardTerms returns the highest term each shard has on any node.
func shardTerms(ctx context.Context, c *kv1proc.Cluster) (map[uint64]uint64, error) {
	terms := map[uint64]uint64{}
	for _, n := range c.Nodes {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := n.HostStatus(actx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("node %d: status: %w", n.N, err)
		}
		for _, s := range st.Shards {
			terms[s.ID] = max(terms[s.ID], s.Term)
		}
	}
	return terms, nil
}

// elections returns how many terms the shards went through between two
// readings of shardTerms: each election a shard held, won or not.
func elections(before, after map[uint64]uint64) int {
	n := 0
	for id, t := range after {
		if b, ok := before[id]; ok && t > b {
			n += int(t - b)
		}
	}
	return n
}
