// Package raftnet is a Dragonboat transport module (raftio.ITransport) over
// TCP, plain or with mutual TLS. Dragonboat's own TCP module writes every
// message batch with three write calls (magic number, header, payload) and
// reads it with three more; on a machine where a system call costs
// microseconds, profiles put that at more than half of what a ReadIndex
// round costs the hosts that only take part in it. This module sends each
// batch, header and payload together, with one write (one per MiB of a
// larger batch), and reads through a buffer, so a batch usually costs one
// call on each side.
//
// Over plain TCP it trusts the network, as Dragonboat's TCP module does: a
// hello is believed like the batches after it; with TLS, it trusts the
// peers whose certificates the config verifies. It bounds what a peer
// costs, though: a connection holds no read buffer before its first header
// comes; one that has not sent a whole first frame (TLS handshake
// included) within helloTimeout is closed, and so is the oldest of those
// still waiting for theirs once maxPending wait; one silent for
// idleTimeout is closed; a frame whose header promises too much is
// refused before its payload is read; a batch that Dragonboat's decoder
// would panic or loop forever on is refused (decodeBatch), and so is a
// snapshot chunk that Dragonboat's chunk handler would panic on, one past
// what its stream's first chunk declared (handChunk), or one that would
// leave the host's disk less than minFree free (room). Batches,
// retries, connection reuse and snapshot chunking stay Dragonboat's; this
// module only moves bytes, but for one thing: a batch for a message
// connection that its receiver closed (its host stopped, and may have
// restarted) is sent on a new connection to the same address rather than
// lost (Connection).
//
// A connection the receiver closes for what its peer sent or failed to
// send (a TLS handshake that failed, no first frame in time, a bad frame,
// a batch of another deployment) is logged as a warning, once per remote
// host and kind of failure every warnEvery: a misconfigured peer redials
// constantly.
//
// With Factory.TLS set, every connection is TLS, both ends authenticated
// by that config: the receiver runs the server side of the handshake in
// the connection's own goroutine, within helloTimeout, before it reads the
// first header; the sender dials with the client side. Frames are the
// same inside TLS. Without it, connections are plain TCP, and cost
// what they did before TLS was added: the receiving and sending paths only
// ever see a net.Conn.
//
// A frame is a 9-byte header and a payload:
//
//	kind    1 byte   frameHello, frameBatch, frameChunk or frameEnd
//	length  4 bytes  payload length, big-endian
//	crc     4 bytes  CRC-32C of the payload, big-endian
//
// A connection starts with frameHello, whose payload is the raft address
// the sender listens on (a snapshot connection of an earlier version
// starts with its first chunk). A batch's payload is a marshalled
// pb.MessageBatch, a chunk's a marshalled pb.Chunk. frameEnd has none: it
// closes a snapshot connection, and the receiver answers it with one byte
// once every chunk before it was handed over, so the sender knows they
// arrived.
//
// When replicas are addressed by host ID, a batch's source is the sending
// host's ID; with the address from frameHello, the receiver learns where
// that host listens (Factory.Learn), so hosts can reach each other without
// gossip, even after one comes back on another address.
package raftnet

