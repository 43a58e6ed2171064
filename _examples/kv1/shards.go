package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// tagShards is the tag on each kv shard that records the cluster's shard
// count (-s). Keys are placed by a hash of the key over that many shards,
// so a node with another count would read and write other shards than the
// rest of the cluster, silently; it refuses to serve instead.
const tagShards = "kv1:shards"

// errShardCount is the error of a node whose -s disagrees with the
// cluster's shard count.
var errShardCount = errors.New("kv1: shard count (-s) disagrees with the cluster's")

// shardName returns the name of the i-th kv shard, counting from 1.
func shardName(i int) string { return fmt.Sprintf("kv1-%05d", i) }

// shardIndex returns i for the name of the i-th kv shard, and whether name
// is one.
func shardIndex(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "kv1-")
	if !ok || len(digits) != 5 {
		return 0, false
	}
	i, err := strconv.Atoi(digits)
	return i, err == nil && i >= 1 && shardName(i) == name
}

// createShards creates (or finds, when another node did) the kv shards,
// kv1-00001 onwards, each with one voting member per zone of the region
// and the shard count in its tagShards tag. The first node to create a
// shard records the count; a node whose -s disagrees with it gets an error
// wrapping errShardCount. Shards are created in order and each is checked
// before the next is created, so such a node learns it from kv1-00001 and
// creates none.
func createShards(ctx context.Context, agent *zongzi.Agent, o options) ([]zongzi.Shard, error) {
	var shards []zongzi.Shard
	for i := 1; i <= o.shards; i++ {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		s, _, err := agent.ShardCreate(cctx, shardType, zongzi.WithName(shardName(i)),
			zongzi.WithTag(tagShards, strconv.Itoa(o.shards)),
			zongzi.WithPlacementMembers(3, "geo:region="+o.region), zongzi.WithPlacementVary("geo:zone"))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("create shard %d: %w", i, err)
		}
		if err := checkShardCount(s, agent.State(), o.shards); err != nil {
			return nil, err
		}
		shards = append(shards, s)
	}
	return shards, nil
}

// checkShardCount checks that s, a kv shard as the registry holds it,
// records the shard count want. A shard without the tag was created by an
// older kv1, which did not record the count: the count is then that of the
// kv shards in st, the registry, which that kv1 named kv1-00001 onwards.
func checkShardCount(s zongzi.Shard, st *zongzi.State, want int) error {
	if s.Type != shardType {
		return fmt.Errorf("kv1: shard %s is of type %q, not kv1's", s.Name, s.Type)
	}
	if v, ok := s.Tags[tagShards]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%w: shard %s has a bad tag %s=%q", errShardCount, s.Name, tagShards, v)
		}
		if n != want {
			return fmt.Errorf("%w: -s %d, but the cluster has %d kv shards (tag %s=%d on %s); start kv1 with -s %d",
				errShardCount, want, n, tagShards, n, s.Name, n)
		}
		return nil
	}
	n := 0
	for _, o := range st.Shards() {
		if i, ok := shardIndex(o.Name); ok && o.Type == shardType {
			n = max(n, i)
		}
	}
	if n != want {
		return fmt.Errorf("%w: -s %d, but the cluster has %d kv shards (up to %s, created by a kv1 that did not tag them); start kv1 with -s %d",
			errShardCount, want, n, shardName(n), n)
	}
	return nil
}
