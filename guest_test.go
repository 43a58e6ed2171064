package zongzi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/lni/dragonboat/v4"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// quiet is the logger of the guests tested here.
var quiet = slog.New(slog.DiscardHandler)

// bytesSM is a state machine whose state is the bytes of its last snapshot.
type bytesSM struct{ state []byte }

func (s *bytesSM) Update(e []Entry) []Entry                      { return e }
func (s *bytesSM) Query(context.Context, []byte) *Result         { return &Result{} }
func (s *bytesSM) Watch(context.Context, []byte, chan<- *Result) {}
func (s *bytesSM) PrepareSnapshot() (any, error)                 { return bytes.Clone(s.state), nil }
func (s *bytesSM) SaveSnapshot(c any, w io.Writer, _ <-chan struct{}) error {
	_, err := w.Write(c.([]byte))
	return err
}
func (s *bytesSM) RecoverFromSnapshot(r io.Reader, _ <-chan struct{}) error {
	b, err := io.ReadAll(r)
	s.state = b
	return err
}
func (s *bytesSM) Close() error { return nil }

// TestGuestSnapshotCarriesAppliedIndex saves a guest's snapshot and recovers
// another from it: the state machine gets its own bytes back and the guest
// the applied index. A snapshot written before the index was added (the
// state machine's bytes alone) recovers as it was, the index unknown.
func TestGuestSnapshotCarriesAppliedIndex(t *testing.T) {
	state := []byte("the state\x00zongzi\x01 and more")
	src := newMemoryGuest(&bytesSM{state: state}, quiet)
	src.applied.Store(42)
	c, err := src.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if err := src.SaveSnapshot(c, &snap, nil, nil); err != nil {
		t.Fatal(err)
	}
	dst := &bytesSM{}
	g := newMemoryGuest(dst, quiet)
	if err := g.RecoverFromSnapshot(&snap, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.state, state) || g.applied.Load() != 42 {
		t.Errorf("recovered %q at index %d, want %q at 42", dst.state, g.applied.Load(), state)
	}

	old := &bytesSM{}
	g = newMemoryGuest(old, quiet)
	g.applied.Store(7)
	if err := g.RecoverFromSnapshot(bytes.NewReader(state), nil, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old.state, state) || g.applied.Load() != 7 {
		t.Errorf("an old snapshot recovered %q at index %d, want %q and the index left at 7", old.state, g.applied.Load(), state)
	}
}

// reversingSM answers a batch of entries in the wrong order.
type reversingSM struct{ bytesSM }

func (s *reversingSM) Update(e []Entry) []Entry {
	out := make([]Entry, len(e))
	for i := range e {
		out[i] = e[len(e)-1-i]
	}
	return out
}

// TestGuestUpdateRefusesWrongOrder: results returned in another order than
// the entries would each reach another caller; the update fails instead.
func TestGuestUpdateRefusesWrongOrder(t *testing.T) {
	ents := []sm.Entry{{Index: 5, Cmd: []byte("a")}, {Index: 6, Cmd: []byte("b")}}
	if _, err := newMemoryGuest(&reversingSM{}, quiet).Update(ents); err == nil {
		t.Error("an update answered in reverse order succeeded")
	}
	if _, err := newMemoryGuest(&bytesSM{}, quiet).Update(ents); err != nil {
		t.Errorf("an update answered in order: %v", err)
	}
}

// failingWriter fails every write after the first n bytes with err.
type failingWriter struct {
	n   int
	err error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, w.err
	}
	w.n -= len(p)
	return len(p), nil
}

// ownErrorDiskSM is a diskSMStub whose SaveSnapshot reports a failed write
// with an error of its own, as many do (fmt.Errorf with %v, say).
type ownErrorDiskSM struct{ diskSMStub }

