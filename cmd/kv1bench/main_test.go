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
