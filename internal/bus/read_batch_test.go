package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
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

func (f *fakeHandler) Info(context.Context) (*pb.InfoResponse, error) {
	return &pb.InfoResponse{HostId: "fake"}, nil
}
func (f *fakeHandler) Join(context.Context, *pb.JoinRequest) (uint64, error) {
	return 0, errNotReady
}
func (f *fakeHandler) Membership(context.Context, *pb.MembershipRequest) error { return errNotReady }
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

func TestReadBatchConcurrentReads(t *testing.T) {
	var count batchCounter
	addr, _, p := startBus(t, newFakeHandler(), count.options()...)
	ctx := testContext(t)
	const n = 200
	errs := make(chan error, n)
	for i := range n {
		go func() {
			shard, query := uint64(100+i%5), fmt.Sprintf("q%d", i)
			v, d, err := p.Read(ctx, addr, shard, []byte(query), i%2 == 0, i%3 == 0)
			errs <- checkRead(shard, query, readResult{v, d, err})
		}()
	}
	collect(t, errs, n)
	t.Logf("%d reads in %d batches on %d streams", n, count.batches.Load(), count.streams.Load())
	if got := count.streams.Load(); got != 1 {
		t.Errorf("%d ReadStream calls, want 1", got)
	}
	if got := count.unary.Load() + count.readBatches.Load(); got != 0 {
		t.Errorf("%d Read and ReadBatch calls, want none", got)
	}
}

// TestReadStreamOpensOnce checks that batches that start together, with
// no stream yet, open one stream between them.
func TestReadStreamOpensOnce(t *testing.T) {
	var count batchCounter
	addr, _, p := startBus(t, newFakeHandler(), count.options()...)
	b := batcher(t, p, addr)
	b.live = batchMaxCalls // every read goes at once, alone
	ctx := testContext(t)
	const n = 32
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			query := fmt.Sprintf("q%d", i)
			v, d, err := p.Read(ctx, addr, 1, []byte(query), true, false)
			errs <- checkRead(1, query, readResult{v, d, err})
		}()
	}
	close(start)
	collect(t, errs, n)
	if got := count.streams.Load(); got != 1 {
		t.Errorf("%d ReadStream calls, want 1", got)
	}
}

