package main

import (
	"slices"
	"testing"
	"time"
)

// TestWarmUp: the warm-up runs hey as the loads do, and hey exits with a
// usage error when -n is under -c; with -n 100 the warm-up was -n 10.
func TestWarmUp(t *testing.T) {
	for _, tc := range []struct {
		cfg  config
		want []string
	}{
		{config{concurrency: 64, duration: 20 * time.Second}, []string{"-c", "64", "-z", "2s", "u"}},
		{config{concurrency: 64, duration: 5 * time.Second}, []string{"-c", "64", "-z", "1s", "u"}},
		{config{concurrency: 64, requests: 100000}, []string{"-c", "64", "-n", "10000", "u"}},
		{config{concurrency: 64, requests: 100}, []string{"-c", "64", "-n", "64", "u"}},
		{config{concurrency: 64, requests: 5}, []string{"-c", "64", "-n", "64", "u"}},
	} {
		if got := tc.cfg.warmUp().heyArgs("u"); !slices.Equal(got, tc.want) {
			t.Errorf("warm-up of %+v: hey %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

// TestConfigCheck: hey sends -n/-c requests per worker, so -n 1000 -c 64
// made rows of 960 under a header, and settings in the JSON, that said
// 1000; and under 100 it gives no 99th percentile.
func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		cfg config
		ok  bool
	}{
		{config{concurrency: 64, duration: 20 * time.Second}, true},
		{config{concurrency: 64, requests: 6400}, true},
		{config{concurrency: 64, requests: 128}, true},
		{config{concurrency: 64, requests: 1000}, false},
		{config{concurrency: 64, requests: 100}, false},
		{config{concurrency: 64, requests: 64}, false},
		{config{concurrency: 64, requests: 32}, false},
		{config{concurrency: 64, requests: 10, casURL: "http://127.0.0.1:8001"}, true},
		{config{concurrency: 0, duration: time.Second}, false},
		{config{concurrency: 64}, false},
	} {
		if err := tc.cfg.check(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v, want ok %v", tc.cfg, err, tc.ok)
		}
	}
}
