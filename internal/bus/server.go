package bus

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Server serves a Handler on a listener.
type Server struct {
	pb.UnimplementedBusServer
	h     Handler
	codes Codes
	grpc  *grpc.Server
}

// serveMaxStreams bounds the calls one connection has served at once;
// the caller's next call waits, while its context lasts, for one to end.
// Every call is a stream, a Watch for as long as it lasts. gRPC's default
// is no bound.
const serveMaxStreams = 1 << 14

// serveKeepalive has the server ping a connection on which nothing came
// for a minute, and close it if the ping is not answered within 20 s. A
// caller that vanished while a result was on its way to it (a Watch's,
// say) is not probed by TCP's keepalive, which waits for the data to be
// acknowledged: its calls would hold on for the quarter of an hour TCP
// retransmits for. Callers ping too, while they have calls open
// (callKeepalive), within servePingPolicy.
var serveKeepalive = keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}

// servePingPolicy lets callers ping a connection with calls open as often
// as every 5 s (callKeepalive pings every 30 s): under gRPC's default, 5
// minutes, a caller's pings would make the server close the connection.
var servePingPolicy = keepalive.EnforcementPolicy{MinTime: 5 * time.Second}

// NewServer returns a server for h; opts go to grpc.NewServer, after the
// bus's own static flow-control windows (windowSize), the wait for
// running handlers on Stop, and its bounds (serveMaxStreams,
// serveKeepalive, servePingPolicy). Call Listen to start it.
func NewServer(h Handler, c Codes, opts ...grpc.ServerOption) *Server {
	opts = append([]grpc.ServerOption{
		grpc.StaticStreamWindowSize(windowSize), grpc.StaticConnWindowSize(windowSize), grpc.WaitForHandlers(true),
		grpc.MaxConcurrentStreams(serveMaxStreams), grpc.KeepaliveParams(serveKeepalive),
		grpc.KeepaliveEnforcementPolicy(servePingPolicy),
	}, opts...)
	s := &Server{h: h, codes: c, grpc: grpc.NewServer(opts...)}
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

// status is the gRPC status of a handler's error, marked as this server's
// answer.
func (s *Server) status(err error) error {
	if err == nil {
		return nil
	}
	return answer(codes.Code(s.codes.ToCode(err)), err.Error())
}

// answerDomain names the ErrorInfo that every error status of a Server
// carries. A caller that finds none knows the call itself failed (the
// connection broke, the host stopped) instead of being answered; for a
// write that means the outcome is unknown (Pool.Apply).
const answerDomain = "bus.zongzi"

// answerInfo is the detail that marks a status as a Server's answer.
var answerInfo = &errdetails.ErrorInfo{Reason: "ANSWERED", Domain: answerDomain}

// answer returns an error status marked as a Server's answer.
func answer(c codes.Code, msg string) error {
	st := status.New(c, msg)
	if marked, err := st.WithDetails(answerInfo); err == nil {
		st = marked
	}
	return st.Err()
}

// valueKey is the ErrorInfo metadata key of the value of a command that
// applied, whose result's data was too large to send (appliedTooLarge).
const valueKey = "value"

// appliedTooLarge is the answer to an Apply whose command applied with a
// result too large to send: OutOfRange, with the result's value.
func appliedTooLarge(value uint64, msg string) error {
	st := status.New(codes.OutOfRange, msg)
	info := &errdetails.ErrorInfo{Reason: answerInfo.Reason, Domain: answerDomain,
		Metadata: map[string]string{valueKey: strconv.FormatUint(value, 10)}}
	if marked, err := st.WithDetails(info); err == nil {
		st = marked
	}
	return st.Err()
}

// appliedValue returns the value an appliedTooLarge answer carries, 0 if
// st carries none.
func appliedValue(st *status.Status) uint64 {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == answerDomain {
			v, _ := strconv.ParseUint(info.GetMetadata()[valueKey], 10, 64)
			return v
		}
	}
	return 0
}

// answered says whether st is a Server's answer rather than a failure of
// the call.
func answered(st *status.Status) bool {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == answerDomain {
			return true
		}
	}
	return false
}

