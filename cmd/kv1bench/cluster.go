package main

import (
	"context"
	"fmt"
	"math/bits"
	"net/http"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

// shardName returns the name of the kv1 shard that holds key among n
// shards. It mirrors kv1's handler.shardFor: the high bits of xxh64(key)
// times n pick the shard, and kv1 orders its shards kv1-00001 onwards.
func shardName(key string, n int) string {
	hi, _ := bits.Mul64(xxhash.Sum64String(key), uint64(n))
	return fmt.Sprintf("kv1-%05d", hi+1)
}

// leads reports whether the node that answered st has the leader replica
// of the named shard.
func leads(st kv1proc.HostStatus, shard string) bool {
	for _, s := range st.Shards {
		if s.Name == shard {
			return s.Replica != 0 && s.Replica == s.Leader
		}
	}
	return false
}

// leaderOf polls /_status until a node says it leads the shard of key.
func leaderOf(ctx context.Context, c *kv1proc.Cluster, key string) (*kv1proc.Node, error) {
	shard := shardName(key, c.Shards)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		for _, n := range c.Nodes {
			actx, acancel := context.WithTimeout(ctx, time.Second)
			st, err := n.HostStatus(actx)
			acancel()
			if err == nil && leads(st, shard) {
				return n, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no node leads %s (key %s): %w", shard, key, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// put writes key=val on node n and returns the status code.
func put(ctx context.Context, client *http.Client, n *kv1proc.Node, key, val string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, n.URL(key+"?val="+val), nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// startCluster starts every node and returns how long it took from the
// start of the processes to the first successful PUT, retried on every
// node in turn.
func startCluster(ctx context.Context, c *kv1proc.Cluster, key string) (time.Duration, error) {
	start := time.Now()
	if err := c.StartAll(); err != nil {
		return 0, err
	}
	client := &http.Client{Timeout: time.Second}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for i := 0; ; i++ {
		if code, err := put(ctx, client, c.Nodes[i%len(c.Nodes)], key, "up"); err == nil && code == http.StatusOK {
			return time.Since(start), nil
		}
		for _, n := range c.Nodes {
			if n.PID() == 0 {
				return 0, fmt.Errorf("node %d exited while starting; see %s", n.N, n.Stderr)
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no successful PUT: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// leaderAndFollower returns the node with the leader replica of key's shard
// and another node, which has a follower replica of it.
func leaderAndFollower(ctx context.Context, c *kv1proc.Cluster, key string) (leader, follower *kv1proc.Node, err error) {
	leader, err = leaderOf(ctx, c, key)
	if err != nil {
		return nil, nil, err
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
