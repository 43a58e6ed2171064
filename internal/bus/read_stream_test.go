package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

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
	p, addr := deafBus(t)
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

// TestReadStreamExpiredBatchFailsAlone sends, while a read is served on the
// stream, a batch whose deadline has passed (its reads' callers gave up
// but had not yet left the queue): that batch fails, and the stream and
// the read on it go on.
func TestReadStreamExpiredBatchFailsAlone(t *testing.T) {
	h := newFakeHandler()
	addr, _, p := startBus(t, h)
	b := heldBatcher(t, p, addr)
	for i := range 20 {
		ctx := testContext(t)
		served := h.reads.Load()
		errc := make(chan error, 1)
		go func() {
			_, _, err := b.read(ctx, &pb.ReadRequest{ShardId: shardStuck, Query: []byte("a")})
			errc <- err
		}()
		for h.reads.Load() == served { // the read is on the stream, held by the handler
			time.Sleep(time.Millisecond)
		}
		expired := &pendingRead{req: &pb.ReadRequest{ShardId: 1, Query: []byte("b")}, done: make(chan struct{}),
			deadline: time.Now().Add(-time.Millisecond)}
		c := &batchCall{b: b, reads: []*pendingRead{expired}}
		if err := c.call(context.Background(), []bool{false}); err == nil {
			t.Errorf("round %d: an expired batch succeeded", i)
		}
		select {
		case err := <-errc:
			t.Fatalf("round %d: the read on the stream ended with the expired batch: %v", i, err)
		case <-time.After(50 * time.Millisecond):
		}
		h.unstick <- struct{}{}
		if err := <-errc; err != nil {
			t.Fatalf("round %d: the read on the stream: %v", i, err)
		}
	}
}

// TestReadStreamBlockedSendKeepsDeadline checks that a read that goes
// alone on a stream whose Send is blocked (a host that stopped reading it,
// with batches of later deadlines in its window) returns by its own
// deadline, not when the blocked Send gives up at the later one.
func TestReadStreamBlockedSendKeepsDeadline(t *testing.T) {
	p, addr := deafBus(t)
	query := make([]byte, 400<<10) // three fill the 1 MiB window
	const long = 3 * time.Second
	done := make(chan struct{}, 6)
	for range 6 { // fill the window: a Send blocks until its batch's deadline
		go func() {
			defer func() { done <- struct{}{} }()
			ctx, cancel := context.WithTimeout(t.Context(), long)
			defer cancel()
			_, _, _ = p.Read(ctx, addr, 1, query, true, false)
		}()
	}
	time.Sleep(300 * time.Millisecond) // every read sent or waiting to be
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := p.Read(ctx, addr, 1, []byte("q"), true, false)
	if took := time.Since(start); took > time.Second {
		t.Errorf("a read with a 100 ms deadline returned after %v (%v)", took, err)
	}
	if err == nil {
		t.Error("read from a deaf host succeeded")
	}
	for range 6 {
		<-done
	}
}

// deafBus serves a bus whose host stops reading its ReadStreams, and
// returns a pool whose reads to it take a stream as stalled 10 ms after a
// send, and its address.
func deafBus(t *testing.T) (*Pool, string) {
	t.Helper()
	addr := serveBus(t, deafServer{NewServer(newFakeHandler(), testCodes)})
	p := NewPool(testCodes)
	t.Cleanup(p.Close)
	batcher(t, p, addr).stallAfter = 10 * time.Millisecond
	return p, addr
}

// TestReadStreamBlockedSendHonoursCancel checks that a read that goes
// alone on a stream, and whose Send blocks because the host stopped
// reading it, returns as soon as its caller cancels it, not at its
// deadline: the caller may have given up on the host to try another.
func TestReadStreamBlockedSendHonoursCancel(t *testing.T) {
	p, addr := deafBus(t)
	b := batcher(t, p, addr)
	query := make([]byte, 400<<10) // three fill the 1 MiB window
	sending := func() bool {       // a Send holds the stream's turn
		b.mu.Lock()
		rs := b.rs
		b.mu.Unlock()
		return rs != nil && len(rs.sendTurn) == 1
	}
	for i := range 10 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, _, err := p.Read(ctx, addr, 1, query, true, false)
			done <- err
		}()
		time.Sleep(200 * time.Millisecond) // sent, or blocked in Send; alone either way once stalled
		if !sending() {
			continue // sent: it waits for a result that never comes, until cancelled
		}
		t.Logf("read %d blocks in Send", i)
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled read: %v, want %v", err, context.Canceled)
			}
		case <-time.After(time.Second):
			t.Fatalf("a read cancelled while its Send blocked still waits after 1 s")
		}
		t.Logf("returned %v after its cancel", time.Since(start).Round(time.Millisecond))
		return
	}
	t.Fatal("no read's Send blocked")
}

// TestReadStreamCancelledReadsHoldNoSlot checks that reads whose callers
// cancel them while the host serves them on the stream (a stuck shard,
// callers without deadlines that give up) count as calls until the host
// is done with them. They stopped counting at once, so more were sent
// than the host serves on a stream at once (serveStreamBatches): it then
// stopped reading the stream, and a read of any other shard on that host
// waited behind them.
func TestReadStreamCancelledReadsHoldNoSlot(t *testing.T) {
	h := newFakeHandler()
	h.entered = make(chan uint64, 1)
	addr, _, p := startBus(t, h)
	t.Cleanup(func() { close(h.unstick) })
	for i := range serveStreamBatches {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _, _ = p.Read(ctx, addr, shardStuck, nil, false, false)
		}()
		select {
		case <-h.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("stuck read %d never reached the handler", i)
		}
		cancel()
		<-done
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	v, d, err := p.Read(ctx, addr, 1, []byte("q"), false, false)
	if err := checkRead(1, "q", readResult{v, d, err}); err != nil {
		t.Fatalf("after %d cancelled stuck reads: %v", serveStreamBatches, err)
	}
}
