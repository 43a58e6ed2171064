package raftnet

import (
	"context"
	"crypto/tls"
	"hash/crc32"
	"io"
	"sync/atomic"
	"testing"

	"github.com/lni/dragonboat/v4/config"
	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/zongzi-kv/zongzi/internal/testcert"
)

// benchSizes are the command sizes of the batches benchmarks send: a
// small proposal, and one that nearly fills the read buffer.
var benchSizes = []struct {
	name string
	cmd  int
}{{"cmd=16B", 16}, {"cmd=16KiB", 16 << 10}}

// frameReader reads a hello, then the same frame n times, each frame in
// reads of its own as batches come off a socket, then io.EOF.
type frameReader struct {
	hello, frame, pending []byte
	n                     int
}

func (r *frameReader) Read(p []byte) (int, error) {
	if len(r.pending) == 0 {
		switch {
		case r.hello != nil:
			r.pending, r.hello = r.hello, nil
		case r.n == 0:
			return 0, io.EOF
		default:
			r.pending = r.frame
			r.n--
		}
	}
	k := copy(p, r.pending)
	r.pending = r.pending[k:]
	return k, nil
}

// BenchmarkServe measures what the receiver spends on one batch, without
// the network: reading it through the buffer, its checksum, decoding it.
func BenchmarkServe(b *testing.B) {
	addr := []byte("127.0.0.1:4242")
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			batch := testBatch(1, make([]byte, size.cmd))
			p, err := batch.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			frame := rawFrame(frameBatch, p, crc32.Checksum(p, crcTable))
			var got int
			tr := Factory{Learn: func(string, string) {}}.Create(config.NodeHostConfig{DeploymentID: 7},
				func(pb.MessageBatch) { got++ }, func(pb.Chunk) bool { return true }).(*Transport)
			tr.idle = idleTimeout
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			tr.wg.Add(1)
			tr.serve(&streamConn{r: &frameReader{hello: rawFrame(frameHello, addr, crc32.Checksum(addr, crcTable)), frame: frame, n: b.N}})
			if got != b.N {
				b.Fatalf("%d batches handed over, want %d", got, b.N)
			}
		})
	}
}

// benchReceiver is a started Transport that counts the batches it is
// handed.
type benchReceiver struct {
	*Transport
	n    atomic.Int64
	tick chan struct{} // a batch came since the last wait
}

func startBenchReceiver(b *testing.B, tlsConfig *tls.Config) *benchReceiver {
	b.Helper()
	r := &benchReceiver{tick: make(chan struct{}, 1)}
	r.Transport = Factory{TLS: tlsConfig}.Create(config.NodeHostConfig{RaftAddress: "127.0.0.1:0", DeploymentID: 7}, func(pb.MessageBatch) {
		r.n.Add(1)
		select {
		case r.tick <- struct{}{}:
		default:
		}
	}, func(pb.Chunk) bool { return true }).(*Transport)
	if err := r.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	return r
}

// wait waits until n batches in all were handed over.
func (r *benchReceiver) wait(n int64) {
	for r.n.Load() < n {
		<-r.tick
	}
}

func (r *benchReceiver) address() string { return r.ln.Addr().String() }

// BenchmarkLoopback sends batches over one loopback connection, as fast
// as the receiver takes them.
func BenchmarkLoopback(b *testing.B) { benchLoopback(b, nil) }

// BenchmarkLoopbackTLS is BenchmarkLoopback over mutual TLS.
func BenchmarkLoopbackTLS(b *testing.B) { benchLoopback(b, testcert.NewCA(b, "bench").Config(b)) }

func benchLoopback(b *testing.B, tlsConfig *tls.Config) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			r := startBenchReceiver(b, tlsConfig)
			conn, err := r.GetConnection(context.Background(), r.address())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			batch := testBatch(1, make([]byte, size.cmd))
			b.SetBytes(int64(batch.Size()))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := conn.SendMessageBatch(batch); err != nil {
					b.Fatal(err)
				}
			}
			r.wait(int64(b.N))
		})
	}
}

// BenchmarkConnect opens a connection, sends one batch on it, waits until
// it is handed over and closes it: what a connection costs to set up.
func BenchmarkConnect(b *testing.B) { benchConnect(b, nil) }

// BenchmarkConnectTLS is BenchmarkConnect over mutual TLS: the handshake
// included.
func BenchmarkConnectTLS(b *testing.B) { benchConnect(b, testcert.NewCA(b, "bench").Config(b)) }

func benchConnect(b *testing.B, tlsConfig *tls.Config) {
	r := startBenchReceiver(b, tlsConfig)
	batch := testBatch(1, make([]byte, 16))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		conn, err := r.GetConnection(context.Background(), r.address())
		if err != nil {
			b.Fatal(err)
		}
		if err := conn.SendMessageBatch(batch); err != nil {
			b.Fatal(err)
		}
		r.wait(int64(i + 1))
		conn.Close()
	}
}
