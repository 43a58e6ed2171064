package main

import "testing"

func TestElections(t *testing.T) {
	before := map[uint64]uint64{0: 2, 1: 2, 2: 3, 3: 2}
	after := map[uint64]uint64{0: 2, 1: 4, 2: 4, 4: 7} // shard 3 gone, 4 new
	if got := elections(before, after); got != 3 {
		t.Errorf("elections = %d, want 3 (shard 1 two, shard 2 one; a shard not in both counts none)", got)
	}
	if got := elections(after, after); got != 0 {
		t.Errorf("elections with no term change = %d, want 0", got)
	}
}
