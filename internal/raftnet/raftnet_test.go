package raftnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi/internal/testcert"
)

// receiver is a started Transport that records what it is handed.
type receiver struct {
	*Transport
	mu      sync.Mutex
	batches []pb.MessageBatch
	chunks  []pb.Chunk
	refuse  bool     // refuse chunks
	learnt  []string // "source addr" as Factory.Learn was told
	got     chan struct{}
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	return startReceiverWith(t, nil, idleTimeout)
}

// startReceiverWith is startReceiver with TLS when tlsConfig is set, and
// the idle timeout idle.
func startReceiverWith(t *testing.T, tlsConfig *tls.Config, idle time.Duration) *receiver {
	t.Helper()
	return startReceiverOf(t, Factory{TLS: tlsConfig}, idle)
}

// startReceiverOf is startReceiver with the transport f creates (its
// Learn replaced), and the idle timeout idle.
func startReceiverOf(t *testing.T, f Factory, idle time.Duration) *receiver {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	return startReceiverAt(t, f, idle, "127.0.0.1:0")
}

// startReceiverAt is startReceiverOf listening on addr, without the check
// for leaked goroutines.
func startReceiverAt(t *testing.T, f Factory, idle time.Duration, addr string) *receiver {
	t.Helper()
	r := &receiver{got: make(chan struct{}, 1000)}
	nhc := config.NodeHostConfig{RaftAddress: addr, DeploymentID: 7}
	learn := func(source, addr string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.learnt = append(r.learnt, source+" "+addr)
	}
	f.Learn = learn
	tr := f.Create(nhc, func(b pb.MessageBatch) {
		r.mu.Lock()
		r.batches = append(r.batches, b)
		r.mu.Unlock()
		r.got <- struct{}{}
	}, func(c pb.Chunk) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.chunks = append(r.chunks, c)
		r.got <- struct{}{}
		return !r.refuse
	})
	r.Transport = tr.(*Transport)
	r.idle = idle
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// address returns the address the receiver listens on.
func (r *receiver) address() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ln.Addr().String()
}

// await waits until n more things were handed over.
func (r *receiver) await(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatal("nothing handed over in 10 s")
		}
	}
}

