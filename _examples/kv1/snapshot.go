package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// Snapshot format: snapshotVersion, uvarint(count), then count records,
// each: len key | uvarint(ver) | len val, where "len x" is uvarint(len(x))
// followed by the bytes of x. The writer puts them stripe by stripe, each
// stripe's sorted by key, so that the snapshots of replicas with equal
// state are byte-identical. The reader takes records in any order
// (snapshots written before were sorted by key across stripes), and
// refuses bytes after the last of them.
const snapshotVersion byte = 1

// Snapshot counters, served on /metrics: the snapshots this process's
// replicas wrote, and those they recovered from (at start, or sent by a
// leader to a replica that lagged behind its log).
var (
	snapshotsSaved     = metrics.NewCounter("kv1_snapshots_saved_total")
	snapshotsRecovered = metrics.NewCounter("kv1_snapshots_recovered_total")
)

// errSnapshotStopped is returned when a snapshot is abandoned because the
// replica is stopping.
var errSnapshotStopped = errors.New("kv1: snapshot stopped")

// stopCheckEvery is how many records are written or read between checks of
// the close channel.
const stopCheckEvery = 1024

// largeField is the size above which a field of a snapshot being read is
// grown as its bytes arrive instead of allocated up front, so that a
// corrupt length cannot make us allocate more than the input holds.
const largeField = 1 << 20

// snapshotEntry is one record of a snapshot.
type snapshotEntry struct {
	key string
	rec record
}

// snapshotCursor is the state captured by PrepareSnapshot: the records of
// each stripe.
type snapshotCursor [stripes][]snapshotEntry

// PrepareSnapshot copies the records (keys and value references, not value
// bytes: stored values are never modified) while updates are paused, so
// the snapshot is the state at this point whatever Update does next.
// SaveSnapshot orders them beside the updates.
func (sm *stateMachine) PrepareSnapshot() (any, error) {
	var c snapshotCursor
	for i := range sm.stripes {
		st := &sm.stripes[i]
		st.mu.RLock()
		c[i] = make([]snapshotEntry, 0, len(st.m))
		for k, r := range st.m {
			c[i] = append(c[i], snapshotEntry{key: k, rec: r})
		}
		st.mu.RUnlock()
	}
	return &c, nil
}

// SaveSnapshot writes the records captured by PrepareSnapshot to w.
func (sm *stateMachine) SaveSnapshot(cursor any, w io.Writer, stop <-chan struct{}) error {
	c, ok := cursor.(*snapshotCursor)
	if !ok {
		return fmt.Errorf("kv1: snapshot cursor of unexpected type %T", cursor)
	}
	n := 0
	for _, entries := range c {
		n += len(entries)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf [2 * binary.MaxVarintLen64]byte
	bw.WriteByte(snapshotVersion)
	bw.Write(binary.AppendUvarint(buf[:0], uint64(n)))
	// Sorting stripe by stripe compares less and in cache: a 100,000-record
	// snapshot costs a fifth less than with one sort of all records.
	written := 0
	for _, entries := range c {
		slices.SortFunc(entries, func(a, b snapshotEntry) int { return strings.Compare(a.key, b.key) })
		for i := range entries {
			e := &entries[i]
			if written%stopCheckEvery == 0 && stopped(stop) {
				return errSnapshotStopped
			}
			written++
			bw.Write(binary.AppendUvarint(buf[:0], uint64(len(e.key))))
			bw.WriteString(e.key)
			b := binary.AppendUvarint(buf[:0], e.rec.ver)
			bw.Write(binary.AppendUvarint(b, uint64(len(e.rec.val))))
			if _, err := bw.Write(e.rec.val); err != nil {
				return fmt.Errorf("kv1: write snapshot: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("kv1: write snapshot: %w", err)
	}
	snapshotsSaved.Inc()
	return nil
}

// RecoverFromSnapshot replaces the state with the snapshot read from r. On
// error the state is left unchanged.
func (sm *stateMachine) RecoverFromSnapshot(r io.Reader, stop <-chan struct{}) error {
	maps, err := readSnapshot(bufio.NewReaderSize(r, 64<<10), stop)
	if err != nil {
		return err
	}
	for i := range sm.stripes {
		sm.stripes[i].mu.Lock()
	}
	for i := range sm.stripes {
		sm.stripes[i].m, sm.stripes[i].peak = maps[i], len(maps[i])
	}
	for i := range sm.stripes {
		sm.stripes[i].mu.Unlock()
	}
	snapshotsRecovered.Inc()
	return nil
}

// readSnapshot decodes a snapshot into one map per stripe.
func readSnapshot(r *bufio.Reader, stop <-chan struct{}) (*[stripes]map[string]record, error) {
	v, err := r.ReadByte()
	if err != nil {
		return nil, snapshotErr(err)
	}
	if v != snapshotVersion {
		return nil, fmt.Errorf("kv1: read snapshot: unknown version %d", v)
	}
	count, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, snapshotErr(err)
	}
	var maps [stripes]map[string]record
	for i := range maps {
		maps[i] = make(map[string]record)
	}
	for i := uint64(0); i < count; i++ {
		if i%stopCheckEvery == 0 && stopped(stop) {
			return nil, errSnapshotStopped
		}
		key, err := readField(r)
		if err != nil {
			return nil, err
		}
		ver, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, snapshotErr(err)
		}
		val, err := readField(r)
		if err != nil {
			return nil, err
		}
		m := maps[stripeIndex(key)]
		if _, dup := m[string(key)]; dup {
			return nil, fmt.Errorf("kv1: read snapshot: duplicate key %q", key)
		}
		m[string(key)] = record{ver: ver, val: val}
	}
	// The stream ends with the last record: more bytes mean a count that
	// is short of the records, whose rest would be lost without a word.
	switch _, err := r.ReadByte(); {
	case err == nil:
		return nil, fmt.Errorf("kv1: read snapshot: bytes after the %d records", count)
	case err != io.EOF:
		return nil, fmt.Errorf("kv1: read snapshot: %w", err)
	}
	return &maps, nil
}

// readField reads a length-prefixed field.
func readField(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, snapshotErr(err)
	}
	if n <= largeField {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, snapshotErr(err)
		}
		return b, nil
	}
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, int64(min(n, 1<<62))); err != nil || uint64(buf.Len()) != n {
		return nil, snapshotErr(err)
	}
	return buf.Bytes(), nil
}

func snapshotErr(err error) error {
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("kv1: read snapshot: %w", err)
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
