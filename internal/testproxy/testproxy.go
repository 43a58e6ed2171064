// Package testproxy is a TCP proxy for tests that make a host go silent:
// its connections stay open, but no byte passes, as in a partition or a
// power loss, which a closed connection or a refused dial does not show.
package testproxy

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Silent listens on a loopback port and passes bytes between its callers
// and addr, each chunk held for delay first, until silence is called; then
// it passes none, but keeps the connections open. It returns its address.
// The listener and every connection close when the test ends.
func Silent(t testing.TB, addr string, delay time.Duration) (proxy string, silence func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quiet := make(chan struct{})
	var (
		mu    sync.Mutex
		open  []net.Conn
		conns sync.WaitGroup
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			select {
			case <-quiet:
				continue // dropped: the peer hears nothing
			default:
			}
			time.Sleep(delay)
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, s)
			mu.Unlock()
			conns.Add(2)
			go func() { defer conns.Done(); pipe(s, c) }()
			go func() { defer conns.Done(); pipe(c, s) }()
		}
	}()
	var once sync.Once
	return ln.Addr().String(), func() { once.Do(func() { close(quiet) }) }
}