// sendOne sends a batch to r on a new connection, closed when the test
// ends, and waits until r hands it over.
func (r *receiver) sendOne(t *testing.T) {
	t.Helper()
	conn, err := r.GetConnection(context.Background(), r.address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	if err := conn.SendMessageBatch(testBatch(1, nil)); err != nil {
		t.Fatal(err)
	}
	r.await(t, 1)
}

func testBatch(i int, cmd []byte) pb.MessageBatch {
	return pb.MessageBatch{
		DeploymentId:  7,
		SourceAddress: "127.0.0.1:1",
		BinVer:        raftio.TransportBinVersion,
		Requests: []pb.Message{{
			Type: pb.Replicate, To: 2, From: 1, ShardID: 9, Term: 3, LogTerm: 3, LogIndex: uint64(i), Commit: uint64(i),
			Entries: []pb.Entry{{Term: 3, Index: uint64(i + 1), Cmd: cmd}},
		}},
	}
}

func TestBatchesArriveInOrder(t *testing.T) {
	r := startReceiver(t)
	conn, err := r.GetConnection(context.Background(), r.address())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	big := bytes.Repeat([]byte("x"), 3<<20) // larger than the read buffer and the kept buffer
	const n = 50
	for i := range n {
		cmd := []byte{byte(i)}
		if i == 10 {
			cmd = big
		}
		if err := conn.SendMessageBatch(testBatch(i, cmd)); err != nil {
			t.Fatal(err)
		}
	}
	r.await(t, n)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, b := range r.batches {
		m := b.Requests[0]
		want := []byte{byte(i)}
		if i == 10 {
			want = big
		}
		if b.DeploymentId != 7 || b.SourceAddress != "127.0.0.1:1" || m.LogIndex != uint64(i) ||
			m.Type != pb.Replicate || len(m.Entries) != 1 || !bytes.Equal(m.Entries[0].Cmd, want) {
			t.Fatalf("batch %d: %+v", i, b)
		}
	}
}

// dialFrom4242 connects to r from a sender whose hello says it listens on
// 127.0.0.1:4242; the connection closes when the test ends.
func dialFrom4242(t *testing.T, r *receiver) raftio.IConnection {
	t.Helper()
	sender := Factory{}.Create(config.NodeHostConfig{RaftAddress: "127.0.0.1:4242"}, nil, nil).(*Transport)
	conn, err := sender.GetConnection(context.Background(), r.address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

// TestHelloTeachesWhereSourcesListen sends batches from two sources over one
// connection whose hello names the sender's raft address: the receiver
// learns each source at that address, once per change of source.
func TestHelloTeachesWhereSourcesListen(t *testing.T) {
	r := startReceiver(t)
	conn := dialFrom4242(t, r)
	sources := []string{"host-a", "host-a", "host-b", "", "host-b", "host-a"}
	for i, src := range sources {
		b := testBatch(i, []byte{1})
		b.SourceAddress = src
		if err := conn.SendMessageBatch(b); err != nil {
			t.Fatal(err)
		}
	}
	r.await(t, len(sources))
	r.mu.Lock()
	defer r.mu.Unlock()
	want := []string{"host-a 127.0.0.1:4242", "host-b 127.0.0.1:4242", "host-a 127.0.0.1:4242"}
	if !slices.Equal(r.learnt, want) {
		t.Fatalf("learnt %q, want %q", r.learnt, want)
	}
}

// TestForeignBatchTeachesNothing: a batch of another deployment, or of
// another transport version, which Dragonboat drops, teaches nothing about
// where its source listens; one of the host's own then does.
func TestForeignBatchTeachesNothing(t *testing.T) {
	r := startReceiver(t)
	conn := dialFrom4242(t, r)
	foreign := testBatch(1, nil)
	foreign.DeploymentId, foreign.SourceAddress = 8, "host-x"
	old := testBatch(2, nil)
	old.BinVer, old.SourceAddress = raftio.TransportBinVersion-1, "host-y"
	own := testBatch(3, nil)
	own.SourceAddress = "host-a"
	for _, b := range []pb.MessageBatch{foreign, old, own} {
		if err := conn.SendMessageBatch(b); err != nil {
			t.Fatal(err)
		}
	}
	r.await(t, 3)
	r.mu.Lock()
	defer r.mu.Unlock()
	if want := []string{"host-a 127.0.0.1:4242"}; !slices.Equal(r.learnt, want) {
		t.Fatalf("learnt %q, want %q (from the host's own batch only)", r.learnt, want)
	}
}

// TestHelloWithoutAddressTeachesNothing: a sender whose hello is not
// host:port still delivers its batches, and the receiver learns nothing.
func TestHelloWithoutAddressTeachesNothing(t *testing.T) {
	r := startReceiver(t)
	conn, err := r.GetConnection(context.Background(), r.address()) // says 127.0.0.1:0
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b := testBatch(1, nil)
	b.SourceAddress = "host-a"
	if err := conn.SendMessageBatch(b); err != nil {
		t.Fatal(err)
	}
	r.await(t, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.learnt) != 0 {
		t.Fatalf("learnt %q from a hello without an address", r.learnt)
	}
}

func TestSnapshotChunksThenEnd(t *testing.T) {
	r := startReceiver(t)
	sc, err := r.GetSnapshotConnection(context.Background(), r.address())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := sc.SendChunk(pb.Chunk{ShardID: 9, ReplicaID: 2, ChunkId: uint64(i), ChunkCount: 3, Filepath: "f", FileSize: 3, HasFileInfo: true, Data: []byte{byte(i), 1, 2}}); err != nil {
			t.Fatal(err)
		}
	}
	// Close returns once the receiver answered the end, so every chunk has
	// been handed over by then.
	sc.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.chunks) != 3 {
		t.Fatalf("%d chunks handed over when Close returned, want 3", len(r.chunks))
	}
	for i, c := range r.chunks {
		if c.ChunkId != uint64(i) || !bytes.Equal(c.Data, []byte{byte(i), 1, 2}) {
			t.Fatalf("chunk %d: %+v", i, c)
		}
	}
}

func TestRefusedChunkEndsTheConnection(t *testing.T) {
	r := startReceiver(t)
	r.refuse = true
	sc, err := r.GetSnapshotConnection(context.Background(), r.address())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.SendChunk(pb.Chunk{ShardID: 9, ChunkCount: 2, Filepath: "f", FileSize: 1, HasFileInfo: true, Data: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	r.await(t, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The receiver closed its end: a write soon fails.
		if err := sc.SendChunk(pb.Chunk{ShardID: 9, ChunkId: 1, ChunkCount: 2, Filepath: "f", FileSize: 1, HasFileInfo: true, Data: []byte("b")}); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sends still succeed 10 s after the chunk was refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.chunks) != 1 {
		t.Fatalf("%d chunks handed over after a refusal, want 1", len(r.chunks))
	}
}

// TestBadFramesAreDropped sends raw frames that are corrupt: none is handed
// over, and the good frame before them is.
func TestBadFramesAreDropped(t *testing.T) {
	good := testBatch(1, []byte("ok"))
	payload, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	frame := rawFrame
	sum := crc32.Checksum(payload, crcTable)
	for name, bad := range map[string][]byte{
		"checksum":     frame(frameBatch, payload, sum+1),
		"unknown kind": frame(9, payload, sum),
		"long hello":   frame(frameHello, bytes.Repeat([]byte("1"), maxHello+1), crc32.Checksum(bytes.Repeat([]byte("1"), maxHello+1), crcTable)),
		"length":       {frameBatch, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
		"not a batch":  frame(frameBatch, []byte{0xff, 0xff, 0xff}, crc32.Checksum([]byte{0xff, 0xff, 0xff}, crcTable)),
	} {
		t.Run(name, func(t *testing.T) {
			r := startReceiver(t)
			c := dialTCP(t, r.address())
			// The good frame, the bad one, then a good one the receiver
			// must not reach: it stops at the bad frame.
			stream := append(append(frame(frameBatch, payload, sum), bad...), frame(frameBatch, payload, sum)...)
			if _, err := c.Write(stream); err != nil {
				t.Fatal(err)
			}
			r.await(t, 1)
			// It closes the connection: the read ends before its deadline.
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Read(make([]byte, 1))
			var ne net.Error
			if err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("read after the bad frame: %v, want the connection closed", err)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.batches) != 1 {
				t.Fatalf("%d batches handed over, want only the one before the bad frame", len(r.batches))
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:17012": true, "localhost:1": true, "[::1]:9": true,
		"127.0.0.1": false, ":17012": false, "127.0.0.1:0": false, "127.0.0.1:70000": false, "127.0.0.1:x": false,
	} {
		if got := (Factory{}).Validate(addr); got != want {
			t.Errorf("Validate(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestCloseEndsAcceptedConnections(t *testing.T) {
	r := startReceiver(t)
	r.sendOne(t)
	done := make(chan struct{})
	go func() {
		_ = r.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a connection open")
	}
}

// TestPayloadGrowsAsItArrives reads payloads longer than the buffer: the
// bytes come back whole, and a length the peer does not follow with its
// bytes is not allocated.
func TestPayloadGrowsAsItArrives(t *testing.T) {
	want := make([]byte, 5*readBufferSize+123)
	for i := range want {
		want[i] = byte(i * 7)
	}
	got, err := readPayload(bytes.NewReader(want), make([]byte, 0, 100), len(want))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes (%v), want the %d sent", len(got), err, len(want))
	}

	hdr := make([]byte, headerSize)
	hdr[0] = frameBatch
	binary.BigEndian.PutUint32(hdr[1:5], 200<<20)
	stream := append(hdr, make([]byte, 1000)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err = readFrame(bufio.NewReader(bytes.NewReader(stream)), make([]byte, headerSize), nil)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a frame cut short: %v, want %v", err, io.ErrUnexpectedEOF)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("a header promising 200 MiB, followed by 1000 bytes, allocated %d MiB", grew>>20)
	}
}

// FuzzReadFrame feeds readFrame any stream: it returns a frame whose
// checksum matched, or an error, and never panics.
func FuzzReadFrame(f *testing.F) {
	good := testBatch(1, []byte("ok"))
	payload, err := good.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	hdr := make([]byte, headerSize)
	hdr[0] = frameBatch
	binary.BigEndian.PutUint32(hdr[1:5], uint32(len(payload)))
	binary.BigEndian.PutUint32(hdr[5:9], crc32.Checksum(payload, crcTable))
	f.Add(append(hdr, payload...))
	f.Add([]byte{frameEnd, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{frameBatch, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bufio.NewReader(bytes.NewReader(stream))
		for range 4 {
			kind, p, err := readFrame(r, make([]byte, headerSize), nil)
			if err != nil {
				return
			}
			if kind == frameEnd && len(p) != 0 {
				t.Fatalf("frameEnd with %d bytes of payload", len(p))
			}
		}
	})
}

// startIdleReceiver is a receiver that closes a connection silent for idle.
func startIdleReceiver(t *testing.T, idle time.Duration) *receiver {
	t.Helper()
	r := &receiver{got: make(chan struct{}, 1000)}
	tr := Factory{}.Create(config.NodeHostConfig{RaftAddress: "127.0.0.1:0", DeploymentID: 7},
		func(pb.MessageBatch) { r.got <- struct{}{} }, func(pb.Chunk) bool { return true })
	r.Transport = tr.(*Transport)
	r.idle = idle
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// closedWithin says whether the receiver closes c within d: a read ends
// with the connection's end rather than with the reader's own deadline.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	if err == nil {
		t.Fatal("the receiver sent a byte")
	}
	return true
}

// rawFrame is a frame of kind with payload p and the checksum crc.
func rawFrame(kind byte, p []byte, crc uint32) []byte {
	f := make([]byte, headerSize, headerSize+len(p))
	f[0] = kind
	binary.BigEndian.PutUint32(f[1:5], uint32(len(p)))
	binary.BigEndian.PutUint32(f[5:9], crc)
	return append(f, p...)
}

// TestSilentConnectionsAreClosed: a connection that sends nothing, or
// goes silent after its hello, is closed once idle passed; one that keeps
// sending batches stays open past it.
func TestSilentConnectionsAreClosed(t *testing.T) {
	// The busy connection's batches leave idle*4/5 of slack each, for a
	// loaded machine, where a 100 ms sleep can last much longer.
	const idle = time.Second
	r := startIdleReceiver(t, idle)
	dial := func() net.Conn { return dialTCP(t, r.address()) }
	nothing, hello := dial(), dial()
	addr := []byte("127.0.0.1:4242")
	if _, err := hello.Write(rawFrame(frameHello, addr, crc32.Checksum(addr, crcTable))); err != nil {
		t.Fatal(err)
	}
	busy, err := r.GetConnection(context.Background(), r.address())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	start := time.Now()
	for i := range 10 { // a batch every idle/5, for twice idle
		if err := busy.SendMessageBatch(testBatch(i, nil)); err != nil {
			t.Fatalf("batch %d on a busy connection: %v", i, err)
		}
		r.await(t, 1)
		time.Sleep(idle / 5)
	}
	t.Logf("busy connection served for %v", time.Since(start))
	for name, c := range map[string]net.Conn{"sent nothing": nothing, "sent a hello": hello} {
		if !closedWithin(t, c, 5*time.Second) {
			t.Errorf("a connection that %s is open 5 s later, idle %v", name, idle)
		}
	}
}

// TestBadHeadersAreRefusedAtOnce sends headers alone, whose payloads the
// receiver must not wait for: a hello longer than maxHello, a frame of an
// unknown kind, a frame over maxPayload. Each closes the connection at
// once, long before the idle deadline.
func TestBadHeadersAreRefusedAtOnce(t *testing.T) {
	r := startIdleReceiver(t, time.Minute)
	for name, hdr := range map[string][]byte{
		"long hello":   {frameHello, 0, 0, 0x04, 0x01, 0, 0, 0, 0}, // maxHello+1
		"unknown kind": {9, 0, 0x10, 0, 0, 0, 0, 0, 0},
		"kind zero":    {0, 0, 0, 0, 1, 0, 0, 0, 0},
		"length":       {frameChunk, 0x10, 0, 0, 1, 0, 0, 0, 0}, // maxPayload+1
		"end payload":  {frameEnd, 0, 0, 0, 1, 0, 0, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			c := dialTCP(t, r.address())
			if _, err := c.Write(hdr); err != nil {
				t.Fatal(err)
			}
			if !closedWithin(t, c, 5*time.Second) {
				t.Fatal("the receiver waits for the payload of a header it should refuse")
			}
		})
	}
}

// streamConn is a connection that reads a fixed stream and discards what
// is written to it.
type streamConn struct {
	net.Conn // nil: only the methods below are called
	r        io.Reader
}

func (c *streamConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *streamConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// FuzzServe feeds a receiver's connection frames of any kind and
// payload, with their checksums right, so that hellos, batches and chunks
// are decoded as from the network: nothing panics. The input is a list of
// records, each a kind byte, a 2-byte length and that many bytes of
// payload (FuzzReadFrame covers the framing itself).
func FuzzServe(f *testing.F) {
	record := func(kind byte, p []byte) []byte {
		return append([]byte{kind, byte(len(p) >> 8), byte(len(p))}, p...)
	}
	b := testBatch(1, []byte("ok"))
	batch, err := b.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	chunk, err := (&pb.Chunk{ShardID: 9, ReplicaID: 2, ChunkCount: 1, Data: []byte{1, 2}, Filepath: "f", FileSize: 2,
		HasFileInfo: true, FileInfo: pb.SnapshotFile{Filepath: "x", FileSize: 2, Metadata: []byte{3}},
		Membership: pb.Membership{Addresses: map[uint64]string{1: "a:1"}}}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(slices.Concat(record(frameHello, []byte("127.0.0.1:4242")), record(frameBatch, batch), record(frameBatch, batch)))
	f.Add(slices.Concat(record(frameChunk, chunk), record(frameEnd, nil)))
	f.Add(slices.Concat(record(frameHello, []byte("[::1]:1")), record(frameBatch, batch[:len(batch)/2])))
	f.Add(record(frameChunk, chunk[:len(chunk)-1]))
	f.Add(record(frameBatch, []byte{0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f}))
	for _, p := range malformedBatches() {
		f.Add(record(frameBatch, p))
	}
	f.Fuzz(func(t *testing.T, records []byte) {
		var stream []byte
		for len(records) >= 3 {
			kind, n := records[0], min(int(binary.BigEndian.Uint16(records[1:3])), len(records)-3)
			p := records[3 : 3+n]
			stream = append(stream, rawFrame(kind, p, crc32.Checksum(p, crcTable))...)
			records = records[3+n:]
		}
		tr := Factory{Learn: func(string, string) {}}.Create(config.NodeHostConfig{DeploymentID: 7},
			func(pb.MessageBatch) {}, func(pb.Chunk) bool { return true }).(*Transport)
		tr.wg.Add(1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			tr.serve(&streamConn{r: bytes.NewReader(stream)})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("serve still runs 10 s after a stream of %d bytes", len(stream))
		}
	})
}

// malformedBatches are batch payloads that Dragonboat's decoder, given
// them alone, reads out of range on, or loops on forever: it counts a
// batch's messages, and a message's entries, without bounds checks.
func malformedBatches() map[string][]byte {
	back := binary.AppendUvarint(nil, ^uint64(10))   // a length of -11, back to the start
	msg := append([]byte{0x5a, 0x00, 0x5a}, back...) // an entry, then one of length -11
	return map[string][]byte{
		"message count out of range": {0x0a, 0x02, 0x30, 0x30, 0x9d},
		"message count loops":        append([]byte{0x0a, 0x00, 0x0a}, back...),
		"entry count loops":          append([]byte{0x0a, byte(len(msg))}, msg...),
		"message of another type":    {0x0a, 0x00, 0x08, 0xf5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
}

// sendBatchExpectClose sends payload p as a batch frame, with a good
// checksum, on a new connection to addr, and fails the test unless the
// receiver closes the connection within 5 s.
func sendBatchExpectClose(t *testing.T, addr string, p []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(rawFrame(frameBatch, p, crc32.Checksum(p, crcTable))); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(t, c, 5*time.Second) {
		t.Fatal("the connection is open 5 s after the batch")
	}
}

// TestMalformedBatchesAreRefused sends batches that Dragonboat's decoder
// panics or loops forever on: the receiver closes each connection at once,
// and goes on serving others.
func TestMalformedBatchesAreRefused(t *testing.T) {
	r := startIdleReceiver(t, time.Minute)
	for name, p := range malformedBatches() {
		t.Run(name, func(t *testing.T) {
			sendBatchExpectClose(t, r.address(), p)
		})
	}
	r.sendOne(t)
}

// TestUnroutableMessagesAreRefused sends batches with a message that no
// host sends and Dragonboat panics on: none is handed over, and the
// receiver closes the connection.
func TestUnroutableMessagesAreRefused(t *testing.T) {
	r := startReceiver(t)
	for name, edit := range map[string]func(*pb.Message){
		"to replica 0":     func(m *pb.Message) { m.To = 0 },
		"unknown type":     func(m *pb.Message) { m.Type = pb.LogQuery + 1 },
		"negative type":    func(m *pb.Message) { m.Type = -1 },
		"local tick":       func(m *pb.Message) { m.Type = pb.LocalTick },
		"election":         func(m *pb.Message) { m.Type = pb.Election },
		"check quorum":     func(m *pb.Message) { m.Type = pb.CheckQuorum },
		"install snapshot": func(m *pb.Message) { m.Type = pb.InstallSnapshot },
	} {
		t.Run(name, func(t *testing.T) {
			b := testBatch(1, nil)
			b.Requests = append(b.Requests, b.Requests[0]) // a good message first
			edit(&b.Requests[1])
			p, err := b.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			sendBatchExpectClose(t, r.address(), p)
		})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.batches) != 0 {
		t.Fatalf("%d batches handed over, want none", len(r.batches))
	}
}

// readSignalConn is a connection that says, before each read, how many
// bytes the reader asks for.
type readSignalConn struct {
	net.Conn
	reads chan int
}

func (c *readSignalConn) Read(p []byte) (int, error) {
	c.reads <- len(p)
	return c.Conn.Read(p)
}

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestSilentConnectionsHoldNoBuffer serves loopback connections that send
// nothing: while each reader waits for its first bytes, the heap holds no
// read buffer for them. Once each has sent a header, it does, which shows
// that the measure sees the buffers.
func TestSilentConnectionsHoldNoBuffer(t *testing.T) {
	const n = 64
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tr := Factory{}.Create(config.NodeHostConfig{DeploymentID: 7},
		func(pb.MessageBatch) {}, func(pb.Chunk) bool { return true }).(*Transport)
	tr.idle, tr.hello = time.Minute, time.Minute
	awaitReads := func(conns []*readSignalConn) {
		t.Helper()
		for i, c := range conns {
			select {
			case <-c.reads:
			case <-time.After(10 * time.Second):
				t.Fatalf("connection %d: no read in 10 s", i)
			}
		}
	}

	before := liveHeap()
	clients := make([]net.Conn, n)
	served := make([]*readSignalConn, n)
	for i := range n {
		if clients[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		defer clients[i].Close()
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		served[i] = &readSignalConn{Conn: c, reads: make(chan int, 16)}
		tr.wg.Add(1)
		go tr.serve(served[i])
	}
	awaitReads(served) // every reader waits for its first bytes
	held := liveHeap() - before
	t.Logf("%d silent connections: %d KiB of heap", n, held>>10)
	if held > n*readBufferSize/8 {
		t.Errorf("%d silent connections hold %d KiB of heap, %d KiB each; a read buffer is %d KiB",
			n, held>>10, held/n>>10, readBufferSize>>10)
	}

	// A hello header whose payload the receiver then waits for.
	hdr := []byte{frameHello, 0, 0, 0, 100, 0, 0, 0, 0}
	for _, c := range clients {
		if _, err := c.Write(hdr); err != nil {
			t.Fatal(err)
		}
	}
	awaitReads(served) // every reader read the header and waits for more
	held = liveHeap() - before
	t.Logf("%d connections that sent a header: %d KiB of heap", n, held>>10)
	if held < n*readBufferSize {
		t.Errorf("%d connections that sent a header hold %d KiB of heap, want at least a read buffer each (%d KiB)",
			n, held>>10, n*readBufferSize>>10)
	}
	for _, c := range clients {
		_ = c.Close()
	}
	tr.wg.Wait()
}

// dialTCP connects to addr over plain TCP, closed when the test ends.
func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestDialWaitsForARestartingHost dials a message connection to an
// address where nothing listens yet, as after a host's restart: the dial
// connects once the host listens, instead of failing at once, which
// Dragonboat's circuit breaker would answer by dropping every message to
// the host for up to 1.5 s. A snapshot connection's dial still fails at
// once, and so does a message connection's once its context ends.
func TestDialWaitsForARestartingHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	r := startReceiver(t) // the sender, here
	if _, err := r.GetSnapshotConnection(context.Background(), addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("snapshot connection to a closed port: %v, want it refused", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	// The cancel may come between two dials, or during one.
	start := time.Now()
	if _, err := r.GetConnection(ctx, addr); !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, context.Canceled) {
		t.Fatalf("connection to a closed port, context cancelled: %v, want it refused or cancelled", err)
	}
	if d := time.Since(start); d > dialTimeout/2 {
		t.Fatalf("connection to a closed port failed %v after the dial began, its context cancelled after 200 ms", d)
	}
	// The host comes back on its address a while after the dial began.
	restarted := make(chan *Transport, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		tr := Factory{}.Create(config.NodeHostConfig{RaftAddress: addr, DeploymentID: 7},
			func(pb.MessageBatch) {}, func(pb.Chunk) bool { return true }).(*Transport)
		if err := tr.Start(); err != nil {
			t.Error(err)
		}
		restarted <- tr
	}()
	conn, err := r.GetConnection(context.Background(), addr)
	tr := <-restarted
	defer tr.Close()
	if err != nil {
		t.Fatalf("connection to a restarting host: %v, want it made once the host listens", err)
	}
	conn.Close()
}

// TestBatchesReachARestartedHost sends batches on a connection whose
// receiver's host stopped, and restarted on the same address. The old
// connection got the receiver's FIN, but a write on it still succeeds: the
// batch would be lost (the new host's kernel answers it with a reset), and
// Dragonboat does not resend a forwarded proposal or a ReadIndex request,
// which would wait for their deadline. The batches must reach the new
// host, in order, on a new connection that starts with a hello; and once
// the host stays down, the send must fail.
func TestBatchesReachARestartedHost(t *testing.T) {
	for _, name := range []string{"tcp", "tls"} {
		t.Run(name, func(t *testing.T) {
			var cfg *tls.Config
			if name == "tls" {
				cfg = testcert.NewCA(t, "cluster").Config(t)
			}
			old := startReceiverWith(t, cfg, idleTimeout)
			addr := old.address()
			sender := tlsSender(cfg) // plain TCP without cfg
			sender.write = time.Second
			conn, err := sender.GetConnection(context.Background(), addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			send := func(i int) error {
				b := testBatch(i, []byte{byte(i)})
				b.SourceAddress = "host-a"
				return conn.SendMessageBatch(b)
			}
			for i := range 3 {
				if err := send(i); err != nil {
					t.Fatal(err)
				}
			}
			old.await(t, 3)
			_ = old.Close()
			awaitPeerClosed(t, conn)

			restarted := startReceiverAt(t, Factory{TLS: cfg}, idleTimeout, addr)
			const n = 5
			for i := 3; i < 3+n; i++ {
				if err := send(i); err != nil {
					t.Fatalf("batch %d, to the restarted host: %v", i, err)
				}
			}
			restarted.await(t, n)
			for _, r := range []*receiver{old, restarted} {
				r.mu.Lock()
				if !slices.Equal(r.learnt, []string{"host-a 127.0.0.1:4242"}) {
					t.Errorf("learnt %q, want one connection with a hello", r.learnt)
				}
				r.mu.Unlock()
			}
			restarted.mu.Lock()
			for i, b := range restarted.batches {
				if m := b.Requests[0]; m.LogIndex != uint64(3+i) || !bytes.Equal(m.Entries[0].Cmd, []byte{byte(3 + i)}) {
					t.Errorf("batch %d of the restarted host: %+v, want the batch %d", i, m, 3+i)
				}
			}
			restarted.mu.Unlock()

			// The host stops for good: the send fails, within the write
			// timeout, rather than losing the batch.
			_ = restarted.Close()
			awaitPeerClosed(t, conn)
			if err := send(3 + n); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("a batch to a stopped host: %v, want it refused", err)
			}
		})
	}
}

// awaitPeerClosed waits until conn saw its receiver close it.
func awaitPeerClosed(t *testing.T, conn raftio.IConnection) {
	t.Helper()
	for start := time.Now(); !conn.(*Connection).peerClosed(); time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the connection did not see its receiver close it in 10 s")
		}
	}
}

// TestCancelEndsSendsToAStuckPeer sends to a peer that accepted the
// connection and reads nothing (stopped, or cut off by a partition that
// drops packets) until a write blocks, then cancels the context the
// connection was made with, as Dragonboat does first when its host stops:
// the blocked send fails and Close returns at once, rather than after
// writeTimeout (twice, for a snapshot connection, whose Close sends
// frameEnd), while Dragonboat's shutdown waits for them.
func TestCancelEndsSendsToAStuckPeer(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stuck []net.Conn // accepted, never read
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			stuck = append(stuck, c)
		}
	}()
	defer func() {
		_ = ln.Close()
		<-accepted
		for _, c := range stuck {
			_ = c.Close()
		}
	}()
	sender := Factory{}.Create(config.NodeHostConfig{RaftAddress: "127.0.0.1:1"}, nil, nil).(*Transport)
	data := make([]byte, 1<<20)
	for _, kind := range []string{"message", "snapshot"} {
		ctx, cancel := context.WithCancel(context.Background())
		var send func() error
		var closeConn func()
		if kind == "message" {
			conn, err := sender.GetConnection(ctx, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			send = func() error { return conn.SendMessageBatch(testBatch(1, data)) }
			closeConn = conn.Close
		} else {
			sc, err := sender.GetSnapshotConnection(ctx, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			send = func() error { return sc.SendChunk(pb.Chunk{ShardID: 5, ReplicaID: 1, Data: data}) }
			closeConn = sc.Close
		}
		failed := make(chan error, 1)
		go func() {
			for {
				if err := send(); err != nil {
					failed <- err
					return
				}
			}
		}()
		time.Sleep(time.Second) // loopback's buffers are full long before
		cancel()
		select {
		case <-failed:
		case <-time.After(writeTimeout / 2):
			t.Fatalf("%s connection: a send blocked on a stuck peer still blocks %v after its context ended",
				kind, writeTimeout/2)
		}
		closed := make(chan struct{})
		go func() { closeConn(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(writeTimeout / 2):
			t.Fatalf("%s connection: Close still blocks %v after its context ended", kind, writeTimeout/2)
		}
	}
}

// TestLargeBatchOverASlowLink sends a batch of 16 MiB to a receiver behind
// a link of about 2 MiB/s, with a write timeout of 2 s: the batch takes
// several times that to cross, but the link never stalls for it, so the
// send must not fail. Dragonboat would resend a batch that failed, and
// fail it again, without end: a follower that needs it never catches up.
func TestLargeBatchOverASlowLink(t *testing.T) {
	r := startReceiver(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var proxies sync.WaitGroup
	defer proxies.Wait()
	proxies.Add(1)
	go func() { // the slow link, one connection
		defer proxies.Done()
		in, err := ln.Accept()
		if err != nil {
			return
		}
		defer in.Close()
		out, err := net.Dial("tcp", r.address())
		if err != nil {
			t.Error(err)
			return
		}
		defer out.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				if _, err := out.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
			time.Sleep(30 * time.Millisecond) // 64 KiB per 30 ms, at most
		}
	}()
	sender := Factory{}.Create(config.NodeHostConfig{RaftAddress: "127.0.0.1:1"}, nil, nil).(*Transport)
	sender.write = 2 * time.Second
	conn, err := sender.GetConnection(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	big := bytes.Repeat([]byte("x"), 16<<20)
	if err := conn.SendMessageBatch(testBatch(1, big)); err != nil {
		t.Fatalf("a batch over a slow link that never stalls: %v", err)
	}
	r.await(t, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if got := r.batches[0].Requests[0].Entries[0].Cmd; !bytes.Equal(got, big) {
		t.Fatalf("the batch arrived with %d bytes, want %d", len(got), len(big))
	}
}
