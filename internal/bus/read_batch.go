package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limits of the read coalescer. A batch stays well under gRPC's default
// 4 MiB limit on a received message, which the serving host enforces.
const (
	// batchMaxReads is the most reads one ReadBatch call carries.
	batchMaxReads = 256
	// batchMaxBytes is the most query bytes one ReadBatch call carries; a
	// single larger query travels alone.
	batchMaxBytes = 1 << 20
	// batchLive is how many batches to one address may be outstanding
	// before reads queue for the next. Two measured no better with
	// forwarded reads on an in-process cluster (BenchmarkShardClient), in
	// BenchmarkPoolRead/instant (3.7 µs per read against 3.3 on a
	// ReadStream, where unary reads take 20), nor where the serving host's
	// read barrier, not CPU, is the limit (BenchmarkPoolRead/rounds=300us:
	// 53–54 µs per read against 43, unary reads 35–38).
	batchLive = 1
	// batchMaxCalls bounds the calls to one address, stalled ones included.
	// Reads that find that many outstanding go as unary Reads rather than
	// wait for one to end: reads stuck on one shard (one without a leader)
	// may hold them all until their deadlines.
	batchMaxCalls = 64
	// batchStallAfter is how long a call may go without any result before
	// it stops holding back the next batch (plus twice the measured round
	// trip): a read stuck on one shard, e.g. during a leader change, must
	// not queue the reads of every other shard on that host behind it.
	batchStallAfter = 100 * time.Millisecond
	// batchNoDeadline bounds a batch whose reads carry no deadline.
	batchNoDeadline = 5 * time.Second
	// olderPeer is how long batches to a host that lacks ReadStream, or
	// reads to one that lacks ReadBatch too (an older version), go the
	// older way before the newer one is tried again.
	olderPeer = 30 * time.Second
)

// errNoBatch tells a waiting read to go again as a unary Read: its host
// lacks ReadBatch, or every call to it that may be is outstanding.
var errNoBatch = errors.New("bus: peer does not serve ReadBatch")

// readBatcher coalesces the reads forwarded to one address. A read that
// finds fewer than live calls to the address outstanding, and no read
// queued, goes at once and alone, under its caller's ctx, on its caller's
// goroutine. Otherwise it queues, and everything queued (up to
// batchMaxReads reads or batchMaxBytes of queries) goes in one batch as soon
// as an outstanding call brings back its first results, finishes, or
// stalls; while batchMaxCalls calls are outstanding, as unary Reads
// instead, which wait for none of them. Batches, a read alone too, go on
// one long-lived ReadStream per address (readStream), which costs no call
// of its own per batch; to an older host, in a ReadBatch call each, or one
// unary Read per read. Results come back tagged with their read's
// position, so each read gets its own, and returns when it arrives or when
// its own ctx is done.
//
// Linearizability. A linearizable read must observe every write
// acknowledged before the read was issued. A read joins only a batch sent
// after the read was queued (the queue is drained only into batches that
// start afterwards, and nothing is retried from here but a whole batch that
// a host without ReadStream never received), and the serving host starts on
// a batch only once it has received it. There it serves every read with
// Handler.Read, concurrently, as it serves a unary Read: a read that is not
// stale waits for a ReadIndex round that started after Handler.Read was
// called, hence after the read was issued, and then queries a replica that
// has applied at least up to that index. So it observes every write
// acknowledged before it was issued, however many other reads shared its
// batch or its round. A read whose caller gave up returns its ctx's error,
// never a late result.
//
// Cancellation. A batch carries no caller's cancellation, nor does a read
// alone on a stream (it does in a call of its own, to an older host): a
// batch's deadline is the latest among its reads' (reads without one count
// as batchNoDeadline), and the serving host serves it under that deadline,
// so one caller giving up cancels no other's read. A read has no side
// effect, so giving up early is safe; its call counts until the host is
// done with it all the same, so that callers giving up send the host no
// more batches at once than it serves. A batch that fails as a whole
// (the host is down, say) fails every read it carried that has no result
// yet, with the error a unary Read would get.
type readBatcher struct {
	p    *Pool
	addr string
	pe   *peer
	// live and stallAfter are batchLive and batchStallAfter, fields so
	// that tests and benchmarks can vary them.
	live       int
	stallAfter time.Duration

	mu        sync.Mutex
	queue     []*pendingRead
	liveCalls int           // outstanding calls that hold back the next batch
	calls     int           // all outstanding calls
	unaryTill time.Time     // reads go unary until then (an older peer)
	batchTill time.Time     // batches go in ReadBatch calls until then (an older peer)
	rs        *readStream   // the stream batches go on; nil until one is opened
	opening   chan struct{} // closed once the stream being opened is, or is not
}