import (
	"bufio"
	"container/list"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// MaxCommand is the largest command a replica may propose: a message
// carries at least one entry whole, so a larger one could not be sent
// (its frame would be over maxPayload, with room left for the message's
// other fields). Proposed, it would stay in its leader's log, never
// replicated nor committed, and hold back every entry after it.
const MaxCommand = maxPayload - 1<<20

// Frame kinds.
const (
	frameBatch byte = 1
	frameChunk byte = 2
	frameEnd   byte = 3
	frameHello byte = 4
)

const (
	// headerSize is the size of a frame header.
	headerSize = 9
	// maxPayload bounds a frame's payload: a longer length is taken for a
	// corrupt stream. Dragonboat's batches stay under 64 MiB plus one
	// message, whose entries stay under 64 MiB but for the first, which
	// goes whole: the agent proposes none over MaxCommand. A payload is
	// allocated as its bytes arrive, not from the length alone
	// (readPayload).
	maxPayload = 256 << 20
	// readBufferSize is the receiver's read buffer, made once a
	// connection's first header came: most batches fit whole.
	readBufferSize = 64 << 10
	// keepBuffer is the largest payload buffer a connection keeps between
	// frames; a larger one is left to the collector.
	keepBuffer = 4 << 20
	// dialTimeout bounds a connection attempt when ctx has no deadline.
	dialTimeout = 5 * time.Second
	// refusedPause is the pause between the dials of a message connection
	// to a host that refuses them (dial).
	refusedPause = 50 * time.Millisecond
	// writeTimeout bounds the write of one frame, or of one writePiece of
	// a larger one: a peer that stops reading (stopped, or partitioned)
	// fails the send, and Dragonboat reconnects.
	writeTimeout = 10 * time.Second
	// writePiece is the most a frame's write sends within writeTimeout:
	// a frame of up to 64 MiB crosses a link of 100 KiB/s or more. Larger
	// frames are rare (a batch of many entries, a snapshot's chunk of
	// 2 MiB): one write more per MiB costs them nothing.
	writePiece = 1 << 20
	// endTimeout bounds the wait for the answer to frameEnd.
	endTimeout = 10 * time.Second
	// maxHello bounds frameHello's payload, a host:port.
	maxHello = 1024
	// idleTimeout bounds the wait for any byte of a connection, the first
	// included: one silent for longer is closed, so a peer that vanished,
	// or connected and sent nothing, holds no reader. Dragonboat closes a
	// connection it had nothing to send on for a minute, and sends a
	// snapshot's chunks as it makes them; Dragonboat's own module waits
	// for a batch as long as it takes.
	idleTimeout = 2 * time.Minute
	// helloTimeout bounds the wait for a connection's first frame, from
	// its accept, the receiver's side of a TLS handshake included (or the
	// idle timeout, when shorter): a sender writes its hello as soon as
	// it connected, so a peer that connects and sends nothing (a port
	// scanner), or stalls in the handshake, holds a goroutine and a
	// socket no longer.
	helloTimeout = 5 * time.Second
	// maxPending bounds the accepted connections whose first frame has not
	// come: beyond it, the oldest of them is closed. A new connection
	// rather than an old one is served, so that a peer that opens
	// connections without end cannot keep the hosts' out, which send their
	// hello within a round trip.
	maxPending = 256
	// warnEvery is how often a kind of failure of the connections from
	// one remote host is logged at most.
	warnEvery = 10 * time.Minute
	// maxWarned bounds the remote hosts and kinds of failure remembered
	// for warnEvery: beyond it, new ones go unlogged until old ones expire.
	maxWarned = 1024
	// alpnProtocol is the application protocol both ends name in a TLS
	// handshake: a TLS client of another protocol (the message bus's
	// gRPC, say) is refused in the handshake, and so is raftnet's by a
	// server of another.
	alpnProtocol = "zongzi-raftnet"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Errors of a received stream.
var (
	errBadFrame = errors.New("raftnet: bad frame")
	errBadCRC   = errors.New("raftnet: payload checksum mismatch")
)

// Factory creates the module; set it as NodeHostConfig.Expert.TransportFactory.
type Factory struct {
	// Learn, when set, is told where a host listens: source is a batch's
	// source (the sending host's ID when replicas are addressed by host
	// ID) and addr the raft address in the hello of its connection. It is
	// called from the connection's reader for a connection's first batch
	// with a source, and again whenever the source differs from the one
	// last learnt on it (TestHelloTeachesWhereSourcesListen).
	Learn func(source, addr string)
	// TLS, when set, makes every connection TLS with this config, which
	// serves both ends: the listener's (its certificate, and ClientAuth
	// and ClientCAs for the dialler's) and the dialler's (its client
	// certificate, and RootCAs and ServerName for the listener's). Unless
	// ServerName is set, a dialler checks the listener's certificate
	// against the host of the address it dials, as tls.Dialer does.
	// The module works on a clone, with its own ALPN protocol.
	TLS *tls.Config
	// Hosts, when set, says whether a replica was started on this host
	// and its data not removed since: a snapshot for one it denies is
	// refused at its first chunk. Dragonboat's chunk handler panics on a
	// snapshot for a replica that never started on the host, whose
	// directory is missing.
	Hosts func(shardID, replicaID uint64) bool
	// Log, when set, is the logger of the module's warnings about the
	// connections it refuses; slog.Default() when nil.
	Log *slog.Logger

	// hello, pending and minFree, when set, replace helloTimeout,
	// maxPending and minFree (tests).
	hello   time.Duration
	pending int
	minFree uint64
}

var _ config.TransportFactory = Factory{}

// Create implements config.TransportFactory.
func (f Factory) Create(nhc config.NodeHostConfig, onBatch raftio.MessageHandler, onChunk raftio.ChunkHandler) raftio.ITransport {
	var tlsConfig *tls.Config
	if f.TLS != nil {
		tlsConfig = f.TLS.Clone()
		tlsConfig.NextProtos = []string{alpnProtocol}
	}
	log := f.Log
	if log == nil {
		log = slog.Default()
	}
	t := &Transport{
		addr: nhc.GetListenAddress(), advertise: nhc.RaftAddress, learn: f.Learn, deployment: nhc.GetDeploymentID(),
		onBatch: onBatch, onChunk: onChunk, idle: idleTimeout, hello: helloTimeout, maxPending: maxPending,
		write: writeTimeout, tls: tlsConfig, hosts: f.Hosts, log: log, dir: nhc.NodeHostDir, minFree: minFree,
		conns: map[net.Conn]*list.Element{}, owners: map[chunkKey]*chunkOwner{}, warned: map[warning]time.Time{},
	}
	if f.hello > 0 {
		t.hello = f.hello
	}
	if f.pending > 0 {
		t.maxPending = f.pending
	}
	if f.minFree > 0 {
		t.minFree = f.minFree
	}
	return t
}

// Validate implements config.TransportFactory: addr is host:port.
func (Factory) Validate(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	return err == nil && p > 0
}

// Transport listens for frames from other hosts and dials them.
type Transport struct {
	addr      string // listened on
	advertise string // sent in hellos
	learn     func(source, addr string)
	// deployment is the host's deployment ID: only a batch of the same
	// deployment and transport version, which Dragonboat takes, teaches
	// where its source listens.
	deployment uint64
	onBatch    raftio.MessageHandler
	onChunk    raftio.ChunkHandler
	idle       time.Duration // idleTimeout; tests shorten it before Start
	hello      time.Duration // helloTimeout; tests change it before Start
	maxPending int           // maxPending; tests change it before Start
	write      time.Duration // writeTimeout; tests shorten it before dialling
	tls        *tls.Config   // nil: plain TCP
	hosts      func(shardID, replicaID uint64) bool
	log        *slog.Logger
	dir        string // Dragonboat's host dir, where snapshot chunks are written
	minFree    uint64 // minFree; tests change it

	mu sync.Mutex
	ln net.Listener
	// conns holds the accepted, open connections (the TCP connections
	// under TLS), each with its element in pending until its first frame
	// came, nil after.
	conns map[net.Conn]*list.Element
	// pending lists the accepted connections whose first frame has not
	// come, oldest first.
	pending list.List
	owners  map[chunkKey]*chunkOwner
	warned  map[warning]time.Time // when a warning was last logged
	closed  bool
	wg      sync.WaitGroup
}

// warning is a kind of failure of the connections from one remote host.
type warning struct{ host, kind string }

var _ raftio.ITransport = (*Transport)(nil)

// Name implements raftio.ITransport.
func (t *Transport) Name() string { return "zongzi-raftnet" }

// Start implements raftio.ITransport: it listens on the host's raft address.
func (t *Transport) Start() error {
	ln, err := net.Listen("tcp", t.addr)
	if err != nil {
		return fmt.Errorf("raftnet: listen %s: %w", t.addr, err)
	}
	t.mu.Lock()
	t.ln = ln
	t.mu.Unlock()
	t.wg.Add(1)
	go t.accept(ln)
	return nil
}

// Close implements raftio.ITransport: it stops listening, closes every
// accepted connection and waits for their readers.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	if t.ln != nil {
		_ = t.ln.Close()
	}
	for c := range t.conns {
		_ = c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// accept serves the connections ln accepts until the transport closes. An
// error that is not the listener's closing (out of file descriptors, say)
// is retried after a pause that doubles up to a second.
func (t *Transport) accept(ln net.Listener) {
	defer t.wg.Done()
	pause := time.Duration(0)
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			time.Sleep(pause)
			continue
		}
		pause = 0
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = c.Close()
			return
		}
		var crowded net.Conn
		if t.pending.Len() >= t.maxPending {
			crowded = t.pending.Remove(t.pending.Front()).(net.Conn)
			t.conns[crowded] = nil
		}
		t.conns[c] = t.pending.PushBack(c)
		t.wg.Add(1)
		t.mu.Unlock()
		if crowded != nil {
			_ = crowded.Close()
			t.warn(crowded, "closed a connection that sent no frame yet: too many wait for their first", nil)
		}
		go t.serve(c)
	}
}

