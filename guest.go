package zongzi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// indexQuery asks a guest replica for its applied index.
type indexQuery struct{}

// guestQuery is a query to a guest replica with the context of the read
// that makes it, which the state machine's Query gets.
type guestQuery struct {
	ctx   context.Context
	query []byte
}

// guest adapts a StateMachine or StateMachinePersistent to Dragonboat. It
// tracks the applied index and reuses one entry buffer across updates, which
// Dragonboat never makes concurrently. closed is done once Close is called:
// the watches on the state machine end, and no other starts. The state
// machine's Close comes once the queries and watches running on it have
// returned (inUse). done is closed once the state machine's Close has
// returned, and onClose, unless nil, is called then. log gets what the
// state machine reports and Dragonboat must not (see closeResult).
type guest struct {
	update  func([]Entry) []Entry
	query   func(context.Context, []byte) *Result
	watch   func(context.Context, []byte, chan<- *Result)
	log     *slog.Logger
	applied atomic.Uint64
	buf     []Entry

	watchMu sync.Mutex
	closed  context.Context
	close   context.CancelFunc
	users   inUse // the queries and watches running

	done      chan struct{}
	onClose   func()
	closeOnce sync.Once
}

// init sets up a new guest for a state machine's methods, logging to log.
func (g *guest) init(update func([]Entry) []Entry, query func(context.Context, []byte) *Result, watch func(context.Context, []byte, chan<- *Result), log *slog.Logger) {
	g.update, g.query, g.watch, g.log = update, query, watch, log
	g.closed, g.close = context.WithCancel(context.Background())
	g.done = make(chan struct{})
	g.users.idle = make(chan struct{})
}

// closeDone records that the state machine's Close has returned.
func (g *guest) closeDone() {
	g.closeOnce.Do(func() {
		close(g.done)
		if g.onClose != nil {
			g.onClose()
		}
	})
}

// startWatch runs the state machine's Watch in a new goroutine with a
// context that also ends when the state machine is closed, and closes
// results once Watch returns. It returns false, and starts nothing, when
// the state machine is closed.
func (g *guest) startWatch(ctx context.Context, query []byte, results chan<- *Result) bool {
	g.watchMu.Lock()
	defer g.watchMu.Unlock()
	if g.closed.Err() != nil || !g.users.enter() {
		return false
	}
	go func() {
		defer close(results)
		defer g.users.leave()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(g.closed, cancel)()
		g.watch(wctx, query, results)
	}()
	return true
}

// closeWatches ends the watches on the state machine before it closes,
// keeps queries and watches from starting, and waits for those running to
// return, for up to usersWait.
func (g *guest) closeWatches() {
	idle := g.users.close()
	g.watchMu.Lock()
	g.close()
	g.watchMu.Unlock()
	select {
	case <-idle:
	case <-time.After(usersWait):
		g.log.Warn("zongzi: closing a state machine while queries or watches still run on it",
			"running", g.users.n.Load(), "waited", usersWait)
	}
}

// usersWait bounds how long a state machine's Close waits for the queries
// and watches running on it. A query ends with its read's deadline, and a
// watch once its context, which closing ends, is done; one that does not
// would hold the replica's stop, and the host's, for good.
const usersWait = 10 * time.Second

// inUse counts the queries and watches running on a state machine, so that
// its Close comes after them. It takes no lock: a query costs two atomic
// additions.
type inUse struct {
	n       atomic.Int64
	closing atomic.Bool
	idle    chan struct{} // closed once n is 0 after close
	once    sync.Once     // idle's close
}

// enter counts one more user, and reports false, counting none, once close
// was called.
func (u *inUse) enter() bool {
	u.n.Add(1)
	if u.closing.Load() {
		u.leave()
		return false
	}
	return true
}

// leave counts one user fewer.
func (u *inUse) leave() {
	if u.n.Add(-1) == 0 && u.closing.Load() {
		u.done()
	}
}

// close keeps users from entering, and returns a channel closed once none
// is left.
func (u *inUse) close() <-chan struct{} {
	u.closing.Store(true)
	if u.n.Load() == 0 {
		u.done()
	}
	return u.idle
}

func (u *inUse) done() { u.once.Do(func() { close(u.idle) }) }

