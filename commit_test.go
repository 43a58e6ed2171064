package zongzi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi"
)

// TestCommit checks that ShardClient.Commit returns without error once its
// command is committed, from every host, with Dragonboat's commit
// notifications off (the agent's default: it returns at the local apply)
// and on (it returns at the commit), and that the commands then apply.
func TestCommit(t *testing.T) {
	for _, notify := range []bool{false, true} {
		t.Run(fmt.Sprintf("NotifyCommit=%v", notify), func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			c := newCluster(t, "a", "b", "c")
			for _, n := range c.nodes {
				n.opts = []zongzi.AgentOption{zongzi.WithHostConfig(config.NodeHostConfig{NotifyCommit: notify})}
			}
			c.startAll(ctx, c.nodes...)
			defer c.stop()
			s := c.createActive(ctx, c.nodes[0].agent, testType, "commit")
			for i, n := range c.nodes {
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				err := n.agent.Client(s.ID).Commit(cctx, fmt.Appendf(nil, "commit-%d", i))
				ccancel()
				if err != nil {
					t.Fatalf("commit from host %d: %v", i, err)
				}
			}
			n, _, err := c.nodes[0].agent.Client(s.ID).Read(ctx, nil, false)
			if err != nil || n != uint64(len(c.nodes)) {
				t.Fatalf("linearizable read after the commits: %d commands applied, %v; want %d", n, err, len(c.nodes))
			}
		})
	}
}
