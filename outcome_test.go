package zongzi_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi"
)

// A proposal whose replica closes before it commits may yet commit when
// the hosts come back. These tests propose on a shard whose followers have
// stopped, so that the proposal is in the leader's log but cannot commit,
// then stop the leader's host: the caller must hear that the outcome is
// unknown, not the "shard not ready" that would have the write sent to
// another host and applied twice.

// TestApplyPendingAtClose proposes on the leader's own host.
func TestApplyPendingAtClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, s, lead := startPendingCluster(t, "a", "b", "c")
	defer c.stop()
	err := applyPendingAtStop(t, c, lead, lead.agent.Client(s.ID))
	// Forwarded writes fail with "bus <address>: …"; this one must have
	// gone to no other host.
	if strings.Contains(err.Error(), "bus ") {
		t.Fatalf("the pending write was sent on to another host: %v", err)
	}
}

// TestForwardedApplyPendingAtClose proposes from a host without a replica,
// which forwards the write to the leader's host.
func TestForwardedApplyPendingAtClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, s, lead := startPendingCluster(t, "a", "b", "c", "d")
	defer c.stop()
	var out *node
	for _, n := range c.nodes {
		if len(replicasOn(n.agent, s.ID)) == 0 {
			out = n
		}
	}
	if out == nil {
		t.Fatal("every host has a replica of the shard")
	}
	applyPendingAtStop(t, c, lead, out.agent.Client(s.ID))
}

// TestApplyCancelledWhilePending cancels a write the leader holds in its
// log without a quorum, on the leader's host and from a host without a
// replica: it may still commit, so the error must say that its outcome is
// unknown, as well as that it was cancelled.
func TestApplyCancelledWhilePending(t *testing.T) {
	for _, forwarded := range []bool{false, true} {
		t.Run(fmt.Sprintf("forwarded=%v", forwarded), func(t *testing.T) {
			c, s, lead := startPendingCluster(t, "a", "b", "c", "d")
			defer c.stop()
			from := lead
			if forwarded {
				from = nil
				for _, n := range c.nodes {
					if len(replicasOn(n.agent, s.ID)) == 0 {
						from = n
					}
				}
				if from == nil {
					t.Fatal("every host has a replica of the shard")
				}
			}
			err := applyPending(t, c, lead, from.agent.Client(s.ID), func(cancel context.CancelFunc) { cancel() })
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("write cancelled while pending: %v, want it to wrap %v", err, context.Canceled)
			}
		})
	}
}

// startPendingCluster starts a cluster in the given zones, creates a shard
// with three replicas and returns it with the node whose replica leads it.
// The leader stays leader without its followers for as long as a proposal
// waits: with CheckQuorum it would step down after an election timeout
// (which leaves the proposal pending all the same, but drops any made
// after it).
func startPendingCluster(t *testing.T, zones ...string) (*cluster, zongzi.Shard, *node) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, zones...)
	cfg := zongzi.DefaultReplicaConfig()
	cfg.CheckQuorum = false
	for _, n := range c.nodes {
		n.opts = []zongzi.AgentOption{zongzi.WithReplicaConfig(cfg)}
	}
	c.startAll(ctx, c.nodes...)
	s := c.createActive(ctx, c.nodes[0].agent, testType, "pending")
	var lead *node
	waitFor(t, settle, "the shard's leader", func() bool {
		var replicas []*node
		for _, n := range c.nodes {
			if len(replicasOn(n.agent, s.ID)) > 0 {
				replicas = append(replicas, n)
			}
		}
		id := leaderHost(replicas, s.ID)
		for _, n := range replicas {
			if id != "" && n.agent.HostID() == id {
				lead = n
			}
		}
		return lead != nil
	})
	return c, s, lead
}

// applyPendingAtStop makes a first write through client, stops every host
// of the shard but lead, applies a second write through client, and stops
// lead while it waits. It checks that the write reported an unknown
// outcome, before its deadline, and returns the error.
func applyPendingAtStop(t *testing.T, c *cluster, lead *node, client *zongzi.ShardClient) error {
	return applyPending(t, c, lead, client, func(context.CancelFunc) { lead.agent.Stop() })
}

// applyPending is applyPendingAtStop, with end to end the wait: it may
// stop a host or cancel the write.
func applyPending(t *testing.T, c *cluster, lead *node, client *zongzi.ShardClient, end func(cancelWrite context.CancelFunc)) error {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, _, err := client.Apply(ctx, []byte("first")); err != nil {
		t.Fatalf("first write: %v", err)
	}
	id := client.ShardID()
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if n != lead && len(replicasOn(n.agent, id)) > 0 {
			wg.Go(n.agent.Stop)
		}
	}
	wg.Wait()
	logs, err := lead.agent.NodeHost().GetLogReader(id)
	if err != nil {
		t.Fatal(err)
	}
	_, last := logs.GetRange()
	actx, acancel := context.WithTimeout(ctx, 30*time.Second)
	defer acancel()
	errs := make(chan error, 1)
	go func() {
		_, _, err := client.Apply(actx, []byte("pending"))
		errs <- err
	}()
	waitFor(t, settle, "the write in the leader's log", func() bool {
		_, l := logs.GetRange()
		return l > last || len(errs) > 0
	})
	select {
	case err := <-errs:
		t.Fatalf("the write returned without a quorum: %v", err)
	default:
	}
	end(acancel)
	err = <-errs
	if !errors.Is(err, zongzi.ErrOutcomeUnknown) || errors.Is(err, zongzi.ErrShardNotReady) {
		t.Fatalf("apply pending when the wait ended: %v, want %v", err, zongzi.ErrOutcomeUnknown)
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		t.Fatalf("apply returned only at its deadline: %v", err)
	}
	return err
}

// replicasOn returns the replicas of the shard that the host of a has, as
// a sees the registry.
func replicasOn(a *zongzi.Agent, shardID uint64) []uint64 {
	var ids []uint64
	for _, r := range a.State().HostReplicas(a.HostID()) {
		if r.ShardID == shardID {
			ids = append(ids, r.ID)
		}
	}
	return ids
}
