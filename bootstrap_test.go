package zongzi_test

import (
	"context"
	"testing"
	"time"
)

// TestFullRestartOnNewRaftAddresses: every host of the cluster stops and
// comes back on another raft address (new machines, new pod IPs) with its
// data and its API address. The registry lists only the old raft
// addresses, and no host can reach another to say where it listens now:
// the hosts must find each other through their peers' API addresses.
func TestFullRestartOnNewRaftAddresses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	c.stop()
	for _, n := range c.nodes {
		n.raft = freeAddrs(t, 1)[0]
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	c.startAll(sctx, c.nodes...)
	a1 := c.nodes[0].agent
	waitFor(t, settle, "the registry to record the new raft addresses", func() bool {
		for _, n := range c.nodes {
			if h, ok := a1.State().Host(n.agent.HostID()); !ok || h.RaftAddress != n.raft {
				return false
			}
		}
		return true
	})
}
