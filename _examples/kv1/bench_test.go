package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

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

// discardWriter is a reusable http.ResponseWriter, so that a benchmark
// counts the handler's allocations only.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// benchWriters runs serve with a new httptest.ResponseRecorder per request
// ("recorder") and with one reusable writer ("writer").
func benchWriters(b *testing.B, h http.Handler, next func() *http.Request) {
	b.Run("recorder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, next())
			if rec.Code != 200 {
				b.Fatal(rec.Code, rec.Body.String())
			}
		}
	})
	b.Run("writer", func(b *testing.B) {
		b.ReportAllocs()
		w := &discardWriter{h: http.Header{}}
		for b.Loop() {
			h.ServeHTTP(w, next())
			if w.code != 200 {
				b.Fatal(w.code)
			}
		}
	})
}

// BenchmarkHandlerGet measures a linearizable GET of a 100-byte value
// through the handler and the fake client (a real state machine query).
func BenchmarkHandlerGet(b *testing.B) {
	h, _ := newTestHandler(b, handlerConfig{})
	do(b, h, putReq("/testkey?val="+benchVal))
	req := httptest.NewRequest("GET", "/testkey", nil)
	benchWriters(b, h, func() *http.Request { return req })
}

// BenchmarkHandlerPut measures a compare-and-set PUT of a 100-byte value
// through the handler and the fake client (a real state machine update).
// Each request carries the version the previous one wrote; the query
// strings are prepared outside the timer, in batches.
func BenchmarkHandlerPut(b *testing.B) {
	h, f := newTestHandler(b, handlerConfig{})
	do(b, h, putReq("/testkey?val="+benchVal))
	req := httptest.NewRequest("PUT", "/testkey", nil)
	var batch []string
	benchWriters(b, h, func() *http.Request {
		if len(batch) == 0 {
			b.StopTimer()
			ver, _ := f.counts()
			ver += 5 // the fake's first index is 6
			batch = make([]string, 4096)
			for i := range batch {
				batch[i] = "val=" + benchVal + "&ver=" + strconv.Itoa(ver+i)
			}
			b.StartTimer()
		}
		req.URL.RawQuery = batch[0]
		batch = batch[1:]
		return req
	})
}
