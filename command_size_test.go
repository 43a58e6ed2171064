package zongzi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestCommandOverTransportLimit proposes, on the host of a shard's leader,
// a command of 256 MiB: the raft transport cannot carry an entry that
// large to the followers. It must fail at once with ErrTooLarge, nothing
// proposed, and leave the shard writable; proposed, it would stay in the
// leader's log, never committed, and hold back every later write.
func TestCommandOverTransportLimit(t *testing.T) {
	c, s, lead := startPendingCluster(t, "a", "b", "c")
	defer c.stop()
	cl := lead.agent.Client(s.ID)
	cmd := make([]byte, 256<<20)
	for _, commit := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		var err error
		if commit {
			err = cl.Commit(ctx, cmd)
		} else {
			_, _, err = cl.Apply(ctx, cmd)
		}
		cancel()
		if !errors.Is(err, zongzi.ErrTooLarge) {
			t.Errorf("write (commit=%v) of 256 MiB: %v, want ErrTooLarge", commit, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, _, err := cl.Apply(ctx, []byte("small")); err != nil {
		t.Fatalf("a small write after the large ones: %v", err)
	}
}
