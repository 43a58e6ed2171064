package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/zongzi-kv/zongzi"
)

// put, cas and del build commands for tests.
func put(key, val string) []byte { return appendPut(nil, key, val, false, 0) }
func cas(key, val string, ver uint64) []byte {
	return appendPut(nil, key, val, true, ver)
}
func del(key string) []byte              { return appendDelete(nil, key, false, 0) }
func delVer(key string, v uint64) []byte { return appendDelete(nil, key, true, v) }

// maxKey and maxVal are a key and a value at the limits.
var (
	maxKey = "/" + strings.Repeat("k", defaultMaxKey-1)
	maxVal = strings.Repeat("v", defaultMaxVal)
)

// wantRecord is the encoded result data of a record.
func wantRecord(ver uint64, key, val string) []byte {
	return appendRecord(nil, ver, []byte(key), []byte(val))
}

func TestStateMachineUpdate(t *testing.T) {
	type step struct {
		index uint64
		cmd   []byte
		code  uint64
		data  []byte
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"create", []step{
			{6, put("/k", "v"), resultOK, wantRecord(6, "/k", "v")},
		}},
		{"create existing is a mismatch", []step{
			{6, put("/k", "v"), resultOK, wantRecord(6, "/k", "v")},
			{7, put("/k", "w"), resultMismatch, appendMismatch(nil, 6)},
			{8, cas("/k", "w", 0), resultMismatch, appendMismatch(nil, 6)},
		}},
		{"cas", []step{
			{6, put("/k", "v1"), resultOK, wantRecord(6, "/k", "v1")},
			{7, cas("/k", "v2", 6), resultOK, wantRecord(7, "/k", "v2")},
			{8, cas("/k", "v3", 6), resultMismatch, appendMismatch(nil, 7)},
			{9, cas("/k", "v3", 7), resultOK, wantRecord(9, "/k", "v3")},
		}},
		{"cas on missing key mismatches against 0", []step{
			{6, cas("/k", "v", 5), resultMismatch, appendMismatch(nil, 0)},
		}},
		{"create with ver 0", []step{
			{6, cas("/k", "v", 0), resultOK, wantRecord(6, "/k", "v")},
		}},
		{"empty value", []step{
			{6, put("/k", ""), resultOK, wantRecord(6, "/k", "")},
		}},
		{"delete", []step{
			{6, put("/k", "v"), resultOK, wantRecord(6, "/k", "v")},
			{7, del("/k"), resultOK, wantRecord(6, "/k", "v")},
			{8, del("/k"), resultNotFound, nil},
			{9, put("/k", "again"), resultOK, wantRecord(9, "/k", "again")},
		}},
		{"delete cas", []step{
			{6, put("/k", "v"), resultOK, wantRecord(6, "/k", "v")},
			{7, delVer("/k", 5), resultMismatch, appendMismatch(nil, 6)},
			{8, delVer("/k", 0), resultMismatch, appendMismatch(nil, 6)},
			{9, delVer("/k", 6), resultOK, wantRecord(6, "/k", "v")},
			{10, delVer("/k", 6), resultNotFound, nil},
		}},
		{"bad command changes nothing", []step{
			{6, put("/k", "v"), resultOK, wantRecord(6, "/k", "v")},
			{7, nil, resultBadCommand, nil},
			{8, []byte("{\"op\":\"put\"}"), resultBadCommand, nil},
			{9, appendGet(nil, "/k"), resultBadCommand, nil},
			{10, put("/k", "v")[:5], resultBadCommand, nil},
			{11, cas("/k", "w", 6), resultOK, wantRecord(11, "/k", "w")},
		}},
		// The handler refuses these, but another client of the shard
		// could propose them.
		{"over the limits changes nothing", []step{
			{6, put("/k", "v"), resultOK, wantRecord(6, "/k", "v")},
			{7, cas("/k", strings.Repeat("v", defaultMaxVal+1), 6), resultTooLarge, nil},
			{8, put("/"+strings.Repeat("k", defaultMaxKey), "v"), resultTooLarge, nil},
			{9, del("/" + strings.Repeat("k", defaultMaxKey)), resultTooLarge, nil},
			{10, put(maxKey, maxVal), resultOK, wantRecord(10, maxKey, maxVal)},
			{11, cas("/k", "w", 6), resultOK, wantRecord(11, "/k", "w")},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sm := newStateMachine(1, 1)
			var log bytes.Buffer
			sm.(*stateMachine).log = slog.New(slog.NewTextHandler(&log, nil))
			for _, s := range tc.steps {
				out := sm.Update([]zongzi.Entry{{Index: s.index, Cmd: s.cmd}})
				if len(out) != 1 {
					t.Fatalf("index %d: Update returned %d entries", s.index, len(out))
				}
				if r := out[0].Result; r.Value != s.code || !bytes.Equal(r.Data, s.data) {
					t.Fatalf("index %d: result %d %.64x (%d bytes), want %d %.64x", s.index, r.Value, r.Data, len(r.Data), s.code, s.data)
				}
				if logged := strings.Contains(log.String(), fmt.Sprintf("index=%d ", s.index)); logged != (s.code == resultBadCommand || s.code == resultTooLarge) {
					t.Fatalf("index %d: logged %v; log:\n%s", s.index, logged, log.String())
				}
			}
		})
	}
}

