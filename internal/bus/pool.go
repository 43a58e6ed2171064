package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// callKeepalive has a caller ping a connection on which it has calls open
// and nothing came for 30 s, and close it if the ping is not answered
// within 20 s: a host that vanished without a word (a partition, a power
// loss) would otherwise hold a call that has no deadline, a forwarded
// Watch, until TCP gave up, in a quarter of an hour or never. The call
// then fails as the host's being unreachable does.
var callKeepalive = keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}

// Pool keeps one client connection per remote API address, and the round
// trip last measured to each.
type Pool struct {
	codes  Codes
	opts   []grpc.DialOption // NewPool's, after the pool's own
	mu     sync.Mutex
	peers  map[string]*peer
	closed bool // no connection is made once it is
}

type peer struct {
	conn   *grpc.ClientConn
	client pb.BusClient
	rtt    time.Duration // zero until measured
	reads  *readBatcher
	calls  atomic.Int64 // calls in progress (see use); counted in under Pool.mu
}

// windowSize is the HTTP/2 flow-control window of every bus stream and
// connection, on both sides. A static window turns off gRPC's estimate of
// the bandwidth-delay product, which pings the peer once per round of data
// frames and grows the window from 64 KiB as it learns. Reads forwarded to
// a shard's leader made about 8% fewer system calls and cost about 7% less
// CPU (bench/README.md). A value of 1 MiB, kv1's limit, fits in one window.
const windowSize = 1 << 20

// maxPayload is the largest query, command or result that crosses the
// bus: one that goes alone in a message, with room for the message's
// framing, under gRPC's default 4 MiB limit on a received message. A
// larger one fails its own call before it is sent, or its own read in a
// batch, and breaks no batch or stream that it would have shared.
const maxPayload = 4<<20 - 64<<10

// overLimit says that a query, command or result of n bytes is over
// maxPayload.
func overLimit(what string, n int) string {
	return fmt.Sprintf("a %s of %d bytes is over the bus's message limit of %d bytes", what, n, maxPayload)
}

// tooLarge is the error of a query or command over maxPayload.
func (p *Pool) tooLarge(what string, n int) error {
	return fmt.Errorf("bus: %w: %s", p.codes.TooLarge, overLimit(what, n))
}

// Codes.Unknown and Codes.TooLarge when the caller sets none.
var (
	errOutcomeUnknown = errors.New("bus: outcome unknown")
	errTooLarge       = errors.New("bus: too large")
	errClosed         = errors.New("bus: pool closed")
)

// NewPool returns an empty pool. Its connections are plain unless opts,
// which go to grpc.NewClient after the pool's own, give them transport
// credentials (grpc.WithTransportCredentials with credentials.NewTLS, say).
func NewPool(c Codes, opts ...grpc.DialOption) *Pool {
	if c.Unknown == nil {
		c.Unknown = errOutcomeUnknown
	}
	if c.TooLarge == nil {
		c.TooLarge = errTooLarge
	}
	if c.Closed == nil {
		c.Closed = errClosed
	}
	return &Pool{codes: c, opts: opts, peers: map[string]*peer{}}
}

// use returns the peer at addr, as get does, counting a call in progress
// on it until done: Retain closes no connection that has one.
func (p *Pool) use(addr string) (*peer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pe, err := p.getLocked(addr)
	if err == nil {
		pe.calls.Add(1)
	}
	return pe, err
}

// done counts out a call that use counted in.
func (p *Pool) done(pe *peer) { pe.calls.Add(-1) }

// Retain closes the connections to the addresses for which keep is false
// and on which no call is in progress, and forgets what it knew of them: a
// host that left the registry (deleted, or back at another address) is
// kept no connection, nor read stream, open. A call made to such an
// address later connects again.
func (p *Pool) Retain(keep func(addr string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, pe := range p.peers {
		if pe.calls.Load() == 0 && !keep(addr) {
			_ = pe.conn.Close()
			delete(p.peers, addr)
		}
	}
}

// Has says whether the pool holds a connection to addr.
func (p *Pool) Has(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.peers[addr]
	return ok
}

// get returns the peer at addr, connecting to it if the pool has none.
func (p *Pool) get(addr string) (*peer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.getLocked(addr)
}

// getLocked is get with p.mu held.
func (p *Pool) getLocked(addr string) (*peer, error) {
	if pe, ok := p.peers[addr]; ok {
		return pe, nil
	}
	if p.closed { // a connection made now would never be closed
		return nil, fmt.Errorf("bus: %s: %w", addr, p.codes.Closed)
	}
	// A host that restarts must be reachable again within a second, not
	// after gRPC's default reconnect backoff of up to two minutes.
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStaticStreamWindowSize(windowSize), grpc.WithStaticConnWindowSize(windowSize),
		grpc.WithKeepaliveParams(callKeepalive),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
	}, p.opts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: dial %s: %w", addr, err)
	}
	pe := &peer{conn: conn, client: pb.NewBusClient(conn)}
	pe.reads = newReadBatcher(p, addr, pe)
	p.peers[addr] = pe
	return pe, nil
}

