package bus

import (
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/keepalive"
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