func TestStateMachineBatchAndQuery(t *testing.T) {
	sm := newStateMachine(1, 1)
	entries := []zongzi.Entry{
		{Index: 1, Cmd: put("/a", "1")},
		{Index: 2, Cmd: put("/b", "2")},
		{Index: 3, Cmd: cas("/a", "3", 1)},
		{Index: 4, Cmd: del("/b")},
	}
	out := sm.Update(entries)
	for i, e := range out {
		if e.Result.Value != resultOK {
			t.Fatalf("entry %d: result %d", i, e.Result.Value)
		}
	}
	r := sm.Query(context.Background(), appendGet(nil, "/a"))
	if r.Value != resultOK || !bytes.Equal(r.Data, wantRecord(3, "/a", "3")) {
		t.Fatalf("query /a = %d %x", r.Value, r.Data)
	}
	if r := sm.Query(context.Background(), appendGet(nil, "/b")); r.Value != resultNotFound {
		t.Fatalf("query /b = %d", r.Value)
	}
	if r := sm.Query(context.Background(), []byte{0xff}); r.Value != resultBadCommand {
		t.Fatalf("bad query = %d", r.Value)
	}
}

// TestStateMachineStoresACopy checks that a stored value does not alias
// the command, which the caller may reuse.
func TestStateMachineStoresACopy(t *testing.T) {
	sm := newStateMachine(1, 1)
	cmd := put("/k", "value")
	sm.Update([]zongzi.Entry{{Index: 1, Cmd: cmd}})
	for i := range cmd {
		cmd[i] = 0
	}
	r := sm.Query(context.Background(), appendGet(nil, "/k"))
	if !bytes.Equal(r.Data, wantRecord(1, "/k", "value")) {
		t.Fatalf("stored value changed with the command: %x", r.Data)
	}
}

