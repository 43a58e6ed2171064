package main

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/zongzi-kv/zongzi"
)

var benchVal = strings.Repeat("v", 100)

func BenchmarkCodecEncodePut(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = appendPut(buf[:0], "/testkey", benchVal, true, 123456)
	}
}

func BenchmarkCodecDecodeCommand(b *testing.B) {
	b.ReportAllocs()
	cmd := appendPut(nil, "/testkey", benchVal, true, 123456)
	for b.Loop() {
		if _, err := decodeCommand(cmd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCodecQuery(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = appendGet(buf[:0], "/testkey")
		if _, err := decodeQuery(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCodecRecord(b *testing.B) {
	b.ReportAllocs()
	key, val := []byte("/testkey"), []byte(benchVal)
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = appendRecord(buf[:0], 123456, key, val)
		if _, err := decodeRecord(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStateMachineUpdate(b *testing.B) {
	b.ReportAllocs()
	sm := newStateMachine(1, 1)
	entries := []zongzi.Entry{{Cmd: appendPut(nil, "/testkey", benchVal, false, 0)}}
	var index uint64
	for b.Loop() {
		index++
		entries[0].Index = index
		sm.Update(entries)
		entries[0].Cmd = appendPut(entries[0].Cmd[:0], "/testkey", benchVal, true, index)
	}
}

func BenchmarkStateMachineQuery(b *testing.B) {
	b.ReportAllocs()
	sm := newStateMachine(1, 1)
	sm.Update([]zongzi.Entry{{Index: 1, Cmd: appendPut(nil, "/testkey", benchVal, false, 0)}})
	q := appendGet(nil, "/testkey")
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := sm.Query(ctx, q); r.Value != resultOK {
				b.Fatal(r.Value)
			}
		}
	})
}

// benchServe runs h.serve on one reused request context, so that a
// benchmark counts the handler's own work and allocations, not the
// server's. next prepares the request before each call.
func benchServe(b *testing.B, h *handler, method, uri string, next func(*fasthttp.Request)) {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	var rc fasthttp.RequestCtx
	rc.Init(&req, nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		if next != nil {
			next(&rc.Request)
		}
		rc.Response.Reset()
		h.serve(&rc)
		if code := rc.Response.StatusCode(); code != 200 {
			b.Fatal(code, string(rc.Response.Body()))
		}
	}
}

// BenchmarkHandlerGet measures a linearizable GET of a 100-byte value
// through the handler and the fake client (a real state machine query).
func BenchmarkHandlerGet(b *testing.B) {
	h, _ := newTestHandler(b, handlerConfig{})
	do(b, h, putReq("/testkey?val="+benchVal))
	benchServe(b, h, "GET", "/testkey", nil)
}

// BenchmarkHandlerPut measures a compare-and-set PUT of a 100-byte value
// through the handler and the fake client (a real state machine update).
// Each request carries the version the previous one wrote; the query
// strings are prepared outside the timer, in batches.
func BenchmarkHandlerPut(b *testing.B) {
	h, f := newTestHandler(b, handlerConfig{})
	do(b, h, putReq("/testkey?val="+benchVal))
	var batch []string
	benchServe(b, h, "PUT", "/testkey", func(req *fasthttp.Request) {
		if len(batch) == 0 {
			b.StopTimer()
			ver, _ := f.counts()
			ver += 5 // the fake's first index is 6
			batch = make([]string, 4096)
			for i := range batch {
				batch[i] = "/testkey?val=" + benchVal + "&ver=" + strconv.Itoa(ver+i)
			}
			b.StartTimer()
		}
		req.SetRequestURI(batch[0])
		batch = batch[1:]
	})
}

// BenchmarkStateMachineSnapshot takes a snapshot of 100,000 records (of
// keys like the chaos and load tools write), with one write to each stripe
// right after PrepareSnapshot, as a replica under load would make. It
// reports how long updates wait for PrepareSnapshot (pause-ns/op) and how
// long those first writes take (first-writes-ns/op); SaveSnapshot runs
// beside updates.
func BenchmarkStateMachineSnapshot(b *testing.B) {
	b.ReportAllocs()
	sm := newStateMachine(1, 1)
	entries := make([]zongzi.Entry, 100000)
	for i := range entries {
		entries[i] = zongzi.Entry{Index: uint64(i + 1), Cmd: appendPut(nil, "/kv1bench-cas-"+strconv.Itoa(i%64)+"-"+strconv.Itoa(i), benchVal[:10], false, 0)}
	}
	sm.Update(entries)
	// One key per stripe, each written again after every PrepareSnapshot.
	var keys [stripes]string
	var vers [stripes]uint64
	for i, found := 0, 0; found < stripes; i++ {
		k := "/stripe-" + strconv.Itoa(i)
		if s := stripeIndex([]byte(k)); keys[s] == "" {
			keys[s] = k
			found++
		}
	}
	index := uint64(len(entries))
	write := func(s int) {
		index++
		sm.Update([]zongzi.Entry{{Index: index, Cmd: appendPut(nil, keys[s], "v", vers[s] > 0, vers[s])}})
		vers[s] = index
	}
	for s := range keys {
		write(s)
	}
	var pause, firstWrites time.Duration
	for b.Loop() {
		start := time.Now()
		cursor, err := sm.PrepareSnapshot()
		pause += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		for s := range keys {
			write(s)
		}
		firstWrites += time.Since(start)
		if err := sm.SaveSnapshot(cursor, io.Discard, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(pause.Nanoseconds())/float64(b.N), "pause-ns/op")
	b.ReportMetric(float64(firstWrites.Nanoseconds())/float64(b.N), "first-writes-ns/op")
}
