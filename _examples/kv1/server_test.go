package main

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestClientThatStopsReadingIsDropped: a client that sends requests and
// never reads their responses loses its connection once writeTimeout
// (shortened) passed, instead of holding it for as long as it stays.
func TestClientThatStopsReadingIsDropped(t *testing.T) {
	saved := writeTimeout
	writeTimeout = 500 * time.Millisecond
	t.Cleanup(func() { writeTimeout = saved })
	val := bytes.Repeat([]byte("v"), 1<<20)
	srv := newHTTPServer(func(rc *fasthttp.RequestCtx) { rc.SetBody(val) }, 1<<20, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	// More responses than the sockets' buffers hold, none of them read.
	reqs := strings.Repeat("GET /k HTTP/1.1\r\nHost: kv1\r\n\r\n", 64)
	if _, err := c.Write([]byte(reqs)); err != nil {
		t.Fatal(err)
	}
	for srv.GetOpenConnectionsCount() == 0 { // the server took the connection
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.GetOpenConnectionsCount() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connection(s) open 5 s after the client stopped reading", srv.GetOpenConnectionsCount())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
