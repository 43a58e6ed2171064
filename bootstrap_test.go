package zongzi_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// TestAllPeersStoppedWhileFormingRestart: every peer starts its replica
// of the new prime shard and stops before the registry's first entry is
// committed (their Starts gave up together, or the machines went down).
// Restarted together, each finds its prime replica on disk and rejoins
// from it: one of them must still initialise the registry, or none ever
// becomes ready.
func TestAllPeersStoppedWhileFormingRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	// The peers first advertise raft addresses where no one listens: they
	// form, but no raft message gets through, so nothing is committed.
	for _, n := range c.nodes {
		n.opts = []zongzi.AgentOption{zongzi.WithAddrRaft(freeAddrs(t, 1)[0], n.raft)}
	}
	fctx, fcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		a, err := c.newAgent(n)
		if err != nil {
			t.Fatal(err)
		}
		n.agent = a
		wg.Go(func() { _ = a.Start(fctx) })
	}
	waitFor(t, settle, "every peer to start its prime replica", func() bool {
		for _, n := range c.nodes {
			if _, err := os.Stat(filepath.Join(n.dir, "zongzi-prime.json")); err != nil {
				return false
			}
		}
		return true
	})
	fcancel()
	wg.Wait()
	for _, n := range c.nodes {
		n.opts = nil
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	c.startAll(sctx, c.nodes...)
	defer c.stop()
	if n := c.nodes[1].agent.State().HostCount(); n != 3 {
		t.Fatalf("registry has %d hosts, want 3", n)
	}
}

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