// Info implements pb.BusServer.
func (s *Server) Info(ctx context.Context, req *pb.InfoRequest) (*pb.InfoResponse, error) {
	res, err := s.h.Info(ctx, req.ShardId)
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

// Members implements pb.BusServer.
func (s *Server) Members(ctx context.Context, req *pb.MembersRequest) (*pb.MembersResponse, error) {
	m, err := s.h.Members(ctx, req.ShardId)
	if err != nil {
		return nil, s.status(err)
	}
	return m, nil
}

// Apply implements pb.BusServer. A result over maxPayload is not sent:
// the call is answered with OutOfRange, which says the command applied,
// and the result's value (see Codes.TooLarge and Pool.Apply).
func (s *Server) Apply(ctx context.Context, req *pb.ApplyRequest) (*pb.ShardResult, error) {
	v, d, err := s.h.Apply(ctx, req.ShardId, req.Cmd)
	if err != nil {
		return nil, s.status(err)
	}
	if len(d) > maxPayload { // the caller could not receive it, and would take the outcome as unknown
		return nil, appliedTooLarge(v, overLimit("result", len(d))+": the command applied")
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
	if len(d) > maxPayload {
		return nil, answer(codes.ResourceExhausted, overLimit("result", len(d)))
	}
	return &pb.ShardResult{Value: v, Data: d}, nil
}

// Limits of a ReadBatch call on the serving side.
const (
	// serveBatchMaxReads is the most reads a ReadBatch call may carry.
	// Callers send at most batchMaxReads; the margin lets them grow.
	serveBatchMaxReads = 4 * batchMaxReads
	// serveStreamBatches is the most batches of one ReadStream served at
	// once: twice what a caller has outstanding (batchMaxCalls).
	serveStreamBatches = 2 * batchMaxCalls
	// serveMaxTimeout bounds the timeout a ReadStream batch asks for.
	serveMaxTimeout = time.Minute
	// serveResultBytes is the data a response message carries before the
	// rest of the results go in another, under the caller's 4 MiB limit.
	serveResultBytes = 1 << 20
	// serveLinger is how long results that are ready wait for the rest of
	// the batch before they are sent on their own.
	serveLinger = time.Millisecond
)

// ReadBatch implements pb.BusServer. Reads of the same shard wait together
// for one read barrier: the first linearizable read of a shard goes through
// Handler.Read, which returns after a ReadIndex round that started after
// the batch arrived, hence after every read in it was issued; the shard's
// other reads then query the replica, which has applied at least up to that
// round's index, as stale reads. Stale reads are served at once. Shards are
// served concurrently and results go back as they complete, those ready
// within serveLinger of each other in one message, so a slow shard holds
// back no other.
func (s *Server) ReadBatch(req *pb.ReadBatchRequest, stream grpc.ServerStreamingServer[pb.ReadBatchResponse]) error {
	return s.serveBatch(stream.Context(), req.Reads, func(results []*pb.ReadBatchResult) error {
		return s.sendResults(stream, &pb.ReadBatchResponse{Results: results})
	})
}

// serveBatch serves a batch's reads (see ReadBatch), handing their results
// to send as they complete. An error that is not send's is a status.
func (s *Server) serveBatch(ctx context.Context, reads []*pb.ReadRequest, send func([]*pb.ReadBatchResult) error) error {
	n := len(reads)
	if n > serveBatchMaxReads {
		return answer(codes.InvalidArgument, fmt.Sprintf("bus: read batch of %d reads, at most %d", n, serveBatchMaxReads))
	}
	if n == 1 { // no goroutine, channel or timer for a batch of one
		return send([]*pb.ReadBatchResult{s.readOne(ctx, 0, reads[0], reads[0].GetStale())})
	}
	results := make([]*pb.ReadBatchResult, n)
	done := make(chan int, n) // never blocks, so no reader outlives its Read
	var linear map[uint64][]int
	for i, r := range reads {
		if r.GetStale() {
			results[i] = s.readOne(ctx, i, r, true)
			done <- i
			continue
		}
		if linear == nil {
			linear = map[uint64][]int{}
		}
		linear[r.GetShardId()] = append(linear[r.GetShardId()], i)
	}
	for _, idx := range linear {
		go func() {
			first, served := s.serveOne(ctx, idx[0], reads[idx[0]], false)
			results[idx[0]] = first
			done <- idx[0]
			for _, i := range idx[1:] {
				if !served { // the barrier failed: so does every read behind it
					results[i] = &pb.ReadBatchResult{Index: uint32(i), Code: first.Code, Message: first.Message}
				} else {
					results[i] = s.readOne(ctx, i, reads[i], true)
				}
				done <- i
			}
		}()
	}
	var (
		out   []*pb.ReadBatchResult
		size  int
		timer *time.Timer
		flush <-chan time.Time
	)
	flushOut := func() error {
		if timer != nil {
			timer.Stop()
			timer, flush = nil, nil
		}
		if len(out) == 0 {
			return nil
		}
		err := send(out)
		out, size = nil, 0
		return err
	}
	for left := n; left > 0; {
		select {
		case i := <-done:
			left--
			if size > 0 && size+len(results[i].Data) > serveResultBytes {
				if err := flushOut(); err != nil {
					return err
				}
			}
			out = append(out, results[i])
			size += len(results[i].Data)
			if size >= serveResultBytes && left > 0 {
				if err := flushOut(); err != nil {
					return err
				}
				continue
			}
			if timer == nil && left > 0 {
				timer = time.NewTimer(serveLinger)
				flush = timer.C
			}
		case <-flush:
			timer, flush = nil, nil
			if err := flushOut(); err != nil {
				return err
			}
		case <-ctx.Done():
			return s.status(ctx.Err())
		}
	}
	return flushOut()
}

// readOne serves the read at index i of a batch, stale or not.
func (s *Server) readOne(ctx context.Context, i int, r *pb.ReadRequest, stale bool) *pb.ReadBatchResult {
	res, _ := s.serveOne(ctx, i, r, stale)
	return res
}

// serveOne is readOne, and says whether the handler served the read: a
// result too large for a message fails its own read, but its read barrier
// (when not stale) completed all the same.
func (s *Server) serveOne(ctx context.Context, i int, r *pb.ReadRequest, stale bool) (*pb.ReadBatchResult, bool) {
	v, d, err := s.h.Read(ctx, r.GetShardId(), r.GetQuery(), stale, r.GetLeader())
	if err != nil {
		return &pb.ReadBatchResult{Index: uint32(i), Code: s.itemCode(err), Message: err.Error()}, false
	}
	if len(d) > maxPayload { // would fail the message it went in, and its stream
		return &pb.ReadBatchResult{Index: uint32(i), Code: uint32(codes.ResourceExhausted), Message: overLimit("result", len(d))}, true
	}
	return &pb.ReadBatchResult{Index: uint32(i), Value: v, Data: d}, true
}

// resultSender is the sending side of a ReadBatch or a ReadStream.
type resultSender interface {
	Send(*pb.ReadBatchResponse) error
}

// sendResults sends one message of results.
func (s *Server) sendResults(stream resultSender, res *pb.ReadBatchResponse) error {
	if err := stream.Send(res); err != nil {
		return fmt.Errorf("bus: read batch: send: %w", err)
	}
	return nil
}

// itemCode is the status code sent for a read's error, never OK.
func (s *Server) itemCode(err error) uint32 {
	if c := s.codes.ToCode(err); c != uint32(codes.OK) {
		return c
	}
	return uint32(codes.Internal)
}

// Index implements pb.BusServer.
func (s *Server) Index(ctx context.Context, req *pb.IndexRequest) (*pb.IndexResponse, error) {
	i, err := s.h.Index(ctx, req.ShardId)
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.IndexResponse{Index: i}, nil
}

// Watch implements pb.BusServer. A result over maxPayload ends the watch
// with ResourceExhausted, as Read answers one, instead of being sent for
// the caller's gRPC to refuse once it came whole.
func (s *Server) Watch(req *pb.ReadRequest, stream grpc.ServerStreamingServer[pb.ShardResult]) error {
	var tooLarge error
	err := s.h.Watch(stream.Context(), req.ShardId, req.Query, req.Stale, func(v uint64, d []byte) error {
		if len(d) > maxPayload { // the caller could not receive it: say so rather than send it
			tooLarge = answer(codes.ResourceExhausted, overLimit("result", len(d)))
			return tooLarge
		}
		return stream.Send(&pb.ShardResult{Value: v, Data: d})
	})
	if tooLarge != nil {
		return tooLarge
	}
	return s.status(err)
}
