package main

import (
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// latencyBounds are the upper bounds of the latency histogram's buckets;
// one more bucket (+Inf) holds the rest.
var latencyBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	1 * time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	1 * time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// metricMethods are the method labels; any other method counts as "other".
var metricMethods = [...]string{http.MethodGet, http.MethodPut, http.MethodDelete, "other"}

// metricCodes are the status codes counted apart; any other counts as "other".
var metricCodes = [...]int{
	http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusNotFound,
	http.StatusMethodNotAllowed, http.StatusConflict, http.StatusRequestEntityTooLarge,
	http.StatusRequestURITooLong, http.StatusUnsupportedMediaType,
	http.StatusInternalServerError, http.StatusServiceUnavailable, 0,
}

// series is the latency histogram of one (method, code) pair. Its count is
// the sum of its buckets.
type series struct {
	buckets [len(latencyBounds) + 1]atomic.Uint64
	nanos   atomic.Uint64 // sum of latencies
}

// httpMetrics counts requests and their latency by method and status code
// with atomic counters: observing a request takes two atomic adds.
type httpMetrics struct {
	series [len(metricMethods)][len(metricCodes)]series
}

// observe records one request of the method at index mi of metricMethods.
func (m *httpMetrics) observe(mi int, code int, d time.Duration) {
	s := &m.series[mi][codeIndex(code)]
	b := 0
	for b < len(latencyBounds) && d > latencyBounds[b] {
		b++
	}
	s.buckets[b].Add(1)
	s.nanos.Add(uint64(max(d, 0)))
}

// methodIndex returns the index of method in metricMethods.
func methodIndex(method []byte) int {
	switch string(method) {
	case http.MethodGet:
		return 0
	case http.MethodPut:
		return 1
	case http.MethodDelete:
		return 2
	}
	return 3
}

func codeIndex(code int) int {
	for i, c := range metricCodes[:len(metricCodes)-1] {
		if c == code {
			return i
		}
	}
	return len(metricCodes) - 1
}

// writePrometheus writes the counters in the Prometheus text format:
// kv1_http_requests_total and the kv1_http_request_duration_seconds
// histogram, each by method and code. Pairs never seen are left out.
func (m *httpMetrics) writePrometheus(w io.Writer) error {
	type snap struct {
		labels  string
		buckets [len(latencyBounds) + 1]uint64
		count   uint64
		nanos   uint64
	}
	var snaps []snap
	for mi := range m.series {
		for ci := range m.series[mi] {
			s := &m.series[mi][ci]
			var x snap
			for b := range s.buckets {
				x.buckets[b] = s.buckets[b].Load()
				x.count += x.buckets[b]
			}
			if x.count == 0 {
				continue
			}
			x.nanos = s.nanos.Load()
			code := "other"
			if c := metricCodes[ci]; c != 0 {
				code = strconv.Itoa(c)
			}
			x.labels = `method="` + metricMethods[mi] + `",code="` + code + `"`
			snaps = append(snaps, x)
		}
	}
	var b []byte
	b = append(b, "# HELP kv1_http_requests_total HTTP requests served, by method and status code.\n"...)
	b = append(b, "# TYPE kv1_http_requests_total counter\n"...)
	for _, x := range snaps {
		b = append(b, "kv1_http_requests_total{"+x.labels+"} "...)
		b = strconv.AppendUint(b, x.count, 10)
		b = append(b, '\n')
	}
	b = append(b, "# HELP kv1_http_request_duration_seconds Latency of HTTP requests, by method and status code.\n"...)
	b = append(b, "# TYPE kv1_http_request_duration_seconds histogram\n"...)
	for _, x := range snaps {
		var cum uint64
		for i, n := range x.buckets {
			cum += n
			le := "+Inf"
			if i < len(latencyBounds) {
				le = strconv.FormatFloat(latencyBounds[i].Seconds(), 'g', -1, 64)
			}
			b = append(b, "kv1_http_request_duration_seconds_bucket{"+x.labels+`,le="`+le+`"} `...)
			b = strconv.AppendUint(b, cum, 10)
			b = append(b, '\n')
		}
		b = append(b, "kv1_http_request_duration_seconds_sum{"+x.labels+"} "...)
		b = strconv.AppendFloat(b, time.Duration(x.nanos).Seconds(), 'g', -1, 64)
		b = append(b, "\nkv1_http_request_duration_seconds_count{"+x.labels+"} "...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	_, err := w.Write(b)
	return err
}
