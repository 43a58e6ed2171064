package placement

import (
	"fmt"
	"strings"
	"testing"
)

// benchInput returns 100 hosts in 10 zones (every other one a reader) and
// 1000 shards of 3 members over distinct zones plus 2 readers.
func benchInput() Input {
	var spec []string
	for i := range 100 {
		spec = append(spec, fmt.Sprintf("h%03d:zone=z%d,reader=%t", i, i%10, i%2 == 0))
	}
	in := Input{Hosts: hosts(strings.Join(spec, " "))}
	for id := range uint64(1000) {
		in.Shards = append(in.Shards, shard(id+1, "member=3 replica:readers=2;reader=true vary=zone"))
	}
	return in
}

// BenchmarkPlace measures one plan over 100 hosts and 1000 shards: from an
// empty registry (5000 adds) and in the steady state (nothing to do).
func BenchmarkPlace(b *testing.B) {
	fresh := benchInput()
	settled := apply(fresh, Place(fresh))
	for _, bc := range []struct {
		name string
		in   Input
	}{{"empty", fresh}, {"settled", settled}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Place(bc.in)
			}
		})
	}
}