func TestReadBatchPerReadErrors(t *testing.T) {
	addr, _, p := startBus(t, newFakeHandler())
	ctx := testContext(t)
	const n = 90
	shards := []uint64{1, shardNotReady, 2, shardBroken, 3}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			shard, query := shards[i%len(shards)], fmt.Sprintf("q%d", i)
			v, d, err := p.Read(ctx, addr, shard, []byte(query), false, false)
			switch shard {
			case shardNotReady:
				if !errors.Is(err, errNotReady) {
					t.Errorf("read %d: %v, want %v", shard, err, errNotReady)
				}
			case shardBroken:
				if err == nil || errors.Is(err, errNotReady) || !strings.Contains(err.Error(), "disk on fire") {
					t.Errorf("read %d: %v, want the handler's own error", shard, err)
				}
			default:
				if err := checkRead(shard, query, readResult{v, d, err}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

func TestReadBatchCoalesces(t *testing.T) {
	h, count, addr, p, b, ctx := startPlugged(t)

	const n = 100
	errs := make(chan error, n)
	read := func(i int) {
		shard, query := uint64(1+i%3), fmt.Sprintf("q%d", i)
		v, d, err := p.Read(ctx, addr, shard, []byte(query), false, true)
		errs <- checkRead(shard, query, readResult{v, d, err})
	}
	plugged := queueBehindPlugs(t, h, b, n, read)
	close(h.plug)
	collect(t, errs, n)
	// The plugged reads went alone, each a batch of its own; the rest
	// together, all on one stream.
	if got, want := count.batches.Load(), int64(plugged+1); got != want {
		t.Errorf("%d reads in %d batches, want %d (%d alone, one of %d)", n, got, want, plugged, n-plugged)
	}
	if got := count.streams.Load(); got != 1 {
		t.Errorf("%d ReadStream calls, want 1", got)
	}
	if got := h.reads.Load(); got != n {
		t.Errorf("handler served %d reads, want %d", got, n)
	}
}

func TestReadBatchSplitsLargeBatches(t *testing.T) {
	h, count, addr, p, b, ctx := startPlugged(t)

	const n = batchLive + batchMaxReads + 10
	errs := make(chan error, n)
	read := func(i int) {
		query := fmt.Sprintf("q%d", i)
		v, d, err := p.Read(ctx, addr, 1, []byte(query), false, false)
		errs <- checkRead(1, query, readResult{v, d, err})
	}
	plugged := queueBehindPlugs(t, h, b, n, read)
	close(h.plug)
	collect(t, errs, n)
	if got, want := count.batches.Load(), int64(plugged+2); got != want {
		t.Errorf("%d reads in %d batches, want %d (%d alone, one of %d, one of 10)", n, got, want, plugged, batchMaxReads)
	}
}

func TestReadBatchLargeResults(t *testing.T) {
	h, count, addr, p, b, ctx := startPlugged(t)

	const n = 10
	plugged := plugCalls(t, h, func(int) { _, _, _ = p.Read(ctx, addr, 1, nil, false, false) })
	errs := make(chan error, n)
	for range n {
		go func() {
			_, d, err := p.Read(ctx, addr, shardLarge, nil, false, false)
			if err == nil && len(d) != largeResult {
				err = fmt.Errorf("%d bytes, want %d", len(d), largeResult)
			}
			errs <- err
		}()
	}
	awaitQueued(t, b, n)
	close(h.plug)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("large read: %v", err)
		}
	}
	if got, want := count.batches.Load(), int64(plugged+1); got != want {
		t.Errorf("%d batches, want %d", got, want)
	}
}

// TestReadBatchTooLarge checks that a result or a query too large for a
// bus message fails its own read, and no other: neither the reads in its
// batch nor those on the stream after it.
func TestReadBatchTooLarge(t *testing.T) {
	h, count, addr, p, b, ctx := startPlugged(t)

	const n = 10
	errs := make(chan error, n)
	read := func(i int) {
		shard, query := uint64(1), fmt.Sprintf("q%d", i)
		if i == n/2 {
			shard = shardHuge
		}
		v, d, err := p.Read(ctx, addr, shard, []byte(query), false, false)
		if shard != shardHuge {
			errs <- checkRead(shard, query, readResult{v, d, err})
			return
		}
		if !errors.Is(err, errOverMax) || !strings.Contains(err.Error(), "message limit") {
			err = fmt.Errorf("read of a result too large: %v, want %v about the message limit", err, errOverMax)
		} else {
			err = nil
		}
		errs <- err
	}
	queueBehindPlugs(t, h, b, n, read)
	close(h.plug)
	collect(t, errs, n)
	read(0)
	if err := <-errs; err != nil {
		t.Error(err)
	}
	// A query too large for a message is not sent.
	if _, _, err := p.Read(ctx, addr, 1, make([]byte, 5<<20), false, false); !errors.Is(err, errOverMax) || !strings.Contains(err.Error(), "message limit") {
		t.Errorf("read of a query too large: %v, want %v about the message limit", err, errOverMax)
	}
	// A unary Read of a result too large fails with the same error.
	pe, err := p.get(addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.readUnary(ctx, addr, pe, &pb.ReadRequest{ShardId: shardHuge}); !errors.Is(err, errOverMax) || !strings.Contains(err.Error(), "message limit") {
		t.Errorf("unary read of a result too large: %v, want %v about the message limit", err, errOverMax)
	}
	read(1)
	if err := <-errs; err != nil {
		t.Error(err)
	}
	if got := count.streams.Load(); got != 1 {
		t.Errorf("%d ReadStream calls, want 1", got)
	}
}

func TestReadBatchCallerCancels(t *testing.T) {
	h := newFakeHandler()
	h.entered = make(chan uint64, 1000)
	addr, _, p := startBus(t, h)
	b := batcher(t, p, addr)
	b.live = 1 // only stalling lets the next call go
	b.stallAfter = 10 * time.Millisecond
	t.Cleanup(func() { close(h.unstick) })

	stuckCtx, cancelStuck := context.WithCancel(t.Context())
	stuck := make(chan error, 1)
	go func() {
		_, _, err := p.Read(stuckCtx, addr, shardStuck, []byte("x"), false, false)
		stuck <- err
	}()
	<-h.entered

	// The stuck read's call holds back the next batch for stallAfter only.
	ctx := testContext(t)
	const n = 50
	errs := make(chan error, n)
	for i := range n {
		go func() {
			query := fmt.Sprintf("q%d", i)
			v, d, err := p.Read(ctx, addr, 1, []byte(query), false, false)
			errs <- checkRead(1, query, readResult{v, d, err})
		}()
	}
	collect(t, errs, n)
	select {
	case err := <-stuck:
		t.Fatalf("stuck read returned %v before its caller gave up", err)
	default:
	}
	cancelStuck()
	select {
	case err := <-stuck:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled read: %v, want %v", err, context.Canceled)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled read did not return")
	}
}

func TestReadBatchQueuedReadCancels(t *testing.T) {
	h := newPluggedHandler()
	addr, _, p := startBus(t, h)
	b := heldBatcher(t, p, addr)
	ctx := testContext(t)

	plugged := plugCalls(t, h, func(int) { _, _, _ = p.Read(ctx, addr, 1, nil, false, false) })
	queuedCtx, cancelQueued := context.WithCancel(ctx)
	queued := make(chan error, 1)
	go func() {
		_, _, err := p.Read(queuedCtx, addr, 2, nil, false, false)
		queued <- err
	}()
	awaitQueued(t, b, 1)
	cancelQueued()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v, want %v", err, context.Canceled)
	}
	// A read whose caller has gone is not sent.
	close(h.plug)
	query := "after"
	v, d, err := p.Read(ctx, addr, 3, []byte(query), false, false)
	if err := checkRead(3, query, readResult{v, d, err}); err != nil {
		t.Error(err)
	}
	if got, want := h.reads.Load(), int64(plugged+1); got != want {
		t.Errorf("handler served %d reads, want %d", got, want)
	}
}

