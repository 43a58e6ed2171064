package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// TestSaveFormat pins the JSON-lines format of DESIGN §4.
func TestSaveFormat(t *testing.T) {
	f := newFixture(t)
	f.must(Command{Op: OpHostPut, Host: &Host{ID: "h0", ShardTypes: []string{"zongzi://kv"}}})
	f.must(Command{Op: OpShardPut, Shard: &Shard{Name: "kv1-00001", Type: "zongzi://kv", Status: ShardStatusNew,
		Tags: map[string]string{"placement:vary": "geo:zone", "placement:member": "3;geo:region=us"}}})
	f.must(Command{Op: OpReplicaPut, Replica: &Replica{HostID: "h0", ShardID: 1, IsNonVoting: true}})
	f.must(Command{Op: OpShardLeader, ShardID: 0, Leader: 2, Term: 5})
	f.must(Command{Op: OpHostDelete, HostID: "h3"})
	want := `{"index":6,"hosts":3,"shards":2,"replicas":3,"lastReplicaID":4,"lastShardID":1,"lastHostID":"h0"}
{"id":"h0","created":2,"updated":2,"status":"","tags":null,"apiAddress":"","raftAddress":"","shardTypes":["zongzi://kv"]}
{"id":"h1","created":1,"updated":1,"status":"active","tags":{"geo:zone":"a"},"apiAddress":"127.0.0.1:1001","raftAddress":"127.0.0.1:2001","shardTypes":null}
{"id":"h2","created":1,"updated":1,"status":"active","tags":{"geo:zone":"b"},"apiAddress":"127.0.0.1:1002","raftAddress":"127.0.0.1:2002","shardTypes":null}
{"id":0,"created":1,"updated":5,"status":"","tags":null,"type":"zongzi://github.com/zongzi-kv/zongzi/prime","name":"zongzi","leader":2,"term":5}
{"id":1,"created":3,"updated":3,"status":"new","tags":{"placement:member":"3;geo:region=us","placement:vary":"geo:zone"},"type":"zongzi://kv","name":"kv1-00001"}
{"id":1,"created":1,"updated":1,"status":"active","tags":null,"hostID":"h1","isNonVoting":false,"isWitness":false,"shardID":0}
{"id":2,"created":1,"updated":1,"status":"active","tags":null,"hostID":"h2","isNonVoting":false,"isWitness":false,"shardID":0}
{"id":4,"created":4,"updated":4,"status":"","tags":null,"hostID":"h0","isNonVoting":true,"isWitness":false,"shardID":1}
`
	if got := string(save(t, f.store.State())); got != want {
		t.Errorf("Save =\n%s\nwant\n%s", got, want)
	}
	roundTrip(t, f.store.State())
}

func TestSaveLoadRoundTrip(t *testing.T) {
	roundTrip(t, New().State())
	f := newFixture(t)
	for i := range 5 {
		r := f.must(Command{Op: OpShardPut, Shard: &Shard{Name: strings.Repeat("s", i+1), Type: "kv", Tags: map[string]string{}}})
		for _, h := range []string{"h1", "h2", "h3"} {
			f.must(Command{Op: OpReplicaPut, Replica: &Replica{HostID: h, ShardID: r.Value, Tags: map[string]string{"g": h}}})
		}
	}
	f.must(Command{Op: OpTagSet, Kind: KindShard, ShardID: 2, Key: "k", Value: "<&>\u2028 \x00"})
	f.must(Command{Op: OpTagRemove, Kind: KindHost, HostID: "h1", Key: "geo:zone"})
	f.must(Command{Op: OpShardDelete, ShardID: 3})
	f.must(Command{Op: OpHostPut, Host: &Host{ID: "ünïcode", ShardTypes: []string{}}})
	st := f.store.State()
	roundTrip(t, st)

	// Load replaces everything, counters and index included.
	g := newFixture(t)
	g.must(Command{Op: OpHostPut, Host: &Host{ID: "other"}})
	if err := g.store.Load(bytesReader(save(t, st))); err != nil {
		t.Fatal(err)
	}
	if !g.store.State().Equal(st) {
		t.Errorf("Load did not replace the content:\n%s", save(t, g.store.State()))
	}
}