// greeted records that raw's first frame came: it waits no more.
func (t *Transport) greeted(raw net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.conns[raw]; e != nil {
		t.pending.Remove(e)
		t.conns[raw] = nil
	}
}

// warn logs a warning of kind about c's peer, unless one of that kind
// about the same remote host was logged within warnEvery.
func (t *Transport) warn(c net.Conn, kind string, err error) {
	remote := c.RemoteAddr().String()
	host, _, splitErr := net.SplitHostPort(remote)
	if splitErr != nil {
		host = remote
	}
	key, now := warning{host, kind}, time.Now()
	t.mu.Lock()
	if last, ok := t.warned[key]; ok && now.Sub(last) < warnEvery {
		t.mu.Unlock()
		return
	}
	if len(t.warned) >= maxWarned {
		for k, last := range t.warned {
			if now.Sub(last) >= warnEvery {
				delete(t.warned, k)
			}
		}
	}
	full := len(t.warned) >= maxWarned
	if !full {
		t.warned[key] = now
	}
	t.mu.Unlock()
	if full {
		return
	}
	args := []any{"remote", remote, "listen", t.addr}
	if err != nil {
		args = append(args, "err", err)
	}
	t.log.Warn("raftnet: "+kind, args...)
}

// serve hands the frames of one connection over in order until the
// connection ends, a frame is bad, a chunk is refused (handChunk) or
// frameEnd came.
// With TLS, the handshake comes first.
func (t *Transport) serve(raw net.Conn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		if e := t.conns[raw]; e != nil {
			t.pending.Remove(e)
		}
		delete(t.conns, raw)
		t.mu.Unlock()
		_ = raw.Close()
	}()
	hello := time.Now().Add(min(t.hello, t.idle)) // the first frame's deadline
	c := raw
	if t.tls != nil {
		tc, err := t.handshake(raw, hello)
		if err != nil {
			// Not a peer that closed before a word (a probe of the
			// port), nor a connection the receiver closed.
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.warn(raw, "TLS handshake failed", err)
			}
			return
		}
		c = tc
	}
	// The first header is read from the connection itself, and the read
	// buffer made once it came: a connection that sends nothing holds no
	// buffer while it waits. That costs one read more per connection,
	// none per frame.
	src := &idleReader{c: c, idle: t.idle, first: hello}
	var hdr [headerSize]byte
	if _, err := io.ReadFull(src, hdr[:]); err != nil {
		t.refused(raw, src, err)
		return
	}
	r := bufio.NewReaderSize(src, readBufferSize)
	var buf []byte
	var from, learnt string // the sender's address, and the source last learnt at it
	var chunks chunkStream
	defer t.endChunks(&chunks)
	for {
		kind, payload, err := readBody(r, hdr[:], buf)
		if err != nil {
			t.refused(raw, src, err)
			return
		}
		if !src.first.IsZero() {
			src.first = time.Time{}
			t.greeted(raw)
		}
		if cap(payload) <= keepBuffer {
			buf = payload[:0]
		}
		switch kind {
		case frameHello:
			from, learnt = string(payload), ""
			if !(Factory{}).Validate(from) {
				from = "" // teaches nothing
			}
		case frameBatch:
			b, err := decodeBatch(payload)
			if err != nil {
				t.warn(raw, "bad frame", err)
				return
			}
			if b.DeploymentId != t.deployment || b.BinVer != raftio.TransportBinVersion {
				// Dragonboat drops it; its warning goes unseen.
				t.warn(raw, "batch of another deployment or transport version, dropped", fmt.Errorf(
					"deployment %d, version %d; want %d, %d", b.DeploymentId, b.BinVer, t.deployment, raftio.TransportBinVersion))
			} else if t.learn != nil && from != "" && b.SourceAddress != "" && b.SourceAddress != learnt {
				learnt = b.SourceAddress
				t.learn(learnt, from)
			}
			t.onBatch(b) // copies what it keeps: buf is reused
		case frameChunk:
			ch, err := decodeChunk(payload)
			if err != nil {
				t.warn(raw, "bad frame", err)
				return
			}
			if err := t.room(len(ch.Data)); err != nil {
				t.warn(raw, "snapshot chunk refused: the disk is full", err)
				return
			}
			if !t.handChunk(&chunks, ch) {
				return
			}
		case frameEnd:
			_, _ = c.Write([]byte{frameEnd})
			return
		default:
			return
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
	}
}