func TestReadBatchSlowReadDelaysNoOther(t *testing.T) {
	h := newPluggedHandler()
	addr, _, p := startBus(t, h)
	b := heldBatcher(t, p, addr)
	t.Cleanup(func() { close(h.unstick) })
	ctx := testContext(t)

	plugCalls(t, h, func(int) { _, _, _ = p.Read(ctx, addr, 1, []byte("plug"), false, false) })
	stuck := make(chan error, 1)
	go func() {
		_, _, err := p.Read(ctx, addr, shardStuck, []byte("x"), false, false)
		stuck <- err
	}()
	awaitQueued(t, b, 1)
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			query := fmt.Sprintf("q%d", i)
			v, d, err := p.Read(ctx, addr, 2, []byte(query), false, false)
			errs <- checkRead(2, query, readResult{v, d, err})
		}()
	}
	awaitQueued(t, b, 1+n)
	close(h.plug) // the stuck read and the others go in one call
	collect(t, errs, n)
	select {
	case err := <-stuck:
		t.Fatalf("stuck read returned %v", err)
	default:
	}
}

func TestReadBatchServerStops(t *testing.T) {
	h := newFakeHandler()
	h.entered = make(chan uint64, 1000)
	addr, srv, p := startBus(t, h)
	b := heldBatcher(t, p, addr)
	t.Cleanup(func() { close(h.unstick) })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	const n = 40
	errs := make(chan error, n)
	read := func(int) {
		_, _, err := p.Read(ctx, addr, shardStuck, []byte("x"), false, false)
		errs <- err
	}
	queueBehindPlugs(t, h, b, n, read)
	srv.Stop()
	timeout := time.After(10 * time.Second)
	for i := range n {
		select {
		case err := <-errs:
			// Unavailable, which the root package reads as "try the
			// next host".
			if !errors.Is(err, errNotReady) || ctx.Err() != nil {
				t.Errorf("read %d: %v, want %v", i, err, errNotReady)
			}
		case <-timeout:
			t.Fatalf("%d of %d reads still waiting after the server stopped", n-i, n)
		}
	}
}

// streamlessServer is a host of a version without ReadStream.
type streamlessServer struct{ *Server }

func (streamlessServer) ReadStream(grpc.BidiStreamingServer[pb.ReadBatchRequest, pb.ReadBatchResponse]) error {
	return status.Error(codes.Unimplemented, "unknown method ReadStream for service zongzi.bus.Bus")
}

