package kv1proc

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"
)

// ShardName is the name kv1 gives its i-th kv shard, counting from 0:
// kv1-00001 onwards.
func ShardName(i int) string { return fmt.Sprintf("kv1-%05d", i+1) }

// ShardOf returns the index of the kv shard that holds key among n, as
// kv1's handler places keys: the high bits of xxh64(key) times n (a test
// of kv1's checks that the two agree).
func ShardOf(key string, n int) int {
	hi, _ := bits.Mul64(xxhash.Sum64String(key), uint64(n))
	return int(hi)
}

// Leading returns the names of the shards whose leader is the answering
// node's replica.
func (s HostStatus) Leading() []string {
	var names []string
	for _, sh := range s.Shards {
		if sh.Replica != 0 && sh.Replica == sh.Leader {
			names = append(names, sh.Name)
		}
	}
	return names
}

// LeaderOf polls the running nodes' /_status until one says it leads the
// named shard, for as long as ctx allows.
func (c *Cluster) LeaderOf(ctx context.Context, shard string) (*Node, error) {
	for {
		for _, n := range c.Nodes {
			if n.PID() == 0 {
				continue
			}
			actx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := n.HostStatus(actx)
			cancel()
			if err == nil && slices.Contains(st.Leading(), shard) {
				return n, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("kv1proc: no node leads %s: %w", shard, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