// closeResult is what Dragonboat gets from the Close of a state machine that
// returned err: nil, the error logged. Dragonboat panics on an error from
// Close, which would stop the whole process, every replica on it, for
// one replica that was stopping anyway.
func (g *guest) closeResult(err error) error {
	if err != nil {
		g.log.Error("zongzi: close state machine", "err", err)
	}
	return nil
}

func (g *guest) Update(ents []sm.Entry) ([]sm.Entry, error) {
	g.buf = g.buf[:0]
	for _, e := range ents {
		g.buf = append(g.buf, Entry{Index: e.Index, Cmd: e.Cmd})
	}
	out := g.update(g.buf)
	if len(out) != len(ents) {
		return nil, fmt.Errorf("zongzi: state machine returned %d results for %d entries", len(out), len(ents))
	}
	for i := range ents {
		if out[i].Index != ents[i].Index { // a result for another entry would reach another caller
			return nil, fmt.Errorf("zongzi: state machine returned entry %d in the place of entry %d", out[i].Index, ents[i].Index)
		}
		ents[i].Result = sm.Result{Value: out[i].Result.Value, Data: out[i].Result.Data}
	}
	g.applied.Store(ents[len(ents)-1].Index)
	clear(g.buf) // drop references to commands
	return ents, nil
}

// Lookup answers a query of the local replica. Dragonboat can still call
// it once the state machine is closing: a read that found the replica
// before it stopped looks up a concurrent state machine without checking
// that it was closed meanwhile. A query that comes then is refused with
// dragonboat.ErrShardClosed (the read goes on elsewhere) instead of
// reaching a state machine that may have released what Query reads.
func (g *guest) Lookup(q any) (any, error) {
	switch q := q.(type) {
	case guestQuery:
		return g.runQuery(q.ctx, q.query)
	case []byte:
		return g.runQuery(context.Background(), q)
	case indexQuery:
		return g.applied.Load(), nil
	}
	return nil, fmt.Errorf("zongzi: unknown query type %T", q)
}

// runQuery runs the state machine's Query, unless its Close was called.
func (g *guest) runQuery(ctx context.Context, query []byte) (any, error) {
	if !g.users.enter() {
		return nil, dragonboat.ErrShardClosed
	}
	defer g.users.leave()
	return g.query(ctx, query), nil
}

// memoryGuest runs an in-memory StateMachine as a concurrent Dragonboat state machine.
type memoryGuest struct {
	guest
	sm StateMachine
}

var _ sm.IConcurrentStateMachine = (*memoryGuest)(nil)

func newMemoryGuest(s StateMachine, log *slog.Logger) *memoryGuest {
	g := &memoryGuest{sm: s}
	g.init(s.Update, s.Query, s.Watch, log)
	return g
}

func (g *memoryGuest) PrepareSnapshot() (any, error) { return g.prepare(g.sm.PrepareSnapshot()) }

func (g *memoryGuest) SaveSnapshot(c any, w io.Writer, _ sm.ISnapshotFileCollection, done <-chan struct{}) error {
	return g.save(c, w, done, g.sm.SaveSnapshot)
}

func (g *memoryGuest) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, done <-chan struct{}) error {
	return g.recover(r, done, g.sm.RecoverFromSnapshot)
}

// Close ends the watches on the state machine and closes it. An error is
// logged (see guest.closeResult).
func (g *memoryGuest) Close() error {
	g.closeWatches()
	defer g.closeDone()
	return g.closeResult(g.sm.Close())
}

// diskGuest runs a StateMachinePersistent as a Dragonboat on-disk state machine.
type diskGuest struct {
	guest
	sm StateMachinePersistent
}

var _ sm.IOnDiskStateMachine = (*diskGuest)(nil)

func newDiskGuest(s StateMachinePersistent, log *slog.Logger) *diskGuest {
	g := &diskGuest{sm: s}
	g.init(s.Update, s.Query, s.Watch, log)
	return g
}

// Open opens the state machine. An error once stopc is closed (the replica
// is stopping) is exactly statemachine.ErrOpenStopped, which Dragonboat
// takes as a stop: any other error from Open stops the whole process with
// a panic.
func (g *diskGuest) Open(stopc <-chan struct{}) (uint64, error) {
	i, err := g.sm.Open(stopc)
	if err != nil {
		select {
		case <-stopc:
			return 0, sm.ErrOpenStopped
		default:
			return 0, fmt.Errorf("zongzi: open state machine: %w", err)
		}
	}
	g.applied.Store(i)
	return i, nil
}