// oldServer is a host of a version without ReadStream or ReadBatch.
type oldServer struct{ streamlessServer }

func (oldServer) ReadBatch(*pb.ReadBatchRequest, grpc.ServerStreamingServer[pb.ReadBatchResponse]) error {
	return status.Error(codes.Unimplemented, "unknown method ReadBatch for service zongzi.bus.Bus")
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

func TestReadBatchOlderPeer(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  func(*Server) pb.BusServer
		// What the server receives for 30 reads, the first alone.
		readBatches, unary int64
	}{
		// The read alone finds the host lacks ReadStream and goes unary;
		// the other 29 go in one ReadBatch call.
		{"without ReadStream", func(s *Server) pb.BusServer { return streamlessServer{s} }, 1, 1},
		// The batch of 29 finds the host lacks ReadBatch too: every read
		// goes unary.
		{"without ReadBatch", func(s *Server) pb.BusServer { return oldServer{streamlessServer{s}} }, 1, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newPluggedHandler()
			var count batchCounter
			addr := serveBus(t, tc.srv(NewServer(h, testCodes)), count.options()...)
			p := NewPool(testCodes)
			t.Cleanup(p.Close)
			b := heldBatcher(t, p, addr)
			ctx := testContext(t)

			const n = 30
			errs := make(chan error, n)
			read := func(i int) {
				query := fmt.Sprintf("q%d", i)
				v, d, err := p.Read(ctx, addr, 5, []byte(query), false, false)
				errs <- checkRead(5, query, readResult{v, d, err})
			}
			queueBehindPlugs(t, h, b, n, read)
			close(h.plug)
			collect(t, errs, n)
			if got := count.streams.Load(); got != 1 {
				t.Errorf("%d ReadStream calls, want 1", got)
			}
			if got := count.readBatches.Load(); got != tc.readBatches {
				t.Errorf("%d ReadBatch calls, want %d", got, tc.readBatches)
			}
			if got := count.unary.Load(); got != tc.unary {
				t.Errorf("%d Read calls, want %d", got, tc.unary)
			}
			if _, _, err := p.Read(ctx, addr, shardNotReady, nil, false, false); !errors.Is(err, errNotReady) {
				t.Errorf("read of a shard not ready: %v, want %v", err, errNotReady)
			}
		})
	}
}

// confusedServer answers ReadBatch with results for reads it was not sent,
// and lacks ReadStream.
type confusedServer struct{ streamlessServer }

func (confusedServer) ReadBatch(req *pb.ReadBatchRequest, stream grpc.ServerStreamingServer[pb.ReadBatchResponse]) error {
	return stream.Send(&pb.ReadBatchResponse{Results: confusedResults(req)})
}

// confusedResults are results for reads that are not in req.
func confusedResults(req *pb.ReadBatchRequest) []*pb.ReadBatchResult {
	return []*pb.ReadBatchResult{{Index: 1 << 31, Value: 1}, {Index: uint32(len(req.Reads)), Value: 2}}
}

func TestReadBatchConfusedPeer(t *testing.T) {
	h := newPluggedHandler()
	addr := serveBus(t, confusedServer{streamlessServer{NewServer(h, testCodes)}})
	p := NewPool(testCodes)
	t.Cleanup(p.Close)
	b := heldBatcher(t, p, addr)
	ctx := testContext(t)

	plugCalls(t, h, func(int) { _, _, _ = p.Read(ctx, addr, 1, nil, false, false) })
	const n = 3
	errs := make(chan error, n)
	for range n {
		go func() {
			_, _, err := p.Read(ctx, addr, 1, nil, false, false)
			errs <- err
		}()
	}
	awaitQueued(t, b, n)
	close(h.plug)
	for range n {
		if err := <-errs; err == nil || ctx.Err() != nil {
			t.Errorf("read from a confused peer: %v, want an error", err)
		}
	}
}

// confusedStreamServer answers the first batch on a ReadStream with
// results for reads it was not sent, and for a batch it was not sent,
// and then ends the stream.
type confusedStreamServer struct{ *Server }