// RTT returns the last round trip measured to addr by Info, and whether one
// was since the last Info call to addr failed: a host that stopped
// answering (a partition, a power loss) is not the nearest however near it
// was, though the connection to it may hold until its keepalive gives up.
func (p *Pool) RTT(addr string) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pe, ok := p.peers[addr]
	if !ok || pe.rtt == 0 {
		return 0, false
	}
	return pe.rtt, true
}

// rttOf returns the last round trip measured to pe, zero if none was.
func (p *Pool) rttOf(pe *peer) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return pe.rtt
}

// Close closes every connection; calls made after it fail with Codes.Closed.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, pe := range p.peers {
		_ = pe.conn.Close()
		delete(p.peers, addr)
	}
}

func (p *Pool) err(addr string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("bus %s: %w", addr, err)
	}
	if st.Code() == codes.Canceled && p.isClosed() {
		// gRPC cancels the calls in flight on a connection Close closes:
		// their callers did not give up.
		return fmt.Errorf("bus %s: %w: %s", addr, p.codes.Closed, st.Message())
	}
	return fmt.Errorf("bus %s: %w", addr, p.codes.ToError(uint32(st.Code()), st.Message()))
}

// isClosed says whether Close was called.
func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// writeErr is the error of a forwarded write (Apply, Commit). What the
// serving host answered maps as in err, and so does a call gRPC failed
// because it could not connect, which it never sent. A call that failed
// otherwise (the connection broke, the host stopped, the caller cancelled
// it) may have failed after the host proposed the write, so its outcome is
// unknown: the error wraps Codes.Unknown (and context.Canceled for a
// cancelled call), and the write must not be sent elsewhere.
func (p *Pool) writeErr(addr string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if errors.Is(err, context.Canceled) || ok && st.Code() == codes.Canceled {
		return fmt.Errorf("bus %s: %w: %w", addr, p.codes.Unknown, context.Canceled)
	}
	if !ok || answered(st) || notConnected(st) || st.Code() == codes.DeadlineExceeded {
		return p.err(addr, err)
	}
	return fmt.Errorf("bus %s: %w: the call failed: %s", addr, p.codes.Unknown, st.Message())
}

// notConnected says whether gRPC failed a call because its connection
// could not be made: it fails a call with the last connection attempt's
// error only while it has no connection to send it on. An attempt fails
// in the dial, in the TLS handshake, or before the server's HTTP/2
// preface came (a server that refused the caller's certificate after the
// handshake, or that does not speak TLS). Were gRPC to word these errors
// differently, such calls would be taken as of unknown outcome, which is
// safe (TestWriteNotConnected and TestTLS would say so); so are those of
// an attempt that failed writing its own preface, which gRPC words as the
// bare write error.
func notConnected(st *status.Status) bool {
	if st.Code() != codes.Unavailable {
		return false
	}
	msg := st.Message()
	return strings.Contains(msg, "Error while dialing") || strings.Contains(msg, "authentication handshake failed") ||
		strings.Contains(msg, "error reading server preface")
}

// Info asks the host at addr to describe itself and records the round trip,
// or that none was measured if the call fails (see RTT).
func (p *Pool) Info(ctx context.Context, addr string) (*pb.InfoResponse, error) {
	return p.info(ctx, addr, &pb.InfoRequest{})
}

// InfoShard asks the host at addr to describe itself and say which replica
// of shardID runs there (InfoResponse.ShardReplicaId), and records the
// round trip.
func (p *Pool) InfoShard(ctx context.Context, addr string, shardID uint64) (*pb.InfoResponse, error) {
	return p.info(ctx, addr, &pb.InfoRequest{ShardId: shardID})
}

func (p *Pool) info(ctx context.Context, addr string, req *pb.InfoRequest) (*pb.InfoResponse, error) {
	pe, err := p.use(addr)
	if err != nil {
		return nil, err
	}
	defer p.done(pe)
	start := time.Now()
	res, err := pe.client.Info(ctx, req)
	if err != nil {
		p.mu.Lock()
		pe.rtt = 0 // not measured: see RTT
		p.mu.Unlock()
		return nil, p.err(addr, err)
	}
	rtt := time.Since(start)
	p.mu.Lock()
	if pe.rtt == 0 {
		pe.rtt = rtt
	} else {
		pe.rtt = (pe.rtt*3 + rtt) / 4
	}
	p.mu.Unlock()
	return res, nil
}