// refused logs why the connection raw, read through src, ends with err,
// unless the peer closed it, or the receiver did (Close, or maxPending):
// its first frame did not come in time, or a frame was bad.
func (t *Transport) refused(raw net.Conn, src *idleReader, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errBadFrame), errors.Is(err, errBadCRC):
		t.warn(raw, "bad frame", err)
	case !src.first.IsZero() && errors.As(err, &ne) && ne.Timeout():
		t.warn(raw, "no hello in time", err)
	}
}

// handshake runs the server side of a TLS handshake on c, done by
// deadline. The connection's deadlines are left unset: HandshakeContext
// interrupts the handshake by closing c.
func (t *Transport) handshake(c net.Conn, deadline time.Time) (*tls.Conn, error) {
	tc := tls.Server(c, t.tls)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("raftnet: TLS handshake with %s: %w", c.RemoteAddr(), err)
	}
	return tc, nil
}

// idleReader reads from a connection, and fails the read once no byte
// came for idle, or the first frame did not come by first, so that serve
// closes the connection. The deadline is set once per read from the
// connection, which the buffered reader makes about once per batch: it
// costs a timer update (about 140 ns), not a system call.
type idleReader struct {
	c     net.Conn
	idle  time.Duration
	first time.Time // the first frame's deadline; zero once it came
}

