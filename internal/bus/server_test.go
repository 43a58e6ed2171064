package bus

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
	"golang.org/x/net/http2"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
)

// rawConn opens a connection to the server at addr and says hello in
// HTTP/2, as a gRPC caller does, without gRPC: it answers nothing after.
func rawConn(t *testing.T, addr string) (net.Conn, *http2.Framer) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

// TestServerBoundsStreams: the server tells each caller, in its first
// SETTINGS frame, how many calls it serves at once on a connection.
func TestServerBoundsStreams(t *testing.T) {
	addr, _, _ := startBus(t, newFakeHandler())
	c, fr := rawConn(t, addr)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("first frame %v, want the server's SETTINGS", f)
	}
	if v, ok := sf.Value(http2.SettingMaxConcurrentStreams); !ok || v != serveMaxStreams {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d (sent: %v), want %d", v, ok, serveMaxStreams)
	}
}

// TestServerClosesSilentCallers: a caller that stops answering, here one
// that never answers a ping, loses its connection once the ping's timeout
// passed (serveKeepalive, shortened).
func TestServerClosesSilentCallers(t *testing.T) {
	saved := serveKeepalive
	serveKeepalive = keepalive.ServerParameters{Time: time.Second, Timeout: 500 * time.Millisecond}
	t.Cleanup(func() { serveKeepalive = saved })
	addr, _, _ := startBus(t, newFakeHandler())
	c, fr := rawConn(t, addr)
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(10 * time.Second))
	pinged := false
	for {
		f, err := fr.ReadFrame()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the connection is open %v after the caller went silent (pinged: %v)", time.Since(start), pinged)
		}
		if err != nil {
			break
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			if err := fr.WriteSettingsAck(); err != nil {
				t.Fatal(err)
			}
		}
		if pf, ok := f.(*http2.PingFrame); ok && !pf.IsAck() {
			pinged = true
		}
	}
	if !pinged {
		t.Fatal("the connection ended without a ping")
	}
	t.Logf("closed %v after the caller went silent", time.Since(start))
}

// quickHandler answers every read at once: shard s with query q gets
// (s, q), except shards 13 and 14, whose reads fail.
type quickHandler struct{ *fakeHandler }

func (quickHandler) Read(_ context.Context, shardID uint64, query []byte, _, _ bool) (uint64, []byte, error) {
	switch shardID {
	case shardNotReady:
		return 0, nil, errNotReady
	case shardBroken:
		return 0, nil, errors.New("broken")
	}
	return shardID, query, nil
}

// FuzzReadStreamBatch decodes any bytes as a ReadStream batch, as the bus
// does, and serves it as ReadStream would: nothing panics, and every read
// of the batch gets exactly one result, tagged with the batch.
func FuzzReadStreamBatch(f *testing.F) {
	for _, req := range []*pb.ReadBatchRequest{
		{Batch: 1, TimeoutMs: 1000, Reads: []*pb.ReadRequest{{ShardId: 1, Query: []byte("a")}}},
		{Batch: 2, Reads: []*pb.ReadRequest{{ShardId: 1}, {ShardId: 1, Stale: true}, {ShardId: 2, Leader: true}, {ShardId: shardNotReady}}},
		{Batch: 3, TimeoutMs: 1, Reads: []*pb.ReadRequest{{ShardId: shardNotReady}, {ShardId: shardNotReady}, {ShardId: shardBroken, Stale: true}}},
		{Batch: 4, TimeoutMs: 4294967295, Reads: []*pb.ReadRequest{nil, {}}},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	s := NewServer(quickHandler{newFakeHandler()}, testCodes)
	f.Fuzz(func(t *testing.T, b []byte) {
		var req pb.ReadBatchRequest
		if proto.Unmarshal(b, &req) != nil || len(req.Reads) > serveBatchMaxReads {
			return // not a batch, or one ReadStream refuses whole
		}
		got := make([]int, len(req.Reads))
		var mu sync.Mutex
		s.serveStreamBatch(context.Background(), &req, func(res *pb.ReadBatchResponse) error {
			mu.Lock()
			defer mu.Unlock()
			if res.Batch != req.Batch {
				t.Errorf("results of batch %d for batch %d", res.Batch, req.Batch)
			}
			for _, r := range res.Results {
				if int(r.Index) >= len(got) {
					t.Fatalf("result for read %d of %d", r.Index, len(got))
				}
				got[r.Index]++
			}
			return nil
		})
		for i, n := range got {
			if n != 1 {
				t.Fatalf("read %d of %d got %d results", i, len(got), n)
			}
		}
	})
}
