package zongzi_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zongzi-kv/zongzi/internal/bus"
	"github.com/zongzi-kv/zongzi/internal/bus/pb"
)

// TestBusRefusesBadRequests sends a host, over its message bus, joins it
// must refuse before proposing anything, and membership changes no host of
// the cluster sends: the shard's membership stays as it was, as Members
// reads it; Members of a shard that does not exist is refused.
func TestBusRefusesBadRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1, api := c.nodes[0].agent, c.nodes[0].api
	s := c.createActive(ctx, a1, testType, "members")
	p := bus.NewPool(bus.Codes{
		ToCode:  func(error) uint32 { return uint32(codes.Internal) },
		ToError: func(code uint32, msg string) error { return status.Error(codes.Code(code), msg) },
	})
	defer p.Close()

	good := pb.JoinRequest{HostId: "0b5c5bd4-6a3e-4b0e-9a43-6f3b1a3c7d09", ApiAddress: "127.0.0.1:1", RaftAddress: "127.0.0.1:2", ClusterName: "test"}
	for name, edit := range map[string]func(*pb.JoinRequest){
		"empty host ID":       func(r *pb.JoinRequest) { r.HostId = "" },
		"host ID with spaces": func(r *pb.JoinRequest) { r.HostId = "a b" },
		"bad raft address":    func(r *pb.JoinRequest) { r.RaftAddress = "not an address" },
		"no API port":         func(r *pb.JoinRequest) { r.ApiAddress = "127.0.0.1" },
		"another cluster":     func(r *pb.JoinRequest) { r.ClusterName = "other" },
	} {
		req := &pb.JoinRequest{HostId: good.HostId, ApiAddress: good.ApiAddress, RaftAddress: good.RaftAddress, ClusterName: good.ClusterName}
		edit(req)
		if _, err := p.Join(ctx, api, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("join, %s: %v, want InvalidArgument", name, err)
		}
	}
	for _, h := range a1.State().Hosts() {
		if h.ApiAddress == good.ApiAddress {
			t.Errorf("a refused join registered host %+v", h)
		}
	}

	nh := a1.NodeHost()
	before, err := nh.SyncGetShardMembership(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	var member uint64
	for id := range before.Nodes {
		member = max(member, id)
	}
	for name, req := range map[string]*pb.MembershipRequest{
		"remove a member":                {ShardId: s.ID, ReplicaId: member, Remove: true},
		"add an unknown":                 {ShardId: s.ID, ReplicaId: member + 100, HostId: c.nodes[1].agent.HostID()},
		"add a member as another host's": {ShardId: s.ID, ReplicaId: member, HostId: "0b5c5bd4-6a3e-4b0e-9a43-6f3b1a3c7d09"},
	} {
		if err := p.Membership(ctx, api, req); err == nil {
			t.Errorf("membership, %s: accepted", name)
		}
	}
	after, err := nh.SyncGetShardMembership(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Nodes) != len(before.Nodes) || len(after.NonVotings) != len(before.NonVotings) || len(after.Removed) != len(before.Removed) {
		t.Errorf("membership changed: %+v, was %+v", after, before)
	}

	m, err := p.Members(ctx, api, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Stale || !slices.Equal(m.Voting, slices.Sorted(maps.Keys(after.Nodes))) {
		t.Errorf("members of shard %d: %+v, want voting %v, not stale", s.ID, m, slices.Sorted(maps.Keys(after.Nodes)))
	}
	if m, err := p.Members(ctx, api, s.ID+100); err == nil {
		t.Errorf("members of shard %d, which does not exist: %+v", s.ID+100, m)
	}
}