func (r *idleReader) Read(p []byte) (int, error) {
	deadline := time.Now().Add(r.idle)
	if !r.first.IsZero() && r.first.Before(deadline) {
		deadline = r.first
	}
	if err := r.c.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	return r.c.Read(p)
}

// readFrame reads one frame, its header into hdr and its payload into buf
// when it fits.
func readFrame(r io.Reader, hdr, buf []byte) (kind byte, payload []byte, err error) {
	if _, err := io.ReadFull(r, hdr); err != nil {
		return 0, nil, err
	}
	return readBody(r, hdr, buf)
}

// readBody reads the payload of the frame whose header is hdr, into buf
// when it fits, and checks it.
func readBody(r io.Reader, hdr, buf []byte) (kind byte, payload []byte, err error) {
	kind = hdr[0]
	n := binary.BigEndian.Uint32(hdr[1:5])
	if !validHeader(kind, n) {
		return 0, nil, errBadFrame
	}
	payload, err = readPayload(r, buf, int(n))
	if err != nil {
		return 0, nil, err
	}
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(hdr[5:9]) {
		return 0, nil, errBadCRC
	}
	return kind, payload, nil
}

// validHeader says whether a frame of kind may have an n-byte payload. A
// frame that may not is refused from its header, before its payload is
// read.
func validHeader(kind byte, n uint32) bool {
	switch kind {
	case frameBatch, frameChunk:
		return n <= maxPayload
	case frameHello:
		return n <= maxHello
	case frameEnd:
		return n == 0
	}
	return false
}

