package main

import "testing"

func TestByNode(t *testing.T) {
	for _, tc := range []struct {
		row  Row
		want string
	}{
		{Row{Node: 2, NodeCPUUS: []float64{1.23, 14, 0.96}}, "1.2 14.0* 1.0"},
		{Row{Node: 1, NodeCPUUS: []float64{30.04, 2.5, 2.5}}, "30.0* 2.5 2.5"},
		{Row{CPUUS: 16.5}, ""}, // a ceiling: no nodes
	} {
		if got := byNode(tc.row); got != tc.want {
			t.Errorf("byNode(%+v) = %q, want %q", tc.row, got, tc.want)
		}
	}
}