// pendingRead is one read waiting in, or sent with, a batch.
type pendingRead struct {
	req      *pb.ReadRequest
	deadline time.Time // zero when the caller's ctx has none
	gone     atomic.Bool
	done     chan struct{} // closed once value, data and err are set
	value    uint64
	data     []byte
	err      error
}

func newReadBatcher(p *Pool, addr string, pe *peer) *readBatcher {
	return &readBatcher{p: p, addr: addr, pe: pe, live: batchLive, stallAfter: batchStallAfter}
}

// read sends req, alone or with others, and waits for its result or ctx.
func (b *readBatcher) read(ctx context.Context, req *pb.ReadRequest) (uint64, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, fmt.Errorf("bus %s: read: %w", b.addr, err)
	}
	if len(req.Query) > maxPayload {
		return 0, nil, b.p.tooLarge("query", len(req.Query))
	}
	b.mu.Lock()
	if b.unaryLocked() {
		b.mu.Unlock()
		return b.p.readUnary(ctx, b.addr, b.pe, req)
	}
	if len(b.queue) == 0 && b.liveCalls < b.live && b.calls < batchMaxCalls {
		b.liveCalls++
		b.calls++
		b.mu.Unlock()
		return b.readAlone(ctx, req)
	}
	r := &pendingRead{req: req, done: make(chan struct{})}
	r.deadline, _ = ctx.Deadline()
	b.queue = append(b.queue, r)
	b.startLocked()
	b.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		r.gone.Store(true)
		return 0, nil, fmt.Errorf("bus %s: read: %w", b.addr, ctx.Err())
	}
	if errors.Is(r.err, errNoBatch) {
		return b.p.readUnary(ctx, b.addr, b.pe, req)
	}
	if r.err != nil {
		if err := ctxErr(ctx); err != nil { // the batch may have failed for its deadline, which was this read's
			return 0, nil, fmt.Errorf("bus %s: read: %w", b.addr, err)
		}
	}
	return r.value, r.data, r.err
}

// readAlone makes a read that found nothing queued and a call free: it goes
// at once, alone, under its caller's ctx, on the caller's goroutine. It
// counts as a call like any other, until the host is done with it even
// when its caller cancelled it.
func (b *readBatcher) readAlone(ctx context.Context, req *pb.ReadRequest) (uint64, []byte, error) {
	r := &pendingRead{req: req, done: make(chan struct{})}
	r.deadline, _ = ctx.Deadline()
	c := &batchCall{b: b, reads: []*pendingRead{r}}
	stall := time.AfterFunc(b.stallAfter+2*b.p.rttOf(b.pe), c.release)
	answered := []bool{false}
	err := c.call(ctx, answered)
	stall.Stop()
	if c.linger != nil { // the read may still be answered: answered and r are not ours
		c.release()
		go func() {
			c.linger()
			c.end()
		}()
		return 0, nil, fmt.Errorf("bus %s: read: %w", b.addr, ctx.Err())
	}
	c.end()
	if answered[0] && r.err == nil {
		return r.value, r.data, nil
	}
	if err := ctxErr(ctx); err != nil { // the host's error may be that the deadline passed there too
		return 0, nil, fmt.Errorf("bus %s: read: %w", b.addr, err)
	}
	if answered[0] {
		return 0, nil, r.err
	}
	return 0, nil, err
}

// ctxErr is ctx's error, or context.DeadlineExceeded once its deadline has
// passed, which may be before its timer has fired.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// unaryLocked says whether reads go unary for now. b.mu is held.
func (b *readBatcher) unaryLocked() bool {
	return time.Now().Before(b.unaryTill) // false while unset: the zero time has passed
}

// startLocked sends queued reads while calls may start, or as unary Reads
// when none may (see batchMaxCalls). b.mu is held.
func (b *readBatcher) startLocked() {
	if b.unaryLocked() || b.calls >= batchMaxCalls {
		for _, r := range b.queue {
			r.err = errNoBatch
			close(r.done)
		}
		clear(b.queue)
		b.queue = b.queue[:0]
		return
	}
	for b.liveCalls < b.live && b.calls < batchMaxCalls {
		batch := b.takeLocked()
		if len(batch) == 0 {
			return
		}
		b.liveCalls++
		b.calls++
		c := &batchCall{b: b, reads: batch}
		go c.run()
	}
}

