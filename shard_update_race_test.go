package zongzi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestShardUpdateOfADeletedShard: a shard deleted while ShardUpdate
// applies its options (by another host, between its read of the shard
// and its write) is ErrShardNotFound, as ShardUpdate's doc says of a
// shard the registry does not hold, not only the registry's refusal
// (ErrRejected).
func TestShardUpdateOfADeletedShard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1, a2 := c.nodes[0].agent, c.nodes[1].agent
	s, _, err := a1.ShardCreate(ctx, testType, zongzi.WithName("doomed"))
	if err != nil {
		t.Fatal(err)
	}
	deleted := false
	deleteFirst := func(*zongzi.Shard) error {
		if deleted {
			return nil
		}
		deleted = true
		if err := a2.ShardDelete(ctx, s.ID); err != nil {
			return err
		}
		waitFor(t, settle, "the delete in host 1's registry", func() bool {
			_, ok := a1.State().Shard(s.ID)
			return !ok
		})
		return nil
	}
	_, err = a1.ShardUpdate(ctx, s.ID, deleteFirst, zongzi.WithTag("k", "v"))
	if !errors.Is(err, zongzi.ErrShardNotFound) {
		t.Fatalf("update of a shard deleted meanwhile: %v, want ErrShardNotFound", err)
	}
}
