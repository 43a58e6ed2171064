package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinels the test Codes map, as the root package maps its own.
var (
	errNotReady = errors.New("test: shard not ready")
	errNotFound = errors.New("test: shard not found")
	errUnknown  = errors.New("test: outcome unknown")
	errOverMax  = errors.New("test: too large")
)

var testCodes = Codes{
	ToCode: func(err error) uint32 {
		switch {
		case errors.Is(err, errNotReady):
			return uint32(codes.Unavailable)
		case errors.Is(err, errNotFound):
			return uint32(codes.NotFound)
		case errors.Is(err, context.Canceled):
			return uint32(codes.Canceled)
		}
		return uint32(codes.Unknown)
	},
	ToError: func(code uint32, msg string) error {
		switch codes.Code(code) {
		case codes.Unavailable:
			return fmt.Errorf("%w (remote: %s)", errNotReady, msg)
		case codes.NotFound:
			return fmt.Errorf("%w (remote: %s)", errNotFound, msg)
		case codes.Canceled:
			return fmt.Errorf("%w (remote: %s)", context.Canceled, msg)
		case codes.ResourceExhausted:
			return fmt.Errorf("%w (remote: %s)", errOverMax, msg)
		}
		return errors.New(msg)
	},
	Unknown:  errUnknown,
	TooLarge: errOverMax,
}

// Shard IDs with a special meaning to fakeHandler.
const (
	shardNotReady = 13 // Read fails with errNotReady
	shardBroken   = 14 // Read fails with an error the Codes do not know
	shardStuck    = 7  // Read waits for fakeHandler.unstick or its ctx
	shardLarge    = 15 // Read returns largeResult bytes
	shardHuge     = 16 // Read returns more than a bus message may carry
)

// hugeQuery is a query whose result, on any shard, is more than a bus
// message may carry.
const hugeQuery = "huge"

// largeResult is the size of a result of shardLarge: a batch of ten is
// over gRPC's default 4 MiB limit on a received message.
const largeResult = 600 << 10

// largeData is every result of shardLarge, made once so that the reads of
// a batch complete together.
var largeData = bytes.Repeat([]byte{'x'}, largeResult)

// fakeHandler answers a read of shard s with query q by (s, "s:q"). When
// plug is set, the first plugs reads it serves wait for plug to close.
type fakeHandler struct {
	reads   atomic.Int64
	plug    chan struct{}
	plugs   int64
	plugged atomic.Int64
	entered chan uint64 // when set, receives the shard of every read served
	unstick chan struct{}
	round   time.Duration // when set, linearizable reads wait for rounds this long
	rounds  fakeRounds
}

// fakeRounds makes reads wait as the root package's read barrier does: a
// read joins the next round, and a round starts only when the one before
// has finished.
type fakeRounds struct {
	count   atomic.Int64 // rounds run
	mu      sync.Mutex
	running bool
	next    chan struct{}
}

// wait returns once a round that started after the call has finished.
func (r *fakeRounds) wait(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	if r.next == nil {
		r.next = make(chan struct{})
	}
	ch := r.next
	if !r.running {
		r.running = true
		go r.run(d)
	}
	r.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run runs rounds of length d while reads wait for one.
func (r *fakeRounds) run(d time.Duration) {
	for {
		r.mu.Lock()
		ch := r.next
		r.next = nil
		if ch == nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		r.count.Add(1)
		time.Sleep(d)
		close(ch)
	}
}

func newFakeHandler() *fakeHandler {
	return &fakeHandler{unstick: make(chan struct{})}
}

func (f *fakeHandler) Read(ctx context.Context, shardID uint64, query []byte, stale, _ bool) (uint64, []byte, error) {
	f.reads.Add(1)
	if f.round > 0 && !stale {
		if err := f.rounds.wait(ctx, f.round); err != nil {
			return 0, nil, err
		}
	}
	if f.entered != nil {
		f.entered <- shardID
	}
	if f.plug != nil && f.plugged.Add(1) <= f.plugs {
		select {
		case <-f.plug:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
	if string(query) == hugeQuery {
		return shardID, make([]byte, 5<<20), nil
	}
	switch shardID {
	case shardNotReady:
		return 0, nil, fmt.Errorf("shard %d: %w", shardID, errNotReady)
	case shardBroken:
		return 0, nil, fmt.Errorf("shard %d: disk on fire", shardID)
	case shardLarge:
		return shardID, largeData, nil
	case shardHuge:
		return shardID, make([]byte, 5<<20), nil
	case shardStuck:
		select {
		case <-f.unstick:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
	data := strconv.AppendUint(make([]byte, 0, 24+len(query)), shardID, 10)
	return shardID, append(append(data, ':'), query...), nil
}

func (f *fakeHandler) Info(context.Context, uint64) (*pb.InfoResponse, error) {
	return &pb.InfoResponse{HostId: "fake"}, nil
}
func (f *fakeHandler) Join(context.Context, *pb.JoinRequest) (uint64, error) {
	return 0, errNotReady
}
func (f *fakeHandler) Membership(context.Context, *pb.MembershipRequest) error { return errNotReady }
func (f *fakeHandler) Members(context.Context, uint64) (*pb.MembersResponse, error) {
	return nil, errNotReady
}
func (f *fakeHandler) Apply(context.Context, uint64, []byte) (uint64, []byte, error) {
	return 0, nil, errNotReady
}
func (f *fakeHandler) Commit(context.Context, uint64, []byte) error { return errNotReady }
func (f *fakeHandler) Index(context.Context, uint64) (uint64, error) {
	return 0, errNotReady
}
func (f *fakeHandler) Watch(context.Context, uint64, []byte, bool, func(uint64, []byte) error) error {
	return errNotReady
}

// batchCounter counts what a server receives: ReadStream calls, batches
// (each request on a ReadStream, and each ReadBatch call), ReadBatch calls
// alone, and unary Read calls.
type batchCounter struct{ streams, batches, readBatches, unary atomic.Int64 }

func (c *batchCounter) options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			switch info.FullMethod {
			case pb.Bus_ReadStream_FullMethodName:
				c.streams.Add(1)
				ss = countedStream{ss, &c.batches}
			case pb.Bus_ReadBatch_FullMethodName:
				c.batches.Add(1)
				c.readBatches.Add(1)
			}
			return h(srv, ss)
		}),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if info.FullMethod == pb.Bus_Read_FullMethodName {
				c.unary.Add(1)
			}
			return h(ctx, req)
		}),
	}
}

