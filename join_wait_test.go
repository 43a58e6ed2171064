package zongzi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zongzi-kv/zongzi"
	"github.com/zongzi-kv/zongzi/internal/bus"
	"github.com/zongzi-kv/zongzi/internal/bus/pb"
)

// TestJoinWaitsForTheRegistry: a host asked to add a replica that its
// registry does not list yet, but will, waits for it rather than refuse:
// the joiner's host, whose registry lists it, would only ask again at its
// next sweep, as the refusal changes no record.
func TestJoinWaitsForTheRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a, b, joiner := c.nodes[0].agent, c.nodes[1], c.nodes[2].agent
	s, _, err := a.ShardCreate(ctx, testType, zongzi.WithName("pinned"), zongzi.WithPlacementMembers(1, "geo:zone=b"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the member on b active", func() bool {
		return allActive(b.agent.State(), s.ID, 1) && allActive(a.State(), s.ID, 1)
	})
	next := b.agent.State().LastReplicaID() + 1 // the non-voting replica placed below
	p := bus.NewPool(bus.Codes{
		ToCode:  func(error) uint32 { return uint32(codes.Internal) },
		ToError: func(code uint32, msg string) error { return status.Error(codes.Code(code), msg) },
	})
	defer p.Close()
	done := make(chan error, 1)
	go func() {
		done <- p.Membership(ctx, b.api, &pb.MembershipRequest{ShardId: s.ID, ReplicaId: next, HostId: joiner.HostID(), NonVoting: true})
	}()
	time.Sleep(100 * time.Millisecond) // the request reaches b first
	if _, err := a.ShardUpdate(ctx, s.ID, zongzi.WithPlacementReplicas("r", 1, "geo:zone=c")); err != nil {
		t.Fatal(err)
	}
	err = <-done
	waitFor(t, settle, "the non-voting replica in b's registry", func() bool {
		_, ok := b.agent.State().Replica(next)
		return ok
	})
	if r, _ := b.agent.State().Replica(next); r.ShardID != s.ID || r.HostID != joiner.HostID() || !r.IsNonVoting {
		t.Fatalf("replica %d is %+v, not the non-voting replica placed on %s", next, r, joiner.HostID())
	}
	// The joiner's own host asks for the same change once its registry
	// lists the replica, and one of the two may find the other's change
	// pending (Dragonboat's "system is too busy"): the request was taken,
	// not refused.
	if err != nil && strings.Contains(err.Error(), "is not in this host's registry") {
		t.Fatalf("join of replica %d, asked before the host's registry listed it, refused: %v", next, err)
	}
}
