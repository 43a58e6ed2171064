package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

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

// TestReadBatchTooLargeFirstOfShard checks that a result too large for a
// bus message fails its own read only when it is the first linearizable
// read of its shard in a batch, the one whose read barrier the shard's
// other reads in the batch wait for: they succeed.
func TestReadBatchTooLargeFirstOfShard(t *testing.T) {
	h, _, addr, p, b, ctx := startPlugged(t)

	const n = 5
	plugCalls(t, h, func(int) { _, _, _ = p.Read(ctx, addr, 2, nil, false, false) })
	errs := make(chan error, n)
	go func() {
		_, _, err := p.Read(ctx, addr, 1, []byte(hugeQuery), false, false)
		if !errors.Is(err, errOverMax) {
			err = fmt.Errorf("read of a result too large: %v, want %v", err, errOverMax)
		} else {
			err = nil
		}
		errs <- err
	}()
	awaitQueued(t, b, 1) // first in the batch, so first of its shard
	for i := 1; i < n; i++ {
		go func() {
			query := fmt.Sprintf("q%d", i)
			v, d, err := p.Read(ctx, addr, 1, []byte(query), false, false)
			errs <- checkRead(1, query, readResult{v, d, err})
		}()
	}
	awaitQueued(t, b, n)
	close(h.plug)
	collect(t, errs, n)
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

// oldServer is a host of a version without ReadStream or ReadBatch.
type oldServer struct{ streamlessServer }

func (oldServer) ReadBatch(*pb.ReadBatchRequest, grpc.ServerStreamingServer[pb.ReadBatchResponse]) error {
	return status.Error(codes.Unimplemented, "unknown method ReadBatch for service zongzi.bus.Bus")
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

// TestReadBatchStuckShardHoldsBackNoOther checks that reads stuck on one
// shard (one without a leader, say), each in a call of its own once the
// one before stalled, hold back no read of another shard when they are
// as many as the calls an address may have: that read goes as a unary
// Read, instead of waiting in the queue for a stuck call's deadline.
func TestReadBatchStuckShardHoldsBackNoOther(t *testing.T) {
	h := newFakeHandler()
	h.entered = make(chan uint64, 2*batchMaxCalls)
	addr, _, p := startBus(t, h)
	batcher(t, p, addr).stallAfter = 10 * time.Millisecond
	ctx := testContext(t)
	var stuck sync.WaitGroup
	t.Cleanup(func() { close(h.unstick); stuck.Wait() })
	for i := range batchMaxCalls {
		stuck.Go(func() { _, _, _ = p.Read(ctx, addr, shardStuck, nil, false, false) })
		select {
		case <-h.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("stuck read %d never reached the handler", i)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	v, d, err := p.Read(rctx, addr, 1, []byte("q"), false, false)
	if err := checkRead(1, "q", readResult{v, d, err}); err != nil {
		t.Fatalf("with %d reads stuck on another shard: %v", batchMaxCalls, err)
	}
}
