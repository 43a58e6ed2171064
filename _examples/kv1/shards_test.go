package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zongzi-kv/zongzi"
)

// registryOf returns a registry holding the prime shard and the given
// guest shards, IDs 1 onwards.
func registryOf(t *testing.T, shards ...zongzi.Shard) *zongzi.State {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `{"index":9,"hosts":0,"shards":%d,"replicas":0,"lastReplicaID":0,"lastShardID":%d,"lastHostID":""}`+"\n",
		len(shards)+1, len(shards))
	b.WriteString(`{"id":0,"created":1,"updated":1,"status":"","tags":null,"type":"zongzi://prime","name":"zongzi"}` + "\n")
	for i, s := range shards {
		s.ID, s.Created, s.Updated = uint64(i+1), 2, 2
		line, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
	}
	st, err := zongzi.LoadState(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// kvShards returns kv shards 1 to n, each with tags.
func kvShards(n int, tags map[string]string) []zongzi.Shard {
	var shards []zongzi.Shard
	for i := 1; i <= n; i++ {
		shards = append(shards, zongzi.Shard{Type: shardType, Name: shardName(i), Tags: tags})
	}
	return shards
}

func TestCheckShardCount(t *testing.T) {
	tagged := func(n string) map[string]string { return map[string]string{tagShards: n, "placement:vary": "geo:zone"} }
	legacy := map[string]string{"placement:vary": "geo:zone"} // kv1 before tagShards
	other := zongzi.Shard{Type: "zongzi://other", Name: "kv1-00009"}
	for _, tc := range []struct {
		name   string
		shards []zongzi.Shard // the registry; the shard checked is the first
		want   int            // -s
		err    string         // "" for none
	}{
		{name: "tagged, same count", shards: kvShards(4, tagged("4")), want: 4},
		{name: "tagged, created first", shards: kvShards(1, tagged("4")), want: 4},
		{name: "tagged, fewer", shards: kvShards(4, tagged("4")), want: 2,
			err: "-s 2, but the cluster has 4 kv shards (tag kv1:shards=4 on kv1-00001); start kv1 with -s 4"},
		{name: "tagged, more", shards: kvShards(4, tagged("4")), want: 8,
			err: "-s 8, but the cluster has 4 kv shards (tag kv1:shards=4 on kv1-00001); start kv1 with -s 4"},
		{name: "tagged by a node that is still creating", shards: kvShards(1, tagged("8")), want: 4,
			err: "-s 4, but the cluster has 8 kv shards"},
		{name: "bad tag", shards: kvShards(1, tagged("x")), want: 4, err: `shard kv1-00001 has a bad tag kv1:shards="x"`},
		{name: "zero tag", shards: kvShards(1, tagged("0")), want: 4, err: `shard kv1-00001 has a bad tag kv1:shards="0"`},
		{name: "legacy, same count", shards: kvShards(4, legacy), want: 4},
		{name: "legacy, untagged and nil tags", shards: kvShards(3, nil), want: 3},
		{name: "legacy, fewer", shards: kvShards(4, legacy), want: 3,
			err: "-s 3, but the cluster has 4 kv shards (up to kv1-00004, created by a kv1 that did not tag them); start kv1 with -s 4"},
		{name: "legacy, more", shards: kvShards(4, legacy), want: 5, err: "-s 5, but the cluster has 4 kv shards"},
		{name: "legacy, other types and names ignored", want: 2,
			shards: append(kvShards(2, legacy), other, zongzi.Shard{Type: shardType, Name: "kv1-0003"},
				zongzi.Shard{Type: shardType, Name: "kv1-+0004"}, zongzi.Shard{Type: shardType, Name: "kv2-00005"})},
		{name: "not kv1's", shards: []zongzi.Shard{{Type: "zongzi://other", Name: "kv1-00001"}}, want: 1,
			err: `shard kv1-00001 is of type "zongzi://other", not kv1's`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := registryOf(t, tc.shards...)
			s, ok := st.ShardByName(tc.shards[0].Name)
			if !ok {
				t.Fatalf("no shard %s", tc.shards[0].Name)
			}
			err := checkShardCount(s, st, tc.want)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one with %q", err, tc.err)
			case err != nil && strings.HasPrefix(tc.err, "-s ") && !errors.Is(err, errShardCount):
				t.Fatalf("error %v does not wrap errShardCount", err)
			}
		})
	}
}

func TestShardIndex(t *testing.T) {
	for name, want := range map[string]int{"kv1-00001": 1, "kv1-00042": 42, "kv1-99999": 99999,
		"kv1-00000": 0, "kv1-0001": 0, "kv1-+0001": 0, "kv1-000001": 0, "kv2-00001": 0, "zongzi": 0} {
		i, ok := shardIndex(name)
		if ok != (want > 0) || i != want && ok {
			t.Errorf("shardIndex(%q) = %d, %v; want %d", name, i, ok, want)
		}
	}
}