func (confusedStreamServer) ReadStream(stream grpc.BidiStreamingServer[pb.ReadBatchRequest, pb.ReadBatchResponse]) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	if err := stream.Send(&pb.ReadBatchResponse{Batch: req.Batch, Results: confusedResults(req)}); err != nil {
		return err
	}
	return stream.Send(&pb.ReadBatchResponse{Batch: req.Batch + 1, Results: []*pb.ReadBatchResult{{Index: 0, Value: 3}}})
}

func TestReadStreamConfusedPeer(t *testing.T) {
	addr := serveBus(t, confusedStreamServer{NewServer(newFakeHandler(), testCodes)})
	p := NewPool(testCodes)
	t.Cleanup(p.Close)
	ctx := testContext(t)
	for i := range 3 {
		_, _, err := p.Read(ctx, addr, 1, nil, false, false)
		if err == nil || ctx.Err() != nil {
			t.Errorf("read %d from a confused peer: %v, want an error", i, err)
		}
	}
}

func TestReadBatchRejectsOversizedBatch(t *testing.T) {
	addr, _, _ := startBus(t, newFakeHandler())
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := &pb.ReadBatchRequest{Reads: make([]*pb.ReadRequest, serveBatchMaxReads+1), Batch: 9, TimeoutMs: 5000}
	for i := range req.Reads {
		req.Reads[i] = &pb.ReadRequest{ShardId: 1}
	}
	ctx := testContext(t)
	client := pb.NewBusClient(conn)

	stream, err := client.ReadBatch(ctx, req)
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("oversized ReadBatch call: %v, want %v", err, codes.InvalidArgument)
	}

	// On a ReadStream, it ends the stream: a result for each of its reads
	// would come to a hundred times the request.
	rs, err := client.ReadStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(req); err != nil {
		t.Fatal(err)
	}
	if res, err := rs.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("oversized batch on a stream: %v (%d results), want %v", err, len(res.GetResults()), codes.InvalidArgument)
	}
}

