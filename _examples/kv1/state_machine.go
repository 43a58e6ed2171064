package main

import (
	"context"
	"log/slog"
	"maps"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/zongzi-kv/zongzi"
)

// stripes is the number of independently locked parts of the key space.
// Update is single-threaded, but queries run concurrently with it and with
// each other; striping keeps readers of different keys off one lock.
const stripes = 32

// record is a stored value. ver is the raft index of the entry that wrote
// it. val is never modified after it is stored, so snapshots may share it.
type record struct {
	ver uint64
	val []byte
}

// stripe is one locked part of the key space. A Go map never gives back
// the table of the most records it held, so the map is rebuilt once it
// holds under 1/shrinkRatio of that peak: otherwise a store that once held
// many keys would keep their memory after they were deleted.
type stripe struct {
	mu   sync.RWMutex
	m    map[string]record
	peak int      // the most records m held since it was made
	_    [24]byte // 64 bytes in all: neighbouring locks on distinct cache lines
}

// shrinkRatio and shrinkMin decide when a stripe's map is rebuilt: once
// its peak is at least shrinkMin records and it holds under
// 1/shrinkRatio of them. A rebuild copies fewer records than were deleted
// since the peak, so a delete stays O(1) amortised.
const (
	shrinkRatio = 4
	shrinkMin   = 256
)

// put stores rec under key.
func (st *stripe) put(key string, rec record) {
	st.m[key] = rec
	st.peak = max(st.peak, len(st.m))
}

// delete removes key, and rebuilds the map once it is sparse.
func (st *stripe) delete(key string) {
	delete(st.m, key)
	if st.peak < shrinkMin || len(st.m)*shrinkRatio >= st.peak {
		return
	}
	m := make(map[string]record, len(st.m)) // not maps.Clone, which keeps the table's size
	maps.Copy(m, st.m)
	st.m, st.peak = m, len(m)
}

// stateMachine is the in-memory, versioned key-value store of one kv1
// replica. It implements zongzi.StateMachine: business rejections are
// result codes (see resultOK…resultBadCommand), never errors or panics.
type stateMachine struct {
	shardID   uint64
	replicaID uint64
	log       *slog.Logger
	stripes   [stripes]stripe
}

var _ zongzi.StateMachineFactory = newStateMachine

// newStateMachine builds the state machine of one replica; it is the
// zongzi.StateMachineFactory registered for the kv1 shard type.
func newStateMachine(shardID, replicaID uint64) zongzi.StateMachine {
	sm := &stateMachine{
		shardID:   shardID,
		replicaID: replicaID,
		log:       slog.Default().With("shard", shardID, "replica", replicaID),
	}
	for i := range sm.stripes {
		sm.stripes[i].m = make(map[string]record)
	}
	return sm
}

// stripeOf returns the stripe holding key.
func (sm *stateMachine) stripeOf(key []byte) *stripe {
	return &sm.stripes[stripeIndex(key)]
}

// stripeIndex returns the index of the stripe holding key.
func stripeIndex(key []byte) uint64 { return xxhash.Sum64(key) % stripes }

// Update applies entries in order. Each entry's result is one of:
// resultOK with the written or deleted record, resultNotFound (delete of a
// missing key), resultMismatch with the stored version (0 when missing),
// resultBadCommand for an undecodable command, or resultTooLarge for a
// key over defaultMaxKey bytes or a value over defaultMaxVal, both logged.
// The HTTP handler proposes no such command, but another client of the
// shard could; the limits are constants, the same on every replica.
//
// Put without a version (or with version 0) creates: it mismatches when the
// key exists. Put with version N succeeds when the stored version is N.
// Delete without a version removes the key; with version N only if the
// stored version is N. A missing key is "not found" for a delete whatever
// the version. The written record's version is the entry's raft index.
func (sm *stateMachine) Update(entries []zongzi.Entry) []zongzi.Entry {
	for i := range entries {
		entries[i].Result = sm.apply(entries[i].Index, entries[i].Cmd)
	}
	return entries
}

func (sm *stateMachine) apply(index uint64, cmd []byte) zongzi.Result {
	c, err := decodeCommand(cmd)
	if err != nil {
		sm.log.Warn("kv1: rejected undecodable command", "index", index, "len", len(cmd), "err", err)
		return zongzi.Result{Value: resultBadCommand}
	}
	if len(c.key) > defaultMaxKey || len(c.val) > defaultMaxVal {
		sm.log.Warn("kv1: rejected command over the limits", "index", index, "key", len(c.key), "val", len(c.val))
		return zongzi.Result{Value: resultTooLarge}
	}
	st := sm.stripeOf(c.key)
	st.mu.Lock()
	defer st.mu.Unlock()
	old, exists := st.m[string(c.key)]
	switch c.op {
	case opPut:
		want := uint64(0)
		if c.hasVer {
			want = c.ver
		}
		if want != old.ver || (want == 0 && exists) {
			return mismatch(old.ver)
		}
		rec := record{ver: index, val: append([]byte(nil), c.val...)}
		st.put(string(c.key), rec)
		return zongzi.Result{Value: resultOK, Data: encodeRecord(rec.ver, c.key, rec.val)}
	case opDelete:
		if !exists {
			return zongzi.Result{Value: resultNotFound}
		}
		if c.hasVer && c.ver != old.ver {
			return mismatch(old.ver)
		}
		st.delete(string(c.key))
		return zongzi.Result{Value: resultOK, Data: encodeRecord(old.ver, c.key, old.val)}
	}
	return zongzi.Result{Value: resultBadCommand} // unreachable: decodeCommand checks op
}

// Query answers a get query: resultOK with the record, resultNotFound, or
// resultBadCommand for an undecodable query. It runs concurrently with
// Update and never blocks it for longer than one map look-up.
func (sm *stateMachine) Query(_ context.Context, query []byte) *zongzi.Result {
	key, err := decodeQuery(query)
	if err != nil {
		return &zongzi.Result{Value: resultBadCommand}
	}
	st := sm.stripeOf(key)
	st.mu.RLock()
	rec, ok := st.m[string(key)]
	st.mu.RUnlock()
	if !ok {
		return &zongzi.Result{Value: resultNotFound}
	}
	return &zongzi.Result{Value: resultOK, Data: encodeRecord(rec.ver, key, rec.val)}
}

// Watch is not supported by kv1: it sends nothing and returns when ctx is
// done.
func (sm *stateMachine) Watch(ctx context.Context, _ []byte, _ chan<- *zongzi.Result) {
	<-ctx.Done()
}

// Close releases nothing; the state lives in memory only.
func (sm *stateMachine) Close() error { return nil }

func mismatch(stored uint64) zongzi.Result {
	return zongzi.Result{Value: resultMismatch, Data: appendMismatch(make([]byte, 0, 1+uvarintSize(stored)), stored)}
}

func encodeRecord(ver uint64, key, val []byte) []byte {
	return appendRecord(make([]byte, 0, recordSize(ver, key, val)), ver, key, val)
}
