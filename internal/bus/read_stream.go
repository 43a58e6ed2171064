package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ReadStream implements pb.BusServer. Each request is a batch, served as
// ReadBatch serves a call's reads, as soon as it arrives and concurrently
// with the others (up to serveStreamBatches; the next waits for one to
// end), under a deadline of its timeout from its arrival, at most
// serveMaxTimeout. Its results go back tagged with the batch. When the
// caller closes the stream, the batches still being served finish first;
// when the stream breaks, they are cancelled. A batch of more than
// serveBatchMaxReads reads, which no caller of this package sends, ends the
// stream with InvalidArgument.
func (s *Server) ReadStream(stream grpc.BidiStreamingServer[pb.ReadBatchRequest, pb.ReadBatchResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	var (
		wg     sync.WaitGroup
		sendMu sync.Mutex // one Send at a time
		live   = make(chan struct{}, serveStreamBatches)
	)
	send := func(res *pb.ReadBatchResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return s.sendResults(stream, res)
	}
	for {
		req, err := stream.Recv()
		if err == io.EOF { // the caller sends no more: answer what it sent
			wg.Wait()
			cancel()
			return nil
		}
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		if n := len(req.Reads); n > serveBatchMaxReads {
			cancel()
			wg.Wait()
			return answer(codes.InvalidArgument, fmt.Sprintf("bus: read batch of %d reads, at most %d", n, serveBatchMaxReads))
		}
		select {
		case live <- struct{}{}:
		case <-ctx.Done():
			cancel()
			wg.Wait()
			return status.FromContextError(ctx.Err()).Err()
		}
		wg.Go(func() {
			defer func() { <-live }()
			s.serveStreamBatch(ctx, req, send)
		})
	}
}

// serveStreamBatch serves one batch of a ReadStream. A batch that fails as
// a whole (too many reads, or its deadline passed) gets the error as the
// result of every read not yet answered.
func (s *Server) serveStreamBatch(ctx context.Context, req *pb.ReadBatchRequest, send func(*pb.ReadBatchResponse) error) {
	timeout := min(time.Duration(req.TimeoutMs)*time.Millisecond, serveMaxTimeout)
	if timeout <= 0 {
		timeout = batchNoDeadline
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	answered := make([]bool, len(req.Reads))
	var sendErr error
	err := s.serveBatch(ctx, req.Reads, func(results []*pb.ReadBatchResult) error {
		for _, r := range results {
			answered[r.Index] = true
		}
		sendErr = send(&pb.ReadBatchResponse{Batch: req.Batch, Results: results})
		return sendErr
	})
	if err == nil || sendErr != nil {
		return
	}
	st := status.Convert(err)
	var rest []*pb.ReadBatchResult
	for i, ok := range answered {
		if !ok {
			rest = append(rest, &pb.ReadBatchResult{Index: uint32(i), Code: uint32(st.Code()), Message: st.Message()})
		}
	}
	_ = send(&pb.ReadBatchResponse{Batch: req.Batch, Results: rest})
}

// readStream is the long-lived ReadStream to one address. Batches go out
// on it one Send at a time, and one goroutine takes their results in and
// hands each read its own. When the stream breaks, every batch on it fails
// with the stream's error, and the next batch opens another. Its mu may be
// held while taking its batcher's, never the other way round.
type readStream struct {
	b      *readBatcher
	stream grpc.BidiStreamingClient[pb.ReadBatchRequest, pb.ReadBatchResponse]
	cancel context.CancelFunc
	// sendTurn holds a token while a batch is sent: one Send at a time,
	// waited for under the batch's ctx.
	sendTurn chan struct{}

	mu       sync.Mutex
	batches  map[uint64]*streamBatch // sent, not yet wholly answered
	last     uint64                  // the last batch ID given out
	answered bool                    // a result came: the host serves ReadStream
	err      error                   // why the stream broke; nil while it works
}

// streamBatch is a batch in flight on a readStream.
type streamBatch struct {
	c        *batchCall
	answered []bool // which reads got their result; guarded by readStream.mu
	got      int
	done     chan struct{} // closed once every read is answered or the stream broke
	err      error         // the stream's error, when it broke first
}

// Errors of a readStream.
var (
	// errNoStream tells a batch that its host lacks ReadStream, so it
	// should go in a ReadBatch call of its own.
	errNoStream = errors.New("bus: peer does not serve ReadStream")
	// errStreamEnded is a stream that its host ended without an error.
	errStreamEnded = errors.New("bus: read stream ended")
	// errSendStuck is a stream whose Send blocked until a batch's
	// deadline: the host stopped reading it. Unavailable, as when the
	// connection breaks: the other batches on it, whose deadlines may be
	// far off, may go to another host.
	errSendStuck = status.Error(codes.Unavailable, "bus: read stream: the host stopped reading it (a send blocked past a batch's deadline)")
)

// stream returns the ReadStream to b's address, opening one if there is
// none, or errNoStream while the host is known to lack ReadStream. One
// batch opens a stream at a time, the others wait for it. Opening waits
// for the connection, while ctx lasts.
func (b *readBatcher) stream(ctx context.Context) (*readStream, error) {
	b.mu.Lock()
	for {
		if time.Now().Before(b.batchTill) {
			b.mu.Unlock()
			return nil, errNoStream
		}
		if rs := b.rs; rs != nil {
			b.mu.Unlock()
			return rs, nil
		}
		if b.opening == nil {
			break
		}
		opening := b.opening
		b.mu.Unlock()
		select {
		case <-opening:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		b.mu.Lock()
	}
	opening := make(chan struct{})
	b.opening = opening
	b.mu.Unlock()
	rs, err := b.openStream(ctx)
	b.mu.Lock()
	b.opening = nil
	close(opening)
	b.rs = rs
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	go rs.receive()
	return rs, nil
}

// openStream opens a ReadStream to b's address, while ctx lasts.
func (b *readBatcher) openStream(ctx context.Context) (*readStream, error) {
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	stream, err := b.pe.client.ReadStream(sctx)
	if !stop() && err == nil {
		err = ctx.Err() // ctx ended while the stream opened
	}
	if err != nil {
		cancel()
		return nil, b.p.err(b.addr, err)
	}
	return &readStream{b: b, stream: stream, cancel: cancel, sendTurn: make(chan struct{}, 1), batches: map[uint64]*streamBatch{}}, nil
}

// send sends c's batch as req and waits until every read in it is answered,
// the stream breaks or ctx, which has a deadline, is done. It marks the
// reads it answered; the error is for the others. A Send that blocks until
// the deadline (a host that stopped reading) breaks the stream; a caller
// that gives up meanwhile does not, and returns at once, nor a batch whose
// deadline passed before it could be sent, which fails alone.
func (rs *readStream) send(ctx context.Context, c *batchCall, req *pb.ReadBatchRequest, answered []bool) error {
	sb := &streamBatch{c: c, answered: answered, done: make(chan struct{})}
	rs.mu.Lock()
	if rs.err != nil {
		defer rs.mu.Unlock()
		return rs.err
	}
	rs.last++
	id := rs.last
	rs.batches[id] = sb
	rs.mu.Unlock()

	deadline, _ := ctx.Deadline()
	req.Batch = id
	// unsent withdraws the batch, which was never sent, with err.
	unsent := func(err error) error {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		if rs.batches[id] != sb { // failed meanwhile
			return sb.err
		}
		delete(rs.batches, id)
		return rs.b.p.err(rs.b.addr, err)
	}
	// Wait for the turn to send while ctx lasts: the Send before may be
	// blocked until a later deadline than this batch's.
	select {
	case rs.sendTurn <- struct{}{}:
	case <-ctx.Done():
		return unsent(status.FromContextError(ctx.Err()).Err())
	}
	left := time.Until(deadline)
	if left <= 0 { // expired before its turn to send: a stuck stream is another's
		<-rs.sendTurn
		return unsent(status.Error(codes.DeadlineExceeded, "bus: read batch: its deadline passed before it was sent"))
	}
	req.TimeoutMs = uint32(min(left.Milliseconds()+1, math.MaxUint32))
	// Sent on a goroutine of its own, so that a caller that gives up while
	// the Send blocks returns at once; the Send ends by the deadline.
	go rs.sendInTurn(req, left)

	select {
	case <-sb.done:
		return sb.err
	case <-ctx.Done():
		rs.mu.Lock()
		defer rs.mu.Unlock()
		if rs.batches[id] != sb { // answered or failed meanwhile
			return sb.err
		}
		if time.Now().Before(deadline) {
			// Cancelled: the host serves the batch until its deadline all the
			// same, and the call must count until it is done (batchMaxCalls).
			c.linger = func() { rs.linger(id, sb, deadline) }
		} else {
			delete(rs.batches, id)
		}
		return rs.b.p.err(rs.b.addr, status.FromContextError(ctx.Err()).Err())
	}
}

// linger waits until the host is done with batch id, sent, whose caller
// gave up on it: the batch is answered, the stream breaks, or its deadline
// passes.
func (rs *readStream) linger(id uint64, sb *streamBatch, deadline time.Time) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-sb.done:
		return
	case <-t.C:
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.batches[id] == sb {
		delete(rs.batches, id)
	}
}

// sendInTurn sends req, whose deadline is left from now, and then gives
// up the turn to send, which it was given. A Send that blocks until the
// deadline breaks the stream, as does one that fails: every batch on it
// fails.
func (rs *readStream) sendInTurn(req *pb.ReadBatchRequest, left time.Duration) {
	stuck := time.AfterFunc(left, func() { rs.fail(errSendStuck) })
	err := rs.stream.Send(req)
	stuck.Stop()
	<-rs.sendTurn
	if err != nil && err != io.EOF {
		rs.fail(err)
	} // on io.EOF the stream ended: receive learns why, and fails the batch
}

// receive hands results to their reads until the stream breaks.
func (rs *readStream) receive() {
	for {
		res, err := rs.stream.Recv()
		if err != nil {
			rs.fail(err)
			return
		}
		rs.mu.Lock()
		rs.answered = true
		sb := rs.batches[res.Batch]
		var first *batchCall
		if sb != nil {
			if sb.got == 0 {
				first = sb.c
			}
			sb.got += sb.c.deliver(res.Results, sb.answered)
			if sb.got == len(sb.answered) {
				delete(rs.batches, res.Batch)
				close(sb.done)
			}
		}
		rs.mu.Unlock()
		// The serving host has finished (most of) this batch: the next one
		// may go while the rest of this one is outstanding.
		if first != nil {
			first.release()
		}
	}
}

// fail breaks the stream, once: every batch on it fails with err, or with
// errNoStream if the host turned out to lack ReadStream, and the next
// batch opens another stream (or, for a while, goes in a ReadBatch call).
func (rs *readStream) fail(err error) {
	rs.mu.Lock()
	if rs.err != nil {
		rs.mu.Unlock()
		return
	}
	older := !rs.answered && status.Code(err) == codes.Unimplemented
	switch {
	case older:
		rs.err = errNoStream
	case err == io.EOF:
		rs.err = fmt.Errorf("bus %s: %w", rs.b.addr, errStreamEnded)
	default:
		rs.err = rs.b.p.err(rs.b.addr, err)
	}
	// The batcher lets go of the stream before its batches learn of the
	// failure, so that none of them finds it again.
	b := rs.b
	b.mu.Lock()
	if b.rs == rs {
		b.rs = nil
	}
	if older {
		b.batchTill = time.Now().Add(olderPeer)
	}
	b.mu.Unlock()
	for id, sb := range rs.batches {
		sb.err = rs.err
		close(sb.done)
		delete(rs.batches, id)
	}
	rs.mu.Unlock()
	rs.cancel()
}
