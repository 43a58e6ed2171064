package main

import (
	"testing"
	"time"
)

// TestPercentile checks the compare-and-set row's percentiles (nearest
// rank) on hand-computed examples. hey, which measures the other rows,
// takes the sample after the nearest rank (index ⌈p·n/100⌉ from 0): of
// 1..200 ms, 101 and 199 ms where this takes 100 and 198.
func TestPercentile(t *testing.T) {
	ms := func(n int) []time.Duration {
		d := make([]time.Duration, n)
		for i := range d {
			d[i] = time.Duration(i+1) * time.Millisecond
		}
		return d
	}
	for _, tc := range []struct {
		n    int
		q    float64
		want time.Duration
	}{
		{200, 0.50, 100 * time.Millisecond},
		{200, 0.99, 198 * time.Millisecond},
		{10, 0.50, 5 * time.Millisecond},
		{10, 0.99, 10 * time.Millisecond},
		{1, 0.99, time.Millisecond},
		{0, 0.99, 0},
	} {
		if got := percentile(ms(tc.n), tc.q); got != tc.want {
			t.Errorf("percentile %v of 1..%d ms = %v, want %v", tc.q, tc.n, got, tc.want)
		}
	}
}
