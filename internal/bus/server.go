package bus

import (
	"context"
	"fmt"
	"net"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Server serves a Handler on a listener.
type Server struct {
	pb.UnimplementedBusServer
	h     Handler
	codes Codes
	grpc  *grpc.Server
}

// NewServer returns a server for h. Call Serve to start it.
func NewServer(h Handler, c Codes) *Server {
	s := &Server{h: h, codes: c, grpc: grpc.NewServer()}
	pb.RegisterBusServer(s.grpc, s)
	return s
}

// Listen binds addr and serves in a new goroutine until Stop.
func (s *Server) Listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bus: listen %s: %w", addr, err)
	}
	go func() { _ = s.grpc.Serve(ln) }()
	return ln.Addr(), nil
}

// Stop closes the listener and every open connection at once.
func (s *Server) Stop() { s.grpc.Stop() }

func (s *Server) status(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codes.Code(s.codes.ToCode(err)), err.Error())
}

// Info implements pb.BusServer.
func (s *Server) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	res, err := s.h.Info(ctx)
	return res, s.status(err)
}

// Join implements pb.BusServer.
func (s *Server) Join(ctx context.Context, req *pb.JoinRequest) (*pb.JoinResponse, error) {
	id, err := s.h.Join(ctx, req)
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.JoinResponse{ReplicaId: id}, nil
}

// Membership implements pb.BusServer.
func (s *Server) Membership(ctx context.Context, req *pb.MembershipRequest) (*pb.MembershipResponse, error) {
	if err := s.h.Membership(ctx, req); err != nil {
		return nil, s.status(err)
	}
	return &pb.MembershipResponse{}, nil
}

// Apply implements pb.BusServer.
func (s *Server) Apply(ctx context.Context, req *pb.ApplyRequest) (*pb.ShardResult, error) {
	v, d, err := s.h.Apply(ctx, req.ShardId, req.Cmd)
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.ShardResult{Value: v, Data: d}, nil
}

// Commit implements pb.BusServer.
func (s *Server) Commit(ctx context.Context, req *pb.ApplyRequest) (*pb.CommitResponse, error) {
	if err := s.h.Commit(ctx, req.ShardId, req.Cmd); err != nil {
		return nil, s.status(err)
	}
	return &pb.CommitResponse{}, nil
}

// Read implements pb.BusServer.
func (s *Server) Read(ctx context.Context, req *pb.ReadRequest) (*pb.ShardResult, error) {
	v, d, err := s.h.Read(ctx, req.ShardId, req.Query, req.Stale, req.Leader)
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.ShardResult{Value: v, Data: d}, nil
}

// Index implements pb.BusServer.
func (s *Server) Index(ctx context.Context, req *pb.IndexRequest) (*pb.IndexResponse, error) {
	i, err := s.h.Index(ctx, req.ShardId)
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.IndexResponse{Index: i}, nil
}

// Watch implements pb.BusServer.
func (s *Server) Watch(req *pb.ReadRequest, stream grpc.ServerStreamingServer[pb.ShardResult]) error {
	err := s.h.Watch(stream.Context(), req.ShardId, req.Query, req.Stale, func(v uint64, d []byte) error {
		return stream.Send(&pb.ShardResult{Value: v, Data: d})
	})
	return s.status(err)
}
