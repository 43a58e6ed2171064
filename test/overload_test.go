package test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

// Bounds of the overload run.
const (
	overloadClients  = 1000             // far more than the 64 a node serves at full speed
	overloadDuration = 5 * time.Second  // of load
	overloadSettle   = 30 * time.Second // for goroutines to drain afterwards
)

// e2eOverload drives a node with far more concurrent clients than it can
// serve, for a bounded time. Afterwards no node has crashed, goroutines and
// heap are back near where they were, and every node answers correctly.
func e2eOverload(t *testing.T, bin string) {
	c := e2eStart(t, bin)
	target := c.Nodes[0]
	ctx := t.Context()
	before := map[int]overloadStats{}
	for _, n := range c.Nodes {
		before[n.N] = overloadRead(t, n)
	}

	slow := overloadSlowClients(t, target, 100)
	codes := overloadRun(ctx, target)
	t.Logf("overload: %d clients for %v on node %d: status codes %v", overloadClients, overloadDuration, target.N, codes)
	for code := range codes {
		switch code {
		case http.StatusOK, http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable, overloadNoAnswer:
		default:
			t.Errorf("overload: unexpected status %d (%d times)", code, codes[code])
		}
	}
	if codes[http.StatusOK] == 0 {
		t.Errorf("overload: no request succeeded: %v", codes)
	}

	for _, n := range c.Nodes {
		if n.PID() == 0 {
			t.Fatalf("node %d exited under overload", n.N)
		}
		b := before[n.N]
		e2eEventually(t, overloadSettle, fmt.Sprintf("node %d back to its goroutines and heap", n.N), func() string {
			a := overloadRead(t, n)
			if a.goroutines > b.goroutines+50 || a.heap > 2*b.heap+64<<20 {
				return fmt.Sprintf("goroutines %d (before %d), heap %d MiB (before %d MiB)",
					a.goroutines, b.goroutines, a.heap>>20, b.heap>>20)
			}
			return ""
		})
	}
	// Slow clients that never finish their headers are cut off (kv1
	// allows 10 s, its readTimeout) instead of holding their connections
	// for ever.
	for i, conn := range slow {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := conn.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("slow client %d: the server did not close its half-sent request", i)
		}
		conn.Close()
	}
	e2eWaitHealthy(t, c, c.Nodes...)
	for i, n := range c.Nodes {
		key := fmt.Sprintf("/after-overload-%d", i)
		rec := e2eExpectRecord(t, "PUT "+key, e2ePut(t, n, key+"?val=ok"), key, "ok")
		e2eReadAll(t, c.Nodes, rec)
	}
}

// overloadSlowClients opens n connections to node n that send half a
// request and then nothing.
func overloadSlowClients(t *testing.T, node *kv1proc.Node, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", node.HTTP)
		if err != nil {
			t.Fatalf("slow client: %v", err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: kv1\r\n"); err != nil {
			t.Fatalf("slow client: %v", err)
		}
	}
	return conns
}

// overloadNoAnswer counts requests that got no HTTP answer (timeouts,
// resets): acceptable under overload, as long as the node survives.
const overloadNoAnswer = 0

// overloadRun runs the clients against n until overloadDuration passes and
// returns how many answers of each status code came back.
func overloadRun(ctx context.Context, n *kv1proc.Node) map[int]int {
	ctx, cancel := context.WithTimeout(ctx, overloadDuration)
	defer cancel()
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: overloadClients, MaxConnsPerHost: overloadClients},
	}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	codes := map[int]int{}
	var seq atomic.Uint64
	var wg sync.WaitGroup
	for w := range overloadClients {
		wg.Go(func() {
			local := map[int]int{}
			for ctx.Err() == nil {
				i := seq.Add(1)
				method, target := http.MethodGet, fmt.Sprintf("/load-%d", i%64)
				if i%4 == 0 {
					method, target = http.MethodPut, fmt.Sprintf("/load-%d-%d?val=v%d", w, i%16, i)
				}
				req, _ := http.NewRequestWithContext(ctx, method, n.URL(target), nil)
				resp, err := client.Do(req)
				if err != nil {
					local[overloadNoAnswer]++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				local[resp.StatusCode]++
			}
			mu.Lock()
			for k, v := range local {
				codes[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return codes
}

// overloadStats is what a node's profiler says of its goroutines and heap.
type overloadStats struct {
	goroutines int
	heap       int64 // bytes in use after a GC
}

func overloadRead(t *testing.T, n *kv1proc.Node) overloadStats {
	t.Helper()
	var s overloadStats
	g := overloadGet(t, n, "/debug/pprof/goroutine?debug=1")
	first, _, _ := strings.Cut(g, "\n")
	total, ok := strings.CutPrefix(first, "goroutine profile: total ")
	if v, err := strconv.Atoi(strings.TrimSpace(total)); ok && err == nil {
		s.goroutines = v
	} else {
		t.Fatalf("node %d: goroutine profile starts %q", n.N, first)
	}
	h := overloadGet(t, n, "/debug/pprof/heap?debug=1&gc=1")
	for line := range strings.SplitSeq(h, "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapInuse = "); ok {
			s.heap, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if s.heap == 0 {
		t.Fatalf("node %d: no HeapInuse in the heap profile", n.N)
	}
	return s
}

func overloadGet(t *testing.T, n *kv1proc.Node, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.Pprof+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("node %d pprof %s: %v", n.N, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("node %d pprof %s: %d %v", n.N, path, resp.StatusCode, err)
	}
	return string(b)
}
