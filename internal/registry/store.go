package registry

import (
	"fmt"
	"sync"
	"sync/atomic"

	memdb "github.com/hashicorp/go-memdb"
)

// Store is the registry of one replica of the prime shard. Apply and Load
// are serialised; State may be called concurrently with them and with
// itself.
type Store struct {
	db  *memdb.MemDB
	wmu sync.Mutex            // serialises Apply and Load
	cur atomic.Pointer[State] // the view after the last Apply or Load

	mu      sync.Mutex // guards changed
	changed chan struct{}
}

// New returns an empty store: no records, index 0.
func New() *Store {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		// The schema is a constant of this package.
		panic(fmt.Sprintf("registry: schema: %v", err))
	}
	txn := db.Txn(true)
	if err := txn.Insert(tableMeta, &meta{Key: metaKey}); err != nil {
		panic(fmt.Sprintf("registry: schema: %v", err))
	}
	txn.Commit()
	s := &Store{db: db, changed: make(chan struct{})}
	s.publish()
	return s
}

// Apply applies the encoded command cmd (see Command.Encode) as the Raft
// entry at index, which must be greater than the last applied index.
//
// The command is validated and applied in one transaction: a rejected
// command, batch included, changes no record. A command at a valid index
// is recorded as applied even when rejected, as it consumed the index.
// Apply never panics on any input.
func (s *Store) Apply(index uint64, cmd []byte) Result {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	t := s.begin(index)
	if index <= t.meta.Index {
		t.txn.Abort()
		return rejected(fmt.Errorf("registry: index %d is not after the applied index %d", index, t.meta.Index))
	}
	res, err := s.applyEncoded(t, cmd)
	if err != nil {
		t.txn.Abort()
		t = s.begin(index)
		res = rejected(err)
	}
	changed, err := t.finish()
	if err != nil {
		return rejected(err)
	}
	s.publish()
	if changed {
		s.notify()
	}
	return res
}

func (s *Store) applyEncoded(t *tx, cmd []byte) (Result, error) {
	c, err := DecodeCommand(cmd)
	if err != nil {
		return Result{}, err
	}
	return t.apply(c, false)
}

// begin starts the write transaction applying the entry at index.
func (s *Store) begin(index uint64) *tx {
	txn := s.db.Txn(true)
	return &tx{txn: txn, index: index, meta: readMeta(txn)}
}

// Changed returns a channel that is closed at the next change of a record
// (by Apply or Load). To wait for a change after reading a State, call
// Changed before State, so that no change falls between them.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// notify wakes the waiters of Changed.
func (s *Store) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

// State returns a read-only view of the registry as it is now, unaffected by
// later changes. It never blocks Apply or Load.
func (s *Store) State() *State { return s.cur.Load() }

// publish makes the current content the view State returns. Views are
// immutable, so taking one costs an atomic load.
func (s *Store) publish() { s.cur.Store(newState(s.db.Snapshot())) }
