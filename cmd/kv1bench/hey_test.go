package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// heySummary is hey's summary of the stale GET row of bench/results.json:
// 51,161.573 req/s for 20.0015 s, more responses than hey keeps the
// status code of.
const heySummary = `
Summary:
  Total:	20.0015 secs
  Slowest:	0.0412 secs
  Fastest:	0.0001 secs
  Average:	0.0012 secs
  Requests/sec:	51161.5730
  
  Total data:	19000000 bytes
  Size/request:	19 bytes

Response time histogram:
  0.000 [1]	|
  0.004 [990000]	|■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■

Latency distribution:
  10%% in 0.0004 secs
  50%% in 0.0011 secs
  99%% in 0.0052 secs

Details (average, fastest, slowest):
  DNS+dialup:	0.0000 secs, 0.0001 secs, 0.0040 secs
  resp read:	0.0000 secs, 0.0000 secs, 0.0100 secs

Status code distribution:
  [200]	1000000 responses

`

// TestParseHeyPastItsMillion: hey keeps the status codes of its first
// million responses only, but its rate counts them all. The requests the
// servers' CPU is charged to must be all of them, not the million.
func TestParseHeyPastItsMillion(t *testing.T) {
	r, err := parseHey(heySummary)
	if err != nil {
		t.Fatal(err)
	}
	if r.Codes[200] != 1_000_000 || r.P50.Seconds() != 0.0011 || r.P99.Seconds() != 0.0052 {
		t.Errorf("codes %v, p50 %v, p99 %v", r.Codes, r.P50, r.P99)
	}
	// 51,161.573 × 20.0015 = 1,023,308.2.
	if r.Requests != 1_023_308 || r.Uncoded != 23_308 {
		t.Errorf("requests %d (%d without a status code), want 1023308 (23308)", r.Requests, r.Uncoded)
	}
	// Under the million, the counts are exact and nothing is estimated.
	small := strings.NewReplacer("51161.5730", "41000.0004", "1000000 responses", "820062 responses").Replace(heySummary)
	if r, err = parseHey(small); err != nil {
		t.Fatal(err)
	}
	if r.Requests != 820_062 || r.Uncoded != 0 {
		t.Errorf("under the million: requests %d (%d without a status code), want 820062 (0)", r.Requests, r.Uncoded)
	}
}

// TestTooFewForAP99 runs hey itself: it prints no percentile it has too
// few latencies for (the 99th under 100), and a row of such a load, as
// -n 64 makes, showed a p99 of 0 ms. measure must refuse it, and take
// the same load of 128.
func TestTooFewForAP99(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, ceilingBody)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	heyBin, err := heyBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	load := func(n int) load {
		cfg := config{concurrency: 8, requests: n}
		return load{name: "ceiling", pids: []int{os.Getpid()}, ceiling: true, run: func(ctx context.Context) (Result, string, error) {
			return runHey(ctx, heyBin, cfg.heyArgs(srv.URL)...)
		}}
	}
	row, out, err := measure(ctx, load(64))
	if err == nil {
		t.Errorf("64 requests: p50 %v ms, p99 %v ms, no error; hey said:\n%s", row.P50MS, row.P99MS, out)
	} else if !strings.Contains(err.Error(), "99th percentile") {
		t.Errorf("64 requests: %v, want an error about the 99th percentile", err)
	}
	row, out, err = measure(ctx, load(128))
	if err != nil {
		t.Fatal(err)
	}
	if row.Requests != 128 || row.P50MS <= 0 || row.P99MS < row.P50MS {
		t.Errorf("128 requests: %d measured, p50 %v ms, p99 %v ms; hey said:\n%s", row.Requests, row.P50MS, row.P99MS, out)
	}
}
