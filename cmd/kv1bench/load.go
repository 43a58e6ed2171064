package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Result summarises one load run, as hey's summary does.
type Result struct {
	Requests int            // responses plus failed requests
	Elapsed  time.Duration  // wall time of the run
	RPS      float64        // requests per second
	P50, P99 time.Duration  // latency percentiles of the responses
	Codes    map[int]int    // responses by HTTP status code
	Errors   map[string]int // failed requests (no response) by error
	// Uncoded counts the responses that are in Requests but not in Codes:
	// hey keeps the status code (and the latency) of its first
	// heyMaxKept responses only.
	Uncoded int
}

// WriteSummary writes r in the shape of hey's summary, so the output of
// both generators reads alike.
func (r Result) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "\nSummary:\n  Total:\t%.4f secs\n  Requests/sec:\t%.4f\n", r.Elapsed.Seconds(), r.RPS)
	fmt.Fprintf(w, "\nLatency distribution:\n  50%% in %.4f secs\n  99%% in %.4f secs\n", r.P50.Seconds(), r.P99.Seconds())
	fmt.Fprintf(w, "\nStatus code distribution:\n")
	for _, c := range slices.Sorted(maps.Keys(r.Codes)) {
		fmt.Fprintf(w, "  [%d]\t%d responses\n", c, r.Codes[c])
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "\nError distribution:\n")
		for _, e := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(w, "  [%d]\t%s\n", r.Errors[e], e)
		}
	}
}

// CASLoad is a write load that hey cannot make, because every request has
// its own URL: each worker creates a key of its own (ver=0), then
// compare-and-sets it again and again with the version the previous write
// returned. Every request is a raft write of a distinct key. With Fresh,
// each write creates a key of its own instead.
type CASLoad struct {
	URL      string        // base URL of a kv1 node, e.g. http://127.0.0.1:8001
	Prefix   string        // key prefix: worker i writes the key Prefix + i
	Workers  int           // concurrent requests
	Requests int           // total requests; 0 runs for Duration instead
	Duration time.Duration // how long to run when Requests is 0
	Fresh    bool          // each write creates a new key (Prefix + i + "-" + n), so the state grows
}

// mismatch finds the stored version in kv1's 409 body "Version mismatch
// (N != S)".
var mismatch = regexp.MustCompile(`!= (\d+)\)`)

// Run runs the load until its requests are sent or its duration has
// passed, letting requests in flight finish, or until ctx is done.
func (l CASLoad) Run(ctx context.Context) (Result, error) {
	if l.Workers < 1 || (l.Requests <= 0 && l.Duration <= 0) {
		return Result{}, fmt.Errorf("cas load: want workers and a request count or a duration: %+v", l)
	}
	client := &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: l.Workers, MaxConnsPerHost: l.Workers},
	}
	defer client.CloseIdleConnections()
	var (
		sent     atomic.Int64
		start    = time.Now()
		deadline = start.Add(l.Duration)
		mu       sync.Mutex
		lats     []time.Duration
		total    = Result{Codes: map[int]int{}, Errors: map[string]int{}}
		wg       sync.WaitGroup
	)
	more := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if l.Requests > 0 {
			return sent.Add(1) <= int64(l.Requests)
		}
		return time.Now().Before(deadline)
	}
	for i := range l.Workers {
		wg.Go(func() {
			w, err := newCASWorker(ctx, client, fmt.Sprintf("%s%s%d", l.URL, l.Prefix, i))
			if err != nil {
				mu.Lock()
				total.Errors[err.Error()]++
				mu.Unlock()
				return
			}
			w.fresh = l.Fresh
			for more() {
				w.put(ctx)
			}
			mu.Lock()
			defer mu.Unlock()
			lats = append(lats, w.lats...)
			for c, n := range w.codes {
				total.Codes[c] += n
			}
			for e, n := range w.errors {
				total.Errors[e] += n
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	total.Elapsed = time.Since(start)
	total.Requests = len(lats)
	for _, n := range total.Errors {
		total.Requests += n
	}
	total.RPS = float64(total.Requests) / total.Elapsed.Seconds()
	slices.Sort(lats)
	total.P50, total.P99 = percentile(lats, 0.50), percentile(lats, 0.99)
	return total, nil
}

// casWorker writes one key in a chain of compare-and-sets. It reuses one
// request and one body buffer, so that the load generator spends no more
// CPU per request than hey does on the same cores.
type casWorker struct {
	client *http.Client
	req    *http.Request // the key's PUT; only its query changes, or its path when fresh
	path   string        // the key's path
	fresh  bool          // each write creates the key path + "-" + seq
	body   bytes.Buffer
	query  []byte
	ver    uint64 // the version the next write expects
	seq    int
	lats   []time.Duration
	codes  map[int]int
	errors map[string]int
}

func newCASWorker(ctx context.Context, client *http.Client, keyURL string) (*casWorker, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, keyURL, nil)
	if err != nil {
		return nil, fmt.Errorf("cas load: %w", err)
	}
	return &casWorker{client: client, req: req, path: req.URL.Path, codes: map[int]int{}, errors: map[string]int{}}, nil
}

// put sends one compare-and-set and learns the key's version from the
// answer: the new version on 200, the stored one on 409. A request may be
// sent again once the previous response's body is closed.
func (w *casWorker) put(ctx context.Context) {
	w.seq++
	q := append(w.query[:0], "val=v"...)
	q = strconv.AppendInt(q, int64(w.seq), 10)
	q = append(q, "&ver="...)
	w.query = strconv.AppendUint(q, w.ver, 10)
	w.req.URL.RawQuery = string(w.query)
	if w.fresh {
		w.req.URL.Path = w.path + "-" + strconv.Itoa(w.seq)
	}
	start := time.Now()
	resp, err := w.client.Do(w.req)
	if err != nil {
		if ctx.Err() == nil {
			w.errors[err.Error()]++
		}
		return
	}
	w.body.Reset()
	_, err = w.body.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		w.errors[err.Error()]++
		return
	}
	w.lats = append(w.lats, time.Since(start))
	w.codes[resp.StatusCode]++
	if w.fresh {
		return // the next write creates another key: ver stays 0
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if v, ok := recordVersion(w.body.Bytes()); ok {
			w.ver = v
		}
	case http.StatusConflict:
		if m := mismatch.FindSubmatch(w.body.Bytes()); m != nil {
			w.ver, _ = strconv.ParseUint(string(m[1]), 10, 64)
		}
	}
}

// verField starts the version in a kv1 record: {"key":…,"ver":6,"val":…}.
var verField = []byte(`"ver":`)

// recordVersion reads the version of a kv1 record without decoding the
// rest of it.
func recordVersion(rec []byte) (uint64, bool) {
	i := bytes.Index(rec, verField)
	if i < 0 {
		return 0, false
	}
	digits := rec[i+len(verField):]
	n := 0
	for n < len(digits) && digits[n] >= '0' && digits[n] <= '9' {
		n++
	}
	v, err := strconv.ParseUint(string(digits[:n]), 10, 64)
	return v, err == nil
}

// percentile returns the q-quantile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
