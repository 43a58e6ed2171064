package zongzi_test

import (
	"context"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
	"github.com/zongzi-kv/zongzi/internal/bus"
	"github.com/zongzi-kv/zongzi/internal/registry"
)

// TestBusRefusesPrimeShardCommands: a registry command sent over the bus
// as a shard 0 apply or commit, as any host that reaches the bus could,
// is refused, and the registry is unchanged.
func TestBusRefusesPrimeShardCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, a := startOne(ctx, t)
	defer c.stop()
	pool := bus.NewPool(zongzi.BusCodes)
	defer pool.Close()
	cmd := registry.Command{Op: registry.OpTagSet, Kind: registry.KindShard, ShardID: 0, Key: "forged", Value: "yes"}.Encode()
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	defer ccancel()
	if _, _, err := pool.Apply(cctx, c.nodes[0].api, 0, cmd); err == nil {
		t.Error("apply of a registry command over the bus: no error")
	}
	if err := pool.Commit(cctx, c.nodes[0].api, 0, cmd); err == nil {
		t.Error("commit of a registry command over the bus: no error")
	}
	if _, _, err := pool.Read(cctx, c.nodes[0].api, 0, nil, false, false); err == nil {
		t.Error("read of the prime shard over the bus: no error")
	}
	// A registry write after them: had one applied, it is in the view now.
	if _, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("after")); err != nil {
		t.Fatal(err)
	}
	if prime, _ := a.State().Shard(0); prime.Tags["forged"] != "" {
		t.Fatalf("prime shard tags %v: a command from the bus applied", prime.Tags)
	}
}