func TestStateMachineSnapshot(t *testing.T) {
	sm := newStateMachine(1, 1)
	var entries []zongzi.Entry
	for i := range 3000 {
		entries = append(entries, zongzi.Entry{Index: uint64(i + 1), Cmd: put(fmt.Sprintf("/key/%d", i), strings.Repeat("x", i%50))})
	}
	entries = append(entries, zongzi.Entry{Index: 3001, Cmd: put("/binary", "\x00\xff\n\"")})
	sm.Update(entries)

	cursor, err := sm.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := dump(sm)
	// Changes after PrepareSnapshot are not in the snapshot.
	sm.Update([]zongzi.Entry{
		{Index: 4000, Cmd: del("/key/1")},
		{Index: 4001, Cmd: put("/later", "v")},
		{Index: 4002, Cmd: cas("/key/2", "changed", 3)},
	})
	var buf bytes.Buffer
	if err := sm.SaveSnapshot(cursor, &buf, nil); err != nil {
		t.Fatal(err)
	}
	if buf.Bytes()[0] != snapshotVersion {
		t.Fatalf("snapshot starts with %d", buf.Bytes()[0])
	}
	saved := append([]byte(nil), buf.Bytes()...)

	other := newStateMachine(1, 2)
	other.Update([]zongzi.Entry{{Index: 1, Cmd: put("/replaced", "v")}})
	if err := other.RecoverFromSnapshot(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if got := dump(other); !maps.Equal(got, want) {
		t.Fatalf("recovered %d records, want %d", len(got), len(want))
	}
	// Equal states save byte-identical snapshots.
	c2, _ := other.PrepareSnapshot()
	var buf2 bytes.Buffer
	if err := other.SaveSnapshot(c2, &buf2, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(saved, buf2.Bytes()) {
		t.Fatal("snapshot of the recovered state differs")
	}
}

func TestStateMachineSnapshotCorrupt(t *testing.T) {
	sm := newStateMachine(1, 1)
	sm.Update([]zongzi.Entry{{Index: 1, Cmd: put("/a", "1")}, {Index: 2, Cmd: put("/b", "2")}})
	c, _ := sm.PrepareSnapshot()
	var buf bytes.Buffer
	if err := sm.SaveSnapshot(c, &buf, nil); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	target := newStateMachine(1, 2)
	target.Update([]zongzi.Entry{{Index: 1, Cmd: put("/keep", "me")}})
	before := dump(target)
	for i := range len(good) {
		if err := target.RecoverFromSnapshot(bytes.NewReader(good[:i]), nil); err == nil {
			t.Fatalf("truncated snapshot (%d of %d bytes) recovered", i, len(good))
		}
	}
	for name, b := range map[string][]byte{
		"version":    {9, 0},
		"huge count": {snapshotVersion, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge field": {snapshotVersion, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"duplicate":  {snapshotVersion, 2, 1, 'k', 1, 0, 1, 'k', 1, 0},
		// A count short of the records, or bytes after them: the records
		// past the count would be lost without a word.
		"short count":    {snapshotVersion, 1, 1, 'k', 1, 0, 1, 'j', 1, 0},
		"trailing bytes": append(append([]byte(nil), good...), 0),
	} {
		if err := target.RecoverFromSnapshot(bytes.NewReader(b), nil); err == nil {
			t.Errorf("%s: recovered", name)
		}
	}
	if !maps.Equal(dump(target), before) {
		t.Fatal("a failed recovery changed the state")
	}
}

func TestStateMachineSnapshotStop(t *testing.T) {
	sm := newStateMachine(1, 1)
	sm.Update([]zongzi.Entry{{Index: 1, Cmd: put("/a", "1")}})
	stop := make(chan struct{})
	close(stop)
	c, _ := sm.PrepareSnapshot()
	if err := sm.SaveSnapshot(c, io.Discard, stop); !errors.Is(err, errSnapshotStopped) {
		t.Fatalf("SaveSnapshot after stop: %v", err)
	}
	if err := sm.SaveSnapshot("bad cursor", io.Discard, nil); err == nil {
		t.Fatal("SaveSnapshot accepted a bad cursor")
	}
}

// TestStateMachineConcurrentQuery runs queries and snapshots alongside
// updates; run with -race.
func TestStateMachineConcurrentQuery(t *testing.T) {
	sm := newStateMachine(1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// On every way out, a failure too, the queries stop before the test
	// ends: they may report errors.
	defer wg.Wait()
	defer cancel()
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("/k%d", (i+g)%16)
				r := sm.Query(ctx, appendGet(nil, key))
				switch r.Value {
				case resultOK:
					rv, err := decodeRecord(r.Data)
					if err != nil || string(rv.key) != key {
						t.Errorf("query %s: %+v, %v", key, rv, err)
						return
					}
				case resultNotFound:
				default:
					t.Errorf("query %s: code %d", key, r.Value)
					return
				}
			}
		}()
	}
	vers := map[string]uint64{}
	for i := uint64(1); i <= 5000; i++ {
		key := fmt.Sprintf("/k%d", i%16)
		var cmd []byte
		switch {
		case i%7 == 0:
			cmd = del(key)
		default:
			cmd = cas(key, fmt.Sprint(i), vers[key])
		}
		out := sm.Update([]zongzi.Entry{{Index: i, Cmd: cmd}})
		switch r := out[0].Result; {
		case r.Value == resultOK && i%7 == 0:
			delete(vers, key)
		case r.Value == resultOK:
			vers[key] = i
		case r.Value == resultNotFound && i%7 == 0:
		default:
			t.Fatalf("index %d: result %d", i, r.Value)
		}
		if i%1000 == 0 {
			c, err := sm.PrepareSnapshot()
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := sm.SaveSnapshot(c, io.Discard, nil); err != nil {
					t.Errorf("snapshot at index %d: %v", i, err)
				}
			}()
		}
	}
}

func TestStateMachineWatchReturnsOnCancel(t *testing.T) {
	sm := newStateMachine(1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		sm.Watch(ctx, appendGet(nil, "/k"), make(chan *zongzi.Result))
		close(done)
	}()
	cancel()
	<-done
	if err := sm.Close(); err != nil {
		t.Fatal(err)
	}
}

// dump returns the state as key → encoded record.
func dump(sm zongzi.StateMachine) map[string]string {
	m := map[string]string{}
	s := sm.(*stateMachine)
	for i := range s.stripes {
		st := &s.stripes[i]
		st.mu.RLock()
		for k, r := range st.m {
			m[k] = string(wantRecord(r.ver, k, string(r.val)))
		}
		st.mu.RUnlock()
	}
	return m
}

