package registry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// header is the first line of a snapshot.
type header struct {
	Index         uint64 `json:"index"`
	Hosts         uint64 `json:"hosts"`
	Shards        uint64 `json:"shards"`
	Replicas      uint64 `json:"replicas"`
	LastReplicaID uint64 `json:"lastReplicaID"`
	LastShardID   uint64 `json:"lastShardID"`
	LastHostID    string `json:"lastHostID"`
}

// Save writes s as JSON lines: a header, then every host, shard and
// replica, each by ID. The output is deterministic: equal states save to
// equal bytes.
func (s *State) Save(w io.Writer) error {
	txn := s.txn()
	hosts := all[Host](txn, tableHosts, indexID)
	shards := all[Shard](txn, tableShards, indexID)
	replicas := all[Replica](txn, tableReplicas, indexID)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	lines := []any{header{
		Index:         s.meta.Index,
		Hosts:         uint64(len(hosts)),
		Shards:        uint64(len(shards)),
		Replicas:      uint64(len(replicas)),
		LastReplicaID: s.meta.LastReplicaID,
		LastShardID:   s.meta.LastShardID,
		LastHostID:    s.meta.LastHostID,
	}}
	for _, h := range hosts {
		lines = append(lines, h)
	}
	for _, sh := range shards {
		lines = append(lines, sh)
	}
	for _, r := range replicas {
		lines = append(lines, r)
	}
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return fmt.Errorf("registry: save: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("registry: save: %w", err)
	}
	return nil
}

// ReadState reads a snapshot written by State.Save into a new store and
// returns its State.
func ReadState(r io.Reader) (*State, error) {
	s := New()
	if err := s.Load(r); err != nil {
		return nil, err
	}
	return s.State(), nil
}

// Load replaces the whole content of the store with the snapshot read from
// r, written by State.Save. The snapshot is validated as it is read: the
// header's counts must match the lines that follow, records must come in
// increasing ID order and satisfy what Apply guarantees (the prime shard
// first if there are shards, replicas referring to existing hosts and
// shards, one per shard and host, names unique, IDs within the counters,
// created and updated between 1 and the index, in that order). A field
// this binary does not know, which a newer binary may write, is ignored,
// as DecodeCommand ignores it in a command (see Command). On error, which
// wraps ErrBadSnapshot or the reader's error, the store is unchanged.
func (s *Store) Load(r io.Reader) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	t := &tx{txn: s.db.Txn(true)}
	if err := t.load(newLineReader(r)); err != nil {
		t.txn.Abort()
		return err
	}
	changed, err := t.finish()
	if err != nil {
		return err
	}
	s.publish()
	if changed {
		s.notify()
	}
	return nil
}

// load reads a snapshot into t, replacing the content of the store.
func (t *tx) load(lr *lineReader) error {
	var h header
	if err := lr.next(&h); err != nil {
		return err
	}
	t.index = h.Index
	t.meta = meta{LastReplicaID: h.LastReplicaID, LastShardID: h.LastShardID, LastHostID: h.LastHostID}
	for _, table := range []string{tableHosts, tableShards, tableReplicas} {
		if _, err := t.txn.DeleteAll(table, indexID); err != nil {
			return fmt.Errorf("registry: load: clear %s: %w", table, err)
		}
	}
	t.changed = true
	err := loadRecords(t, lr, tableHosts, h.Hosts, func(prev, host *Host) error {
		if prev != nil && host.ID <= prev.ID {
			return errors.New("hosts out of ID order")
		}
		return checkHost(host)
	})
	if err != nil {
		return err
	}
	err = loadRecords(t, lr, tableShards, h.Shards, func(prev, shard *Shard) error {
		switch {
		case prev == nil && shard.ID != 0:
			// Shards are created once the prime shard is (init), which
			// is never deleted. Without it, the registry could neither
			// be initialised nor get a shard.
			return fmt.Errorf("shard %d before the prime shard 0", shard.ID)
		case prev != nil && shard.ID <= prev.ID:
			return errors.New("shards out of ID order")
		case shard.ID > h.LastShardID:
			return fmt.Errorf("shard ID %d above lastShardID %d", shard.ID, h.LastShardID)
		}
		if err := checkShard(shard); err != nil {
			return err
		}
		return t.checkShardName(shard)
	})
	if err != nil {
		return err
	}
	err = loadRecords(t, lr, tableReplicas, h.Replicas, func(prev, replica *Replica) error {
		switch {
		case replica.ID == 0:
			return errors.New("replica ID 0")
		case prev != nil && replica.ID <= prev.ID:
			return errors.New("replicas out of ID order")
		case replica.ID > h.LastReplicaID:
			return fmt.Errorf("replica ID %d above lastReplicaID %d", replica.ID, h.LastReplicaID)
		}
		if err := t.checkReplica(replica); err != nil {
			return err
		}
		return t.checkReplicaSlot(replica)
	})
	if err != nil {
		return err
	}
	var extra json.RawMessage
	if err := lr.next(&extra); err != io.EOF {
		if err == nil {
			err = lr.bad(errors.New("more lines than the header counts"))
		}
		return err
	}
	return nil
}

// loadRecords reads n records of one kind and inserts them, normalised,
// into table once check(previous record or nil, record) accepts them.
func loadRecords[T any, P recordPtr[T]](t *tx, lr *lineReader, table string, n uint64, check func(prev, rec *T) error) error {
	var prev *T
	for range n {
		rec := new(T)
		if err := lr.next(rec); err != nil {
			return err
		}
		P(rec).normalize()
		// Records are written by entries from 1 to the header's index. A
		// record with Updated 0 would make a write conditional on it
		// (IfUpdated) unconditional.
		if c := P(rec).common(); *c.created == 0 || *c.created > *c.updated || *c.updated > t.index {
			return lr.bad(fmt.Errorf("created %d, updated %d at index %d", *c.created, *c.updated, t.index))
		}
		if err := check(prev, rec); err != nil {
			return lr.bad(err)
		}
		if err := t.insert(table, rec); err != nil {
			return lr.bad(err)
		}
		prev = rec
	}
	return nil
}

// lineReader reads the JSON lines of a snapshot, one object per line.
type lineReader struct {
	r    *bufio.Reader
	line int // number of the line last read
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReader(r)}
}

// next decodes the next non-blank line into v: a JSON object, whose fields
// unknown to v are ignored. At the end of the input it returns io.EOF when
// v is a *json.RawMessage (the input may end there), else an error.
func (lr *lineReader) next(v any) error {
	for {
		b, err := lr.r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("registry: load: read: %w", err)
		}
		eof := err == io.EOF
		lr.line++
		b = bytes.TrimSpace(b)
		switch {
		case len(b) == 0 && !eof:
			continue
		case len(b) == 0:
			if _, ok := v.(*json.RawMessage); ok {
				return io.EOF
			}
			return lr.bad(errors.New("unexpected end of input"))
		case b[0] != '{':
			return lr.bad(errors.New("not a JSON object"))
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(v); err != nil {
			return lr.bad(err)
		}
		if dec.InputOffset() != int64(len(b)) {
			return lr.bad(errors.New("data after the JSON object"))
		}
		return nil
	}
}

// bad wraps ErrBadSnapshot with the line number and the reason err.
func (lr *lineReader) bad(err error) error {
	return fmt.Errorf("%w: line %d: %s", ErrBadSnapshot, lr.line, strings.TrimPrefix(err.Error(), "registry: "))
}