// takeLocked removes the next batch from the queue, skipping reads whose
// callers have gone. b.mu is held.
func (b *readBatcher) takeLocked() []*pendingRead {
	var batch []*pendingRead
	size, i := 0, 0
	for ; i < len(b.queue); i++ {
		r := b.queue[i]
		if r.gone.Load() {
			continue
		}
		n := len(r.req.Query)
		if len(batch) == batchMaxReads || (len(batch) > 0 && size+n > batchMaxBytes) {
			break
		}
		batch = append(batch, r)
		size += n
	}
	rest := copy(b.queue, b.queue[i:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return batch
}

// batchCall is one batch of reads in flight.
type batchCall struct {
	b        *readBatcher
	reads    []*pendingRead
	released bool // no longer counted in b.liveCalls; guarded by b.mu
	// linger, when set by call, waits until the host is done with a batch
	// that its caller cancelled, so that the call counts until then.
	linger func()
}

// release stops the call from holding back the next batch.
func (c *batchCall) release() {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.releaseLocked() {
		b.startLocked()
	}
}

// releaseLocked stops counting the call in b.liveCalls, once, and says
// whether it did. b.mu is held.
func (c *batchCall) releaseLocked() bool {
	if c.released {
		return false
	}
	c.released = true
	c.b.liveCalls--
	return true
}

// run makes the call and hands every read its result or the call's error.
func (c *batchCall) run() {
	b := c.b
	stall := time.AfterFunc(b.stallAfter+2*b.p.rttOf(b.pe), c.release)
	answered := make([]bool, len(c.reads))
	err := c.call(context.Background(), answered) // ends by its deadline: sets no linger
	stall.Stop()
	if err != nil {
		for i, r := range c.reads {
			if !answered[i] {
				r.err = err
				close(r.done)
			}
		}
	}
	c.end()
}

// end counts the call out, and sends what is queued if calls may start.
func (c *batchCall) end() {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	c.releaseLocked()
	b.calls--
	b.startLocked()
}

// call sends the batch, under ctx and until the latest of its reads'
// deadlines, and delivers the results as they arrive, marking each read it
// answered. The error is for the reads left unanswered. The batch goes on
// the address's ReadStream; to a host that lacks it, in a ReadBatch call,
// or a Read call when the batch has one read.
func (c *batchCall) call(ctx context.Context, answered []bool) error {
	b := c.b
	req := &pb.ReadBatchRequest{Reads: make([]*pb.ReadRequest, len(c.reads))}
	now := time.Now()
	var deadline time.Time
	for i, r := range c.reads {
		req.Reads[i] = r.req
		d := r.deadline
		if d.IsZero() {
			d = now.Add(batchNoDeadline)
		}
		if d.After(deadline) {
			deadline = d
		}
	}
	if d, ok := ctx.Deadline(); !ok || d.After(deadline) { // not a read alone's own deadline
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	rs, err := b.stream(ctx)
	if err == nil {
		err = rs.send(ctx, c, req, answered)
	}
	if !errors.Is(err, errNoStream) {
		return err
	}
	if len(c.reads) == 1 {
		r := c.reads[0]
		res, err := b.pe.client.Read(ctx, r.req)
		if err != nil {
			return b.p.err(b.addr, err)
		}
		r.value, r.data = res.Value, res.Data
		answered[0] = true
		close(r.done)
		return nil
	}
	return c.callBatch(ctx, req, answered)
}

// callBatch sends the batch in a ReadBatch call of its own and delivers
// the results as they arrive.
func (c *batchCall) callBatch(ctx context.Context, req *pb.ReadBatchRequest, answered []bool) error {
	b := c.b
	stream, err := b.pe.client.ReadBatch(ctx, req)
	if err != nil {
		return b.p.err(b.addr, err)
	}
	got, released := 0, false
	for got < len(c.reads) {
		res, err := stream.Recv()
		if err == io.EOF {
			return fmt.Errorf("bus %s: read batch: %d of %d results missing", b.addr, len(c.reads)-got, len(c.reads))
		}
		if err != nil {
			if got == 0 && status.Code(err) == codes.Unimplemented {
				b.mu.Lock()
				b.unaryTill = time.Now().Add(olderPeer)
				b.mu.Unlock()
				return errNoBatch
			}
			return b.p.err(b.addr, err)
		}
		got += c.deliver(res.Results, answered)
		// The serving host has finished (most of) this batch: the next
		// one may go while the rest of this one is outstanding.
		if !released {
			released = true
			c.release()
		}
	}
	// Every read has its result; read the status too, so that the stream
	// ends cleanly rather than by a reset when ctx is cancelled.
	_, _ = stream.Recv()
	return nil
}

// deliver hands results to their reads, marks each read it answered, and
// returns how many it answered. A result for a read that is not in the
// batch, or was answered already, is dropped: a confused peer's read fails
// if it is never answered.
func (c *batchCall) deliver(results []*pb.ReadBatchResult, answered []bool) int {
	b, n := c.b, 0
	for _, item := range results {
		i := item.Index
		if uint64(i) >= uint64(len(c.reads)) || answered[i] {
			continue
		}
		answered[i] = true
		n++
		r := c.reads[i]
		r.value, r.data = item.Value, item.Data
		if item.Code != 0 {
			r.err = fmt.Errorf("bus %s: %w", b.addr, b.p.codes.ToError(item.Code, item.Message))
		}
		close(r.done)
	}
	return n
}