func (g *diskGuest) Sync() error { return g.sm.Sync() }

func (g *diskGuest) PrepareSnapshot() (any, error) { return g.prepare(g.sm.PrepareSnapshot()) }

func (g *diskGuest) SaveSnapshot(c any, w io.Writer, done <-chan struct{}) error {
	return g.save(c, w, done, g.sm.SaveSnapshot)
}

func (g *diskGuest) RecoverFromSnapshot(r io.Reader, done <-chan struct{}) error {
	return g.recover(r, done, g.sm.RecoverFromSnapshot)
}

// Close ends the watches on the state machine and closes it. An error is
// logged (see guest.closeResult).
func (g *diskGuest) Close() error {
	g.closeWatches()
	defer g.closeDone()
	return g.closeResult(g.sm.Close())
}

// snapshotErr is what Dragonboat gets for a snapshot save or recovery that
// returned err: once done is closed (the replica is stopping), exactly
// statemachine.ErrSnapshotStopped, which Dragonboat takes as a stop. Any
// other error from a snapshot stops the whole process with a panic, and a
// state machine that stops early returns its own.
func snapshotErr(err error, done <-chan struct{}) error {
	if err == nil {
		return nil
	}
	select {
	case <-done:
		return sm.ErrSnapshotStopped
	default:
		return err
	}
}

// A guest's snapshot starts with snapshotMagic and the applied index as a
// uvarint, then holds the state machine's own snapshot: a replica that
// recovers from it reports the index it recovered to (Dragonboat applies
// no entry the snapshot covers). A snapshot without the magic, written
// before it was added, is the state machine's alone.
var snapshotMagic = []byte{0, 'z', 'o', 'n', 'g', 'z', 'i', 1}

// guestCursor is a snapshot cursor: the state machine's, and the index
// applied when it was taken (updates are paused meanwhile).
type guestCursor struct {
	applied uint64
	user    any
}

func (g *guest) prepare(user any, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return guestCursor{applied: g.applied.Load(), user: user}, nil
}

// save writes the snapshot of cursor c with the state machine's save. When
// a write to w failed, the error is w's, whatever the state machine
// returned: Dragonboat takes a stream to another host that broke
// (statemachine.ErrSnapshotStreaming) as the end of that stream, not of
// the process, but only when it gets that error, which a state machine
// that wraps it with %v or returns its own hides; and a state machine
// that ignored the error would have a snapshot missing what it wrote
// taken for a whole one.
func (g *guest) save(c any, w io.Writer, done <-chan struct{}, save func(any, io.Writer, <-chan struct{}) error) error {
	gc, ok := c.(guestCursor)
	if !ok {
		return fmt.Errorf("zongzi: snapshot cursor of type %T", c)
	}
	head := binary.AppendUvarint(slices.Clone(snapshotMagic), gc.applied)
	if _, err := w.Write(head); err != nil {
		return snapshotErr(err, done)
	}
	ew := &errWriter{w: w}
	err := save(gc.user, ew, done)
	switch {
	case ew.err == nil:
	case err == nil:
		err = fmt.Errorf("zongzi: save snapshot: the state machine ignored a failed write: %w", ew.err)
	case !errors.Is(err, ew.err):
		err = fmt.Errorf("%w (the state machine's error: %v)", ew.err, err)
	}
	return snapshotErr(err, done)
}

// errWriter is a writer that remembers the first error of w.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

func (g *guest) recover(r io.Reader, done <-chan struct{}, load func(io.Reader, <-chan struct{}) error) error {
	br := bufio.NewReader(r)
	applied, headed := uint64(0), false
	if head, err := br.Peek(len(snapshotMagic)); err == nil && bytes.Equal(head, snapshotMagic) {
		_, _ = br.Discard(len(snapshotMagic))
		if applied, err = binary.ReadUvarint(br); err != nil {
			return snapshotErr(fmt.Errorf("zongzi: snapshot header: %w", err), done)
		}
		headed = true
	}
	if err := load(br, done); err != nil {
		return snapshotErr(err, done)
	}
	if headed {
		g.applied.Store(applied)
	}
	return nil
}