func (*ownErrorDiskSM) SaveSnapshot(_ any, w io.Writer, _ <-chan struct{}) error {
	if _, err := w.Write(make([]byte, 100)); err != nil {
		return errors.New("disk sm: write failed: " + err.Error())
	}
	return nil
}

// diskSMStub is a StateMachinePersistent that does nothing.
type diskSMStub struct{ bytesSM }

func (diskSMStub) Open(<-chan struct{}) (uint64, error) { return 0, nil }
func (diskSMStub) Sync() error                          { return nil }

// TestGuestSnapshotKeepsWriterError: a persistent state machine's snapshot
// streamed to another host that goes away fails on a write with
// Dragonboat's ErrSnapshotStreaming, which Dragonboat takes as the end of
// the stream; any other error from SaveSnapshot stops the process with a
// panic. A state machine that returns its own error for the failed write
// gets that of the writer passed on, its own beside it.
func TestGuestSnapshotKeepsWriterError(t *testing.T) {
	g := newDiskGuest(&ownErrorDiskSM{}, quiet)
	c, err := g.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	err = g.SaveSnapshot(c, &failingWriter{n: 50, err: sm.ErrSnapshotStreaming}, nil)
	if !errors.Is(err, sm.ErrSnapshotStreaming) || !strings.Contains(err.Error(), "disk sm: write failed") {
		t.Errorf("snapshot to a broken stream: %v, want ErrSnapshotStreaming and the state machine's error", err)
	}
	c, _ = g.PrepareSnapshot()
	if err := g.SaveSnapshot(c, io.Discard, nil); err != nil {
		t.Errorf("snapshot: %v", err)
	}
}

// ignoringDiskSM is a diskSMStub whose SaveSnapshot ignores write errors.
type ignoringDiskSM struct{ diskSMStub }

func (*ignoringDiskSM) SaveSnapshot(_ any, w io.Writer, _ <-chan struct{}) error {
	_, _ = w.Write(make([]byte, 100))
	return nil
}

// TestGuestSnapshotIgnoredWriteFails: a snapshot whose state machine
// ignored a failed write is missing what it wrote; it fails with the
// writer's error instead of passing for a whole one.
func TestGuestSnapshotIgnoredWriteFails(t *testing.T) {
	g := newDiskGuest(&ignoringDiskSM{}, quiet)
	c, err := g.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	err = g.SaveSnapshot(c, &failingWriter{n: 50, err: sm.ErrSnapshotStreaming}, nil)
	if !errors.Is(err, sm.ErrSnapshotStreaming) {
		t.Errorf("snapshot with an ignored failed write: %v, want ErrSnapshotStreaming", err)
	}
}

// queryCountSM is a bytesSM that counts its queries.
type queryCountSM struct {
	bytesSM
	queries int
}

func (s *queryCountSM) Query(context.Context, []byte) *Result {
	s.queries++
	return &Result{}
}

// TestGuestRefusesQueryOnceClosed: Dragonboat looks up a concurrent state
// machine without checking that it was closed (NativeSM.ConcurrentLookup),
// so a read that found the replica before it stopped can reach it after
// Close. The query is refused with ErrShardClosed, which a read takes as
// a replica that cannot serve it, and never reaches the state machine.
func TestGuestRefusesQueryOnceClosed(t *testing.T) {
	s := &queryCountSM{}
	g := newMemoryGuest(s, quiet)
	if _, err := g.Lookup(guestQuery{ctx: context.Background(), query: []byte("q")}); err != nil || s.queries != 1 {
		t.Fatalf("query of an open state machine: %v, %d queries", err, s.queries)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []any{guestQuery{ctx: context.Background(), query: []byte("q")}, []byte("q")} {
		if _, err := g.Lookup(q); !errors.Is(err, dragonboat.ErrShardClosed) {
			t.Errorf("query %T of a closed state machine: %v, want ErrShardClosed", q, err)
		}
	}
	if s.queries != 1 {
		t.Errorf("a closed state machine got %d more queries", s.queries-1)
	}
}