// countedStream counts the messages a server stream receives.
type countedStream struct {
	grpc.ServerStream
	n *atomic.Int64
}

func (s countedStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.n.Add(1)
	}
	return err
}

// checkLeaks fails a test that leaves goroutines behind once its cleanups,
// registered after this call, have run.
func checkLeaks(t testing.TB) {
	if _, ok := t.(*testing.T); !ok {
		return
	}
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// startBus serves h on loopback and returns its address and a pool.
func startBus(t testing.TB, h Handler, opts ...grpc.ServerOption) (string, *Server, *Pool) {
	t.Helper()
	checkLeaks(t)
	srv := NewServer(h, testCodes, opts...)
	a, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	p := NewPool(testCodes)
	t.Cleanup(p.Close)
	return a.String(), srv, p
}

// batcher returns the read coalescer of addr, for tests to tune or inspect.
func batcher(t testing.TB, p *Pool, addr string) *readBatcher {
	t.Helper()
	pe, err := p.get(addr)
	if err != nil {
		t.Fatal(err)
	}
	return pe.reads
}

// heldBatcher returns p's batcher for addr with stalls off, so that plugged
// calls hold back the reads behind them for as long as a test needs.
func heldBatcher(t testing.TB, p *Pool, addr string) *readBatcher {
	b := batcher(t, p, addr)
	b.stallAfter = time.Hour
	return b
}

// startPlugged serves a plugged handler (newPluggedHandler) on loopback,
// its calls counted, and returns it with a pool whose batcher for it is
// held (heldBatcher) and the test's context.
func startPlugged(t *testing.T) (h *fakeHandler, count *batchCounter, addr string, p *Pool, b *readBatcher, ctx context.Context) {
	t.Helper()
	h, count = newPluggedHandler(), &batchCounter{}
	addr, _, p = startBus(t, h, count.options()...)
	return h, count, addr, p, heldBatcher(t, p, addr), testContext(t)
}

// testContext returns a context that ends with the test or after 10 s.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// awaitQueued waits until n reads are queued at b.
func awaitQueued(t *testing.T, b *readBatcher, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		q := len(b.queue)
		b.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reads queued, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// newPluggedHandler returns a handler whose first batchLive reads wait for
// plug, and which reports every read it serves on entered.
func newPluggedHandler() *fakeHandler {
	h := newFakeHandler()
	h.plug, h.plugs = make(chan struct{}), batchLive
	h.entered = make(chan uint64, 1000)
	return h
}

// plugCalls runs reads 0 to batchLive-1 one at a time, each in a call of
// its own that waits in h for h.plug, so that the reads after them queue.
// It returns how many reads it started.
func plugCalls(t *testing.T, h *fakeHandler, start func(i int)) int {
	t.Helper()
	for i := range batchLive {
		go start(i)
		select {
		case <-h.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("plugged read %d never reached the handler", i)
		}
	}
	return batchLive
}

// queueBehindPlugs starts reads 0 to n-1: the first ones in plugged calls
// (plugCalls), the rest queued behind them at b. It returns how many were
// plugged.
func queueBehindPlugs(t *testing.T, h *fakeHandler, b *readBatcher, n int, read func(i int)) int {
	t.Helper()
	plugged := plugCalls(t, h, read)
	for i := plugged; i < n; i++ {
		go read(i)
	}
	awaitQueued(t, b, n-plugged)
	return plugged
}

// collect fails t for every error among the n that reads send on errs.
func collect(t *testing.T, errs <-chan error, n int) {
	t.Helper()
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

type readResult struct {
	value uint64
	data  []byte
	err   error
}

// checkRead says what is wrong with the result of reading query from shard.
func checkRead(shard uint64, query string, r readResult) error {
	if r.err != nil {
		return fmt.Errorf("read %d %q: %w", shard, query, r.err)
	}
	if want := fmt.Sprintf("%d:%s", shard, query); r.value != shard || !bytes.Equal(r.data, []byte(want)) {
		return fmt.Errorf("read %d %q = (%d, %q), want (%d, %q)", shard, query, r.value, r.data, shard, want)
	}
	return nil
}

// streamlessServer is a host of a version without ReadStream.
type streamlessServer struct{ *Server }

func (streamlessServer) ReadStream(grpc.BidiStreamingServer[pb.ReadBatchRequest, pb.ReadBatchResponse]) error {
	return status.Error(codes.Unimplemented, "unknown method ReadStream for service zongzi.bus.Bus")
}

// serveBus serves srv on loopback and returns its address.
func serveBus(t *testing.T, srv pb.BusServer, opts ...grpc.ServerOption) string {
	t.Helper()
	checkLeaks(t)
	g := grpc.NewServer(opts...)
	pb.RegisterBusServer(g, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return ln.Addr().String()
}
