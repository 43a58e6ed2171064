package registry

import (
	"fmt"
	"reflect"

	memdb "github.com/hashicorp/go-memdb"
)

// tx is one write transaction of the registry: the memdb transaction, the
// Raft index it applies, and the counters it changes (written on commit).
type tx struct {
	txn     *memdb.Txn
	index   uint64
	meta    meta
	changed bool // a record was inserted, updated or deleted
}

func (t *tx) host(id string) *Host { return first[Host](t.txn, tableHosts, indexID, id) }

func (t *tx) shard(id uint64) *Shard { return first[Shard](t.txn, tableShards, indexID, id) }

func (t *tx) replica(id uint64) *Replica {
	return first[Replica](t.txn, tableReplicas, indexID, id)
}

func (t *tx) shardByName(name string) *Shard {
	return first[Shard](t.txn, tableShards, indexName, name)
}

// write stores rec, the new version of old (nil for an insert), stamping
// Created and Updated with the transaction's index. A record equal to old
// but for its versions is not written, so no-op commands change nothing.
func (t *tx) write(table string, old, rec record) error {
	rec.normalize()
	c := rec.common()
	if old != nil {
		o := old.common()
		*c.created, *c.updated = *o.created, *o.updated
		if reflect.DeepEqual(old, rec) {
			return nil
		}
	} else {
		*c.created = t.index
	}
	*c.updated = t.index
	return t.insert(table, rec)
}

// insert stores obj as it is.
func (t *tx) insert(table string, obj any) error {
	if err := t.txn.Insert(table, obj); err != nil {
		return fmt.Errorf("registry: insert into %s: %w", table, err)
	}
	t.changed = true
	return nil
}

// remove deletes the stored obj.
func (t *tx) remove(table string, obj any) error {
	if err := t.txn.Delete(table, obj); err != nil {
		return fmt.Errorf("registry: delete from %s: %w", table, err)
	}
	t.changed = true
	return nil
}

// removeReplicas deletes every replica matching index = arg.
func (t *tx) removeReplicas(index string, arg any) error {
	for _, r := range all[Replica](t.txn, tableReplicas, index, arg) {
		if err := t.remove(tableReplicas, r); err != nil {
			return err
		}
	}
	return nil
}

// finish records the index and counters and commits. It reports whether a
// record changed.
func (t *tx) finish() (bool, error) {
	t.meta.Key = metaKey
	t.meta.Index = t.index
	m := t.meta
	if err := t.txn.Insert(tableMeta, &m); err != nil {
		t.txn.Abort()
		return false, fmt.Errorf("registry: insert into %s: %w", tableMeta, err)
	}
	t.txn.Commit()
	return t.changed, nil
}