// readPayload reads an n-byte payload, into buf when it fits (one read of
// n bytes). A longer one grows as its bytes arrive, doubling from
// readBufferSize, so a header that promises more than the peer sends costs
// the receiver no more memory than twice what it did send.
func readPayload(r io.Reader, buf []byte, n int) ([]byte, error) {
	p := buf[:0]
	for len(p) < n {
		step := min(n-len(p), max(cap(p), readBufferSize))
		p = slices.Grow(p, step)
		m, err := io.ReadFull(r, p[len(p):len(p)+step])
		p = p[:len(p)+m]
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// GetConnection implements raftio.ITransport. The connection starts with
// a hello that says where this host listens. It is closed when ctx ends
// (newConnection). When the target closes it (its host stopped, or
// restarted), the next batch is sent on a new connection (SendMessageBatch).
func (t *Transport) GetConnection(ctx context.Context, target string) (raftio.IConnection, error) {
	c, err := t.dial(ctx, target, true)
	if err != nil {
		return nil, err
	}
	conn := newConnection(ctx, c, t.write)
	if err := conn.hello(t.advertise); err != nil {
		conn.Close()
		return nil, err
	}
	conn.redial = func() (net.Conn, func() bool, error) {
		dctx, cancel := context.WithTimeout(ctx, min(t.write, dialTimeout))
		defer cancel()
		c, err := t.dial(dctx, target, true)
		if err != nil {
			return nil, nil, err
		}
		return c, closeWhenDone(ctx, c), nil
	}
	conn.advertise = t.advertise
	conn.watch()
	return conn, nil
}

// GetSnapshotConnection implements raftio.ITransport. The connection
// starts with a hello, as a message connection does: a streamed snapshot's
// first chunk may take the state machine longer than helloTimeout to make.
// It is closed when ctx ends (newConnection).
func (t *Transport) GetSnapshotConnection(ctx context.Context, target string) (raftio.ISnapshotConnection, error) {
	c, err := t.dial(ctx, target, false)
	if err != nil {
		return nil, err
	}
	conn := newConnection(ctx, c, t.write)
	if err := conn.hello(t.advertise); err != nil {
		conn.Close()
		return nil, err
	}
	return &SnapshotConnection{*conn}, nil
}

// dial connects to target, with a TLS handshake when the transport has
// TLS, within ctx's deadline or dialTimeout. With retryRefused, a dial the
// target refuses (nothing listens there: its host is down, or restarting)
// is made again every refusedPause until that deadline.
//
// Dragonboat takes a failed dial as a failure of the target's circuit
// breaker, which then drops every message to the target for 250 ms to
// 1.5 s; a dial that succeeds does not close it again. A host that
// restarted would hear nothing from the others until their breakers let a
// message through: most of the time it takes it to serve again. A dial
// that waits for the target's restart connects as soon as it listens, and
// by then the breaker's last failure is old enough for it to let the
// messages through. A dial to a host that does not answer at all already
// takes that long.
func (t *Transport) dial(ctx context.Context, target string, retryRefused bool) (c net.Conn, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dialTimeout)
		defer cancel()
	}
	for {
		if t.tls != nil {
			d := tls.Dialer{Config: t.tls}
			c, err = d.DialContext(ctx, "tcp", target)
		} else {
			var d net.Dialer
			c, err = d.DialContext(ctx, "tcp", target)
		}
		if err == nil {
			return c, nil
		}
		if !retryRefused || !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("raftnet: dial %s: %w", target, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("raftnet: dial %s: %w", target, err)
		case <-time.After(refusedPause):
		}
	}
}