func TestLoadRejects(t *testing.T) {
	const (
		hdr0 = `{"index":1,"hosts":0,"shards":0,"replicas":0,"lastReplicaID":0,"lastShardID":0,"lastHostID":""}`
		h1   = `{"id":"h1","created":1,"updated":1,"status":"","tags":null,"apiAddress":"","raftAddress":"","shardTypes":null}`
		h2   = `{"id":"h2","created":1,"updated":1,"status":"","tags":null,"apiAddress":"","raftAddress":"","shardTypes":null}`
		s0   = `{"id":0,"created":1,"updated":1,"status":"","tags":null,"type":"t","name":"zongzi"}`
		s1   = `{"id":1,"created":1,"updated":1,"status":"","tags":null,"type":"t","name":"a"}`
		r1   = `{"id":1,"created":1,"updated":1,"status":"","tags":null,"hostID":"h1","isNonVoting":false,"isWitness":false,"shardID":0}`
	)
	hdr := func(h, s, r, lastR, lastS int) string {
		return fmt.Sprintf(`{"index":9,"hosts":%d,"shards":%d,"replicas":%d,"lastReplicaID":%d,"lastShardID":%d,"lastHostID":"h1"}`,
			h, s, r, lastR, lastS)
	}
	lines := func(ls ...string) string { return strings.Join(ls, "\n") + "\n" }
	valid := lines(hdr(2, 2, 1, 1, 1), h1, h2, s0, s1, r1)
	if _, err := ReadState(strings.NewReader(valid)); err != nil {
		t.Fatalf("the valid base case fails: %v", err)
	}
	for _, tt := range []struct{ name, in, err string }{
		{"empty", "", "line 1: unexpected end of input"},
		{"header not an object", "[]\n", "not a JSON object"},
		{"header null", "null\n", "not a JSON object"},
		{"header negative count", `{"hosts":-1}` + "\n", "cannot unmarshal"},
		{"header garbage after", hdr0 + " {}\n", "data after the JSON object"},
		{"fewer lines", lines(hdr(2, 2, 2, 2, 1), h1, h2, s0, s1, r1), "line 7: unexpected end of input"},
		{"huge count", lines(`{"index":1,"hosts":18446744073709551615}`, h1), "unexpected end of input"},
		{"more lines", lines(hdr(2, 2, 1, 1, 1), h1, h2, s0, s1, r1, r1), "line 7: more lines than the header counts"},
		{"shard where a host goes", lines(hdr(2, 2, 1, 1, 1), h1, s0, s0, s1, r1), "line 3: json: cannot unmarshal number"},
		{"replica where a shard goes", lines(hdr(2, 2, 1, 1, 1), h1, h2, r1, s1, r1), "line 4: shard 1 before the prime shard 0"},
		{"shard where a replica goes", lines(hdr(2, 1, 2, 1, 1), h1, h2, s0, s1, r1), `line 5: host "" not found`},
		{"host with empty ID", lines(hdr(1, 0, 0, 0, 0), strings.Replace(h1, `"h1"`, `""`, 1)), "empty or contains NUL"},
		{"hosts out of order", lines(hdr(2, 0, 0, 0, 0), h2, h1), "hosts out of ID order"},
		{"duplicate host", lines(hdr(2, 0, 0, 0, 0), h1, h1), "hosts out of ID order"},
		{"shards out of order", lines(hdr(0, 3, 0, 0, 2), s0, strings.NewReplacer(`"id":1`, `"id":2`, `"a"`, `"b"`).Replace(s1), s1), "line 4: shards out of ID order"},
		{"duplicate shard", lines(hdr(0, 3, 0, 0, 1), s0, s1, s1), "line 4: shards out of ID order"},
		{"shard above counter", lines(hdr(0, 2, 0, 0, 0), s0, s1), "shard ID 1 above lastShardID 0"},
		{"duplicate shard name", lines(hdr(0, 2, 0, 0, 1), s0, strings.Replace(s1, `"a"`, `"zongzi"`, 1)), `shard name "zongzi" is taken`},
		{"replica ID 0", lines(hdr(1, 1, 1, 1, 0), h1, s0, strings.Replace(r1, `"id":1`, `"id":0`, 1)), "replica ID 0"},
		{"replica above counter", lines(hdr(1, 1, 1, 0, 0), h1, s0, r1), "replica ID 1 above lastReplicaID 0"},
		{"replica on missing host", lines(hdr(1, 1, 1, 1, 0), h2, s0, r1), `host "h1" not found`},
		{"replica of missing shard", lines(hdr(1, 1, 1, 1, 0), h1, s0, strings.Replace(r1, `"shardID":0`, `"shardID":1`, 1)), "shard 1 not found"},
		{"guest shard without the prime shard", lines(hdr(0, 1, 0, 0, 1), s1), "line 2: shard 1 before the prime shard 0"},
		{"two replicas of a shard on a host", lines(hdr(1, 1, 2, 2, 0), h1, s0, r1, strings.Replace(r1, `"id":1`, `"id":2`, 1)), "already has replica 1"},
		{"record without versions", lines(hdr(1, 0, 0, 0, 0), `{"id":"h1"}`), "line 2: created 0, updated 0 at index 9"},
		{"updated before created", lines(hdr(1, 1, 0, 0, 0), h1, strings.Replace(s0, `"created":1`, `"created":2`, 1)), "line 3: created 2, updated 1 at index 9"},
		{"updated after the index", lines(hdr(1, 1, 1, 1, 0), h1, s0, strings.Replace(r1, `"updated":1`, `"updated":10`, 1)), "line 4: created 1, updated 10 at index 9"},
		{"truncated line", lines(hdr(1, 0, 0, 0, 0), h1[:20]), "line 2: unexpected EOF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			before := save(t, f.store.State())
			err := f.store.Load(strings.NewReader(tt.in))
			if err == nil || !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Load error = %v, want ErrBadSnapshot containing %q", err, tt.err)
			}
			if after := save(t, f.store.State()); !bytes.Equal(before, after) {
				t.Fatalf("failed Load changed the store:\n%s", after)
			}
		})
	}
}