// Join asks the host at addr to add the caller to the prime shard.
func (p *Pool) Join(ctx context.Context, addr string, req *pb.JoinRequest) (uint64, error) {
	pe, err := p.use(addr)
	if err != nil {
		return 0, err
	}
	defer p.done(pe)
	res, err := pe.client.Join(ctx, req)
	if err != nil {
		return 0, p.err(addr, err)
	}
	return res.ReplicaId, nil
}

// Membership asks the host at addr to change a shard's membership.
func (p *Pool) Membership(ctx context.Context, addr string, req *pb.MembershipRequest) error {
	pe, err := p.use(addr)
	if err != nil {
		return err
	}
	defer p.done(pe)
	_, err = pe.client.Membership(ctx, req)
	return p.err(addr, err)
}

// Members asks the host at addr for a shard's membership.
func (p *Pool) Members(ctx context.Context, addr string, shardID uint64) (*pb.MembersResponse, error) {
	pe, err := p.use(addr)
	if err != nil {
		return nil, err
	}
	defer p.done(pe)
	m, err := pe.client.Members(ctx, &pb.MembersRequest{ShardId: shardID})
	if err != nil {
		return nil, p.err(addr, err)
	}
	return m, nil
}

// Apply forwards a proposal to the host at addr. If the call fails without
// the host's answer, the error wraps Codes.Unknown (see writeErr). A
// command that applied with a result too large to send fails with the
// error OutOfRange maps to, and the result's value.
func (p *Pool) Apply(ctx context.Context, addr string, shardID uint64, cmd []byte) (uint64, []byte, error) {
	if len(cmd) > maxPayload {
		return 0, nil, p.tooLarge("command", len(cmd))
	}
	pe, err := p.use(addr)
	if err != nil {
		return 0, nil, err
	}
	defer p.done(pe)
	res, err := pe.client.Apply(ctx, &pb.ApplyRequest{ShardId: shardID, Cmd: cmd})
	if err != nil {
		var value uint64
		if st, ok := status.FromError(err); ok && st.Code() == codes.OutOfRange && answered(st) {
			value = appliedValue(st)
		}
		return value, nil, p.writeErr(addr, err)
	}
	return res.Value, res.Data, nil
}

// Commit forwards a proposal to the host at addr without awaiting its result.
func (p *Pool) Commit(ctx context.Context, addr string, shardID uint64, cmd []byte) error {
	if len(cmd) > maxPayload {
		return p.tooLarge("command", len(cmd))
	}
	pe, err := p.use(addr)
	if err != nil {
		return err
	}
	defer p.done(pe)
	_, err = pe.client.Commit(ctx, &pb.ApplyRequest{ShardId: shardID, Cmd: cmd})
	return p.writeErr(addr, err)
}

// Read forwards a query to the host at addr. Reads to the same address
// made while a batch to it is outstanding travel together in the next
// batch, on the address's ReadStream (see readBatcher); each returns when
// its own result arrives or its ctx is done.
func (p *Pool) Read(ctx context.Context, addr string, shardID uint64, query []byte, stale, leader bool) (uint64, []byte, error) {
	pe, err := p.use(addr)
	if err != nil {
		return 0, nil, err
	}
	defer p.done(pe)
	return pe.reads.read(ctx, &pb.ReadRequest{ShardId: shardID, Query: query, Stale: stale, Leader: leader})
}

// readUnary forwards one query in a Read call of its own.
func (p *Pool) readUnary(ctx context.Context, addr string, pe *peer, req *pb.ReadRequest) (uint64, []byte, error) {
	res, err := pe.client.Read(ctx, req)
	if err != nil {
		return 0, nil, p.err(addr, err)
	}
	return res.Value, res.Data, nil
}

// Index asks the host at addr for the shard's applied index.
func (p *Pool) Index(ctx context.Context, addr string, shardID uint64) (uint64, error) {
	pe, err := p.use(addr)
	if err != nil {
		return 0, err
	}
	defer p.done(pe)
	res, err := pe.client.Index(ctx, &pb.IndexRequest{ShardId: shardID})
	if err != nil {
		return 0, p.err(addr, err)
	}
	return res.Index, nil
}

// Watch streams results of query from the host at addr to send until ctx
// is done, the stream ends or send fails.
func (p *Pool) Watch(ctx context.Context, addr string, shardID uint64, query []byte, stale bool, send func(uint64, []byte) error) error {
	if len(query) > maxPayload {
		return p.tooLarge("query", len(query))
	}
	pe, err := p.use(addr)
	if err != nil {
		return err
	}
	defer p.done(pe)
	stream, err := pe.client.Watch(ctx, &pb.ReadRequest{ShardId: shardID, Query: query, Stale: stale})
	if err != nil {
		return p.err(addr, err)
	}
	for {
		res, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return p.err(addr, err)
		}
		if err := send(res.Value, res.Data); err != nil {
			return err
		}
	}
}