// Connection sends message batches to one host. Dragonboat uses each from
// one goroutine at a time.
//
// The receiver never writes on a message connection, so a message
// connection is watched by a goroutine blocked in a read (watch): when
// the read returns, the receiver closed the connection. Nothing else would
// tell the sender: a batch written after the receiver's host stopped is
// taken by the sender's kernel and lost (the new host's kernel answers
// it with a reset), and only the write after it fails. Dragonboat resends
// the raft log's entries, but neither a proposal a follower forwarded to
// its leader nor a ReadIndex request: they would wait for their whole
// deadline.
type Connection struct {
	c       net.Conn
	buf     []byte        // header and payload of the frame being sent
	stop    func() bool   // stops closing c when the dial's context ends
	timeout time.Duration // writeTimeout
	// gone, for a message connection, is closed once the receiver closed
	// c (or c was closed): the watcher's read returned. Nil for a
	// snapshot connection, whose sender reads the answer to frameEnd.
	gone chan struct{}
	// redial, for a message connection, dials the target again, as
	// GetConnection did, within the write timeout or dialTimeout,
	// whichever is shorter (Dragonboat's queue for the host fills
	// meanwhile), and returns the new connection with the function that
	// stops closing it when the dial's context ends; advertise is the
	// address its hello names.
	redial    func() (net.Conn, func() bool, error)
	advertise string
}

var _ raftio.IConnection = (*Connection)(nil)

// newConnection returns a connection over c that is closed when ctx ends.
// Dragonboat dials with a context it cancels first when its host stops,
// then waits for its senders: a send blocked on a peer that stopped
// reading (a stopped process, a partition that drops packets) fails at
// once instead of at writeTimeout, and so does a snapshot connection's
// Close, which sends frameEnd, instead of at twice that.
func newConnection(ctx context.Context, c net.Conn, timeout time.Duration) *Connection {
	return &Connection{c: c, stop: closeWhenDone(ctx, c), timeout: timeout}
}

// closeWhenDone closes c when ctx ends, until the returned function is
// called.
func closeWhenDone(ctx context.Context, c net.Conn) func() bool {
	return context.AfterFunc(ctx, func() { _ = c.Close() })
}

// watch starts the goroutine that closes c.gone once c's read returns: a
// byte, an end of stream or an error, all of which mean the receiver
// closed the connection, or c was closed. Under TLS, the read handles the
// handshake messages a server may send after it (session tickets) and
// returns only on application data, an alert or the end of the stream.
func (c *Connection) watch() {
	conn, gone := c.c, make(chan struct{})
	c.gone = gone
	go func() {
		defer close(gone)
		var b [1]byte
		_, _ = conn.Read(b[:])
	}()
}

// peerClosed says whether the receiver closed the message connection (or
// it was closed): a batch written on it would be lost.
func (c *Connection) peerClosed() bool {
	select {
	case <-c.gone:
		return true
	default:
		return false
	}
}