// TestReadStreamBoundsBatches sends a stream more batches of stuck reads
// than it serves at once: the rest wait until one ends, then are served.
func TestReadStreamBoundsBatches(t *testing.T) {
	h := newFakeHandler()
	h.entered = make(chan uint64, 1000)
	addr, _, _ := startBus(t, h)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rs, err := pb.NewBusClient(conn).ReadStream(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	const extra = 5
	for i := range serveStreamBatches + extra {
		req := &pb.ReadBatchRequest{Batch: uint64(i + 1), TimeoutMs: 10000, Reads: []*pb.ReadRequest{{ShardId: shardStuck}}}
		if err := rs.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	for i := range serveStreamBatches {
		select {
		case <-h.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d batches reached the handler, want %d", i, serveStreamBatches)
		}
	}
	select {
	case <-h.entered:
		t.Fatalf("a batch over the %d served at once reached the handler", serveStreamBatches)
	case <-time.After(200 * time.Millisecond):
	}
	close(h.unstick)
	for got := 0; got < serveStreamBatches+extra; got++ {
		if _, err := rs.Recv(); err != nil {
			t.Fatalf("result %d: %v", got, err)
		}
	}
}

// TestReadStreamReopens checks that reads to a host that restarted go on
// a new stream, and that a batch whose caller gives up leaves the stream
// working.
func TestReadStreamReopens(t *testing.T) {
	var count batchCounter
	h := newFakeHandler()
	h.entered = make(chan uint64, 1000)
	addr, srv, p := startBus(t, h, count.options()...)
	t.Cleanup(func() { close(h.unstick) })
	ctx := testContext(t)
	check := func(what string) {
		t.Helper()
		v, d, err := p.Read(ctx, addr, 1, []byte(what), false, false)
		if err := checkRead(1, what, readResult{v, d, err}); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	check("first")
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := p.Read(short, addr, shardStuck, nil, false, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stuck read: %v, want %v", err, context.DeadlineExceeded)
	}
	check("after a read gave up")
	if got := count.streams.Load(); got != 1 {
		t.Errorf("%d ReadStream calls, want 1", got)
	}

	srv.Stop()
	if _, _, err := p.Read(ctx, addr, 1, nil, false, false); !errors.Is(err, errNotReady) {
		t.Errorf("read from a stopped host: %v, want %v", err, errNotReady)
	}
	srv = NewServer(h, testCodes, count.options()...)
	if _, err := srv.Listen(addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	for {
		_, _, err := p.Read(ctx, addr, 1, nil, false, false)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no read from the restarted host: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	check("after the host restarted")
	if got := count.streams.Load(); got != 2 {
		t.Errorf("%d ReadStream calls, want 2", got)
	}
}

// deafServer takes ReadStreams but never reads them.
type deafServer struct{ *Server }

func (deafServer) ReadStream(stream grpc.BidiStreamingServer[pb.ReadBatchRequest, pb.ReadBatchResponse]) error {
	<-stream.Context().Done()
	return nil
}

// TestReadStreamDeafPeer checks that reads to a host that stops reading
// its stream return by their deadlines, though the stream's flow-control
// window is full: a Send blocked past its batch's deadline breaks the
// stream, so it holds back no read after it.
func TestReadStreamDeafPeer(t *testing.T) {
	addr := serveBus(t, deafServer{NewServer(newFakeHandler(), testCodes)})
	p := NewPool(testCodes)
	t.Cleanup(p.Close)
	b := batcher(t, p, addr)
	b.stallAfter = 10 * time.Millisecond
	query := make([]byte, 400<<10) // three fill the 1 MiB window
	read := func(n int) {
		t.Helper()
		errs := make(chan error, n)
		for range n {
			go func() {
				ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
				defer cancel()
				_, _, err := p.Read(ctx, addr, 1, query, true, false)
				errs <- err
			}()
		}
		for range n {
			select {
			case err := <-errs:
				if err == nil {
					t.Error("read from a deaf host succeeded")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a read to a deaf host still waits after 10 s")
			}
		}
	}
	read(6) // fill the window: a batch's Send blocks
	read(1) // the next read waits for no blocked Send
}

// BenchmarkPoolRead compares forwarded reads that coalesce (with one or
// two calls outstanding per address) with one unary Read per read, from 64
// concurrent callers to one in-process host. Its reads take no time
// ("instant": what is measured is the bus's CPU per read), or their
// linearizable reads wait for rounds of 300µs run one after another as the
// read barrier runs ReadIndex rounds ("rounds=300us": there the serving
// host's latency, not CPU, is the limit, and a read that waits for an
// outstanding call to return loses time). A batch's reads of one shard
// after its first are stale on the serving host, which reads them after
// the first one's barrier, so they wait for no round.
func BenchmarkPoolRead(b *testing.B) {
	for _, round := range []time.Duration{0, 300 * time.Microsecond} {
		name := "instant"
		if round > 0 {
			name = fmt.Sprintf("rounds=%dus", round.Microseconds())
		}
		b.Run(name, func(b *testing.B) { benchPoolRead(b, round) })
	}
}

func benchPoolRead(b *testing.B, round time.Duration) {
	h := newFakeHandler()
	h.round = round
	var count batchCounter
	addr, _, p := startBus(b, h, count.options()...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	query := []byte("key-0000000001")
	pe, err := p.get(addr)
	if err != nil {
		b.Fatal(err)
	}
	bench := func(read func() error) func(b *testing.B) {
		return func(b *testing.B) {
			calls0 := count.batches.Load() + count.unary.Load()
			rounds0 := h.rounds.count.Load()
			b.SetParallelism(64 / runtime.GOMAXPROCS(0))
			b.RunParallel(func(tpb *testing.PB) {
				for tpb.Next() {
					if err := read(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			calls := count.batches.Load() + count.unary.Load() - calls0
			b.ReportMetric(float64(b.N)/float64(max(calls, 1)), "reads/call")
			if round > 0 {
				b.ReportMetric(float64(b.N)/float64(max(h.rounds.count.Load()-rounds0, 1)), "reads/round")
			}
		}
	}
	b.Run("unary", bench(func() error {
		_, _, err := p.readUnary(ctx, addr, pe, &pb.ReadRequest{ShardId: 1, Query: query, Leader: true})
		return err
	}))
	for _, live := range []int{1, 2} {
		pe.reads.mu.Lock()
		pe.reads.live = live
		pe.reads.mu.Unlock()
		b.Run(fmt.Sprintf("batched/live=%d", live), bench(func() error {
			_, _, err := p.Read(ctx, addr, 1, query, false, true)
			return err
		}))
	}
}