// Each snapshot saved or recovered counts once on /metrics; a failed
// recovery does not count.
func TestStateMachineSnapshotCounters(t *testing.T) {
	saved, recovered := snapshotsSaved.Get(), snapshotsRecovered.Get()
	sm := newStateMachine(1, 1)
	sm.Update([]zongzi.Entry{{Index: 1, Cmd: put("/a", "1")}})
	c, _ := sm.PrepareSnapshot()
	var buf bytes.Buffer
	if err := sm.SaveSnapshot(c, &buf, nil); err != nil {
		t.Fatal(err)
	}
	if err := newStateMachine(1, 2).RecoverFromSnapshot(bytes.NewReader(buf.Bytes()[:1]), nil); err == nil {
		t.Fatal("truncated snapshot recovered")
	}
	if err := newStateMachine(1, 2).RecoverFromSnapshot(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if s, r := snapshotsSaved.Get()-saved, snapshotsRecovered.Get()-recovered; s != 1 || r != 1 {
		t.Errorf("counted %d saved and %d recovered snapshots, want 1 and 1", s, r)
	}
}

// A snapshot saved while updates write to every stripe holds the state of
// the moment it was prepared; under -race, this also checks that the
// snapshot reads nothing an update writes.
func TestStateMachineSnapshotBesideUpdates(t *testing.T) {
	sm := newStateMachine(1, 1)
	var entries []zongzi.Entry
	for i := range 1000 {
		entries = append(entries, zongzi.Entry{Index: uint64(i + 1), Cmd: put(fmt.Sprintf("/k%d", i), "before")})
	}
	sm.Update(entries)
	cursor, err := sm.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := dump(sm)
	var buf bytes.Buffer
	saved := make(chan error)
	go func() { saved <- sm.SaveSnapshot(cursor, &buf, nil) }()
	for i := range 1000 {
		cmd := put(fmt.Sprintf("/new%d", i), "after")
		if i%2 == 0 {
			cmd = del(fmt.Sprintf("/k%d", i))
		}
		sm.Update([]zongzi.Entry{{Index: uint64(2000 + i), Cmd: cmd}})
	}
	if err := <-saved; err != nil {
		t.Fatal(err)
	}
	other := newStateMachine(1, 2)
	if err := other.RecoverFromSnapshot(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if got := dump(other); !maps.Equal(got, want) {
		t.Fatalf("snapshot holds %d records, want the %d of when it was prepared", len(got), len(want))
	}
	now := dump(sm)
	if _, ok := now["/new1"]; !ok || len(now) != 1000 {
		t.Fatalf("state has %d records after the updates (/new1 there: %v), want 1000 with /new1", len(now), ok)
	}
}

// TestStateMachineFreesDeletedKeys: once most keys are deleted, the memory
// of the store goes back down. A Go map keeps the table of the most
// records it ever held, so a store that once held many keys kept their
// slots after they were deleted, until a restart recovered a snapshot.
func TestStateMachineFreesDeletedKeys(t *testing.T) {
	const n = 100_000
	key := func(i int) string { return fmt.Sprintf("/deleted/%d", i) }
	before := heapInUse()
	sm := newStateMachine(1, 1)
	index := uint64(0)
	apply := func(cmd func(i int) []byte) {
		const batch = 1000
		entries := make([]zongzi.Entry, batch)
		for i := 0; i < n; i += batch {
			for j := range entries {
				index++
				entries[j] = zongzi.Entry{Index: index, Cmd: cmd(i + j)}
			}
			for _, e := range sm.Update(entries) {
				if e.Result.Value != resultOK {
					t.Fatalf("index %d: result %d", e.Index, e.Result.Value)
				}
			}
		}
	}
	apply(func(i int) []byte { return put(key(i), "v") })
	full := heapInUse()
	// Half go unconditionally, half as compare-and-delete.
	apply(func(i int) []byte {
		if i%2 == 0 {
			return del(key(i))
		}
		return delVer(key(i), uint64(i+1))
	})
	after := heapInUse()
	if got := dump(sm); len(got) != 0 {
		t.Fatalf("%d records left", len(got))
	}
	grown, held := int64(full)-int64(before), int64(after)-int64(before)
	t.Logf("heap: %d KiB with %d records, %d KiB held once all are deleted", grown>>10, n, held>>10)
	if held > grown/4 {
		t.Errorf("%d KiB of the %d KiB that %d records took are held once they are all deleted", held>>10, grown>>10, n)
	}
	runtime.KeepAlive(sm)
}

// heapInUse returns the bytes of the heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