// reconnect replaces the message connection, which the receiver closed,
// with a new one to the same target, which starts with a hello.
func (c *Connection) reconnect() error {
	c.stop()
	_ = c.c.Close()
	conn, stop, err := c.redial()
	if err != nil {
		return fmt.Errorf("raftnet: connection closed, and no new one: %w", err)
	}
	c.c, c.stop = conn, stop
	c.watch()
	return c.hello(c.advertise)
}

// hello sends frameHello with addr, where this host listens.
func (c *Connection) hello(addr string) error {
	c.grow(len(addr))
	return c.send(frameHello, copy(c.buf[headerSize:], addr))
}

// Close implements raftio.IConnection.
func (c *Connection) Close() {
	c.stop()
	_ = c.c.Close()
	if c.gone != nil {
		<-c.gone // the watcher returns once c.c is closed
	}
}

// SendMessageBatch implements raftio.IConnection. When the receiver
// closed the connection, the batch is sent on a new one to the same
// target (reconnect): its host stopped, and may listen again. If no new
// connection can be made in time (see redial), or the connection's
// context ended, the send fails, and Dragonboat drops its connection.
func (c *Connection) SendMessageBatch(b pb.MessageBatch) error {
	if c.peerClosed() {
		if err := c.reconnect(); err != nil {
			return err
		}
	}
	c.grow(b.SizeUpperLimit())
	n, err := b.MarshalTo(c.buf[headerSize:])
	if err != nil {
		return fmt.Errorf("raftnet: marshal batch: %w", err)
	}
	return c.send(frameBatch, n)
}

// grow makes room for a frame with a payload of up to n bytes.
func (c *Connection) grow(n int) {
	if cap(c.buf) < headerSize+n {
		c.buf = make([]byte, headerSize+n)
	}
	c.buf = c.buf[:cap(c.buf)]
}

// send writes the frame of kind whose n-byte payload is in place after the
// header, in one write, or one per writePiece bytes of a larger frame,
// each within the write timeout: a peer that stops reading fails the
// send, while a large frame over a slow link, which may take many times
// the timeout, does not.
func (c *Connection) send(kind byte, n int) error {
	if n > maxPayload {
		return fmt.Errorf("raftnet: frame of %d bytes, at most %d", n, maxPayload)
	}
	frame := c.buf[:headerSize+n]
	frame[0] = kind
	binary.BigEndian.PutUint32(frame[1:5], uint32(n))
	binary.BigEndian.PutUint32(frame[5:9], crc32.Checksum(frame[headerSize:], crcTable))
	for len(frame) > 0 {
		piece := frame[:min(len(frame), writePiece)]
		if err := c.c.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return fmt.Errorf("raftnet: send: %w", err)
		}
		if _, err := c.c.Write(piece); err != nil {
			return fmt.Errorf("raftnet: send: %w", err)
		}
		frame = frame[len(piece):]
	}
	if cap(c.buf) > keepBuffer {
		c.buf = nil
	}
	return nil
}

// SnapshotConnection sends the chunks of one snapshot to one host.
type SnapshotConnection struct{ Connection }

var _ raftio.ISnapshotConnection = (*SnapshotConnection)(nil)

// SendChunk implements raftio.ISnapshotConnection.
func (c *SnapshotConnection) SendChunk(ch pb.Chunk) error {
	c.grow(ch.Size())
	n, err := ch.MarshalTo(c.buf[headerSize:])
	if err != nil {
		return fmt.Errorf("raftnet: marshal chunk: %w", err)
	}
	return c.send(frameChunk, n)
}

// Close implements raftio.ISnapshotConnection: it sends frameEnd and
// waits, for a while, until the receiver has handed every chunk over.
func (c *SnapshotConnection) Close() {
	defer c.Connection.Close()
	c.grow(0)
	if c.send(frameEnd, 0) != nil {
		return
	}
	var ack [1]byte
	_ = c.c.SetReadDeadline(time.Now().Add(endTimeout))
	_, _ = io.ReadFull(c.c, ack[:])
}
