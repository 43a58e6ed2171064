package main

import (
	"context"
	"strconv"
	"strings"
	"testing"

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