func TestLoadLenience(t *testing.T) {
	// Blank lines, CRLF, a missing final newline and empty maps are fine;
	// empty maps and slices load as nil, so the state saves canonically.
	in := "\r\n" + `{"index":3,"hosts":1,"shards":0,"replicas":0,"lastHostID":"h"}` + "\r\n\n" +
		`{"id":"h","created":2,"updated":3,"tags":{},"shardTypes":[]}`
	st, err := ReadState(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := st.Host("h")
	if h.Tags != nil || h.ShardTypes != nil || st.Index() != 3 || st.LastHostID() != "h" {
		t.Errorf("host %#v, index %d, last host %q", h, st.Index(), st.LastHostID())
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestLoadReadError(t *testing.T) {
	err := New().Load(failingReader{})
	if err == nil || errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Load error = %v", err)
	}
}

// TestUnknownFieldsIgnoredAlike: a field this binary does not know, as a
// newer binary may write during a rolling upgrade, is ignored alike in a
// command and in a snapshot, so that a replica ends with the same registry
// whether it applied the log or recovered from a snapshot. Load refused
// such a snapshot while Apply ignored such a command: on a replica of an
// older binary, recovering from a newer leader's snapshot failed, which
// Dragonboat answers by panicking, while the same records from the log
// applied.
func TestUnknownFieldsIgnoredAlike(t *testing.T) {
	f := newFixture(t)
	// The same command, written by a newer binary with fields of its own.
	cmd := []byte("\x01" + `{"op":"host_put","host":{"id":"h4","status":"active","rack":"r1","shardTypes":["kv"]},"priority":3}`)
	if res := f.store.Apply(f.next, cmd); res.Err() != nil {
		t.Fatalf("command with unknown fields: %v", res.Err())
	}
	f.next++
	fromLog := f.store.State()
	if h, ok := fromLog.Host("h4"); !ok || h.Status != HostStatusActive || len(h.ShardTypes) != 1 {
		t.Fatalf("host from the command = %+v, %v", h, ok)
	}

	// The snapshot a newer binary saves of that registry.
	var newer []string
	for i, l := range strings.Split(strings.TrimSuffix(string(save(t, fromLog)), "\n"), "\n") {
		newer = append(newer, strings.Replace(l, "{", fmt.Sprintf(`{"future%d":{"x":[1,"y"]},`, i), 1))
	}
	snap := strings.Join(newer, "\n") + "\n"
	rec := New()
	if err := rec.Load(strings.NewReader(snap)); err != nil {
		t.Fatalf("snapshot with unknown fields: %v", err)
	}
	if !rec.State().Equal(fromLog) {
		t.Fatalf("recovered from the snapshot:\n%s\nfrom the log:\n%s", save(t, rec.State()), save(t, fromLog))
	}
}

// TestDesignSnapshotExample: the example of DESIGN §4, verbatim but for
// the header's counts (the example is an excerpt), loads and saves to the
// same bytes.
func TestDesignSnapshotExample(t *testing.T) {
	const example = `{"index":54,"hosts":1,"shards":2,"replicas":1,"lastReplicaID":15,"lastShardID":4,"lastHostID":"69f6…"}
{"id":"69f6…","created":9,"updated":50,"status":"active","tags":{"geo:region":"us-central1","geo:zone":"us-west-1a"},"apiAddress":"127.0.0.1:17013","raftAddress":"127.0.0.1:17012","shardTypes":["zongzi://…/_examples/kv1"]}
{"id":0,"created":6,"updated":26,"status":"","tags":null,"type":"zongzi://…","name":"zongzi"}
{"id":1,"created":15,"updated":51,"status":"new","tags":{"placement:member":"3;geo:region=us-central1","placement:vary":"geo:zone"},"type":"zongzi://…/_examples/kv1","name":"kv1-00001"}
{"id":1,"created":10,"updated":10,"status":"active","tags":null,"hostID":"69f6…","isNonVoting":false,"isWitness":false,"shardID":0}
`
	st, err := ReadState(strings.NewReader(example))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(save(t, st)); got != example {
		t.Errorf("Save =\n%s\nwant\n%s", got, example)
	}
}
