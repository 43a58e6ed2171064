package registry

import memdb "github.com/hashicorp/go-memdb"

// memdb tables. Records are stored as pointers and never modified once
// inserted: a change inserts a modified copy.
const (
	tableHosts    = "hosts"
	tableShards   = "shards"
	tableReplicas = "replicas"
	tableMeta     = "meta"
)

// memdb indexes. String keys are NUL-terminated by memdb, so host IDs and
// shard names containing NUL are rejected: they would make one key a prefix
// of another.
const (
	indexID    = "id"    // every table
	indexName  = "name"  // shards, unique; unnamed shards are not indexed
	indexHost  = "host"  // replicas by host ID
	indexShard = "shard" // replicas by shard ID
)

// metaKey is the key of the single row of the meta table.
const metaKey = "meta"

// meta holds the registry's counters. It lives in memdb beside the records
// so that a State sees counters and records from the same instant.
type meta struct {
	Key           string // always metaKey
	Index         uint64 // Raft index of the last applied entry
	LastReplicaID uint64
	LastShardID   uint64
	LastHostID    string // ID of the most recently inserted host
}

// schema returns the memdb schema of the registry.
func schema() *memdb.DBSchema {
	id := func(indexer memdb.Indexer) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: indexID, Unique: true, Indexer: indexer}
	}
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableHosts: {
			Name: tableHosts,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: id(&memdb.StringFieldIndex{Field: "ID"}),
			},
		},
		tableShards: {
			Name: tableShards,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: id(&memdb.UintFieldIndex{Field: "ID"}),
				indexName: {Name: indexName, Unique: true, AllowMissing: true,
					Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		tableReplicas: {
			Name: tableReplicas,
			Indexes: map[string]*memdb.IndexSchema{
				indexID:    id(&memdb.UintFieldIndex{Field: "ID"}),
				indexHost:  {Name: indexHost, Indexer: &memdb.StringFieldIndex{Field: "HostID"}},
				indexShard: {Name: indexShard, Indexer: &memdb.UintFieldIndex{Field: "ShardID"}},
			},
		},
		tableMeta: {
			Name: tableMeta,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: id(&memdb.StringFieldIndex{Field: "Key"}),
			},
		},
	}}
}

// first returns the first stored object of table whose index matches args
// (any row when args is empty), or nil. The object must not be modified.
// Lookup errors can only come from a mismatch between this package's calls
// and its schema.
func first[T any](txn *memdb.Txn, table, index string, args ...any) *T {
	obj, err := txn.First(table, index, args...)
	if err != nil || obj == nil {
		return nil
	}
	return obj.(*T)
}

// all returns the stored objects of table whose index matches args (all
// rows when args is empty), in index order. They must not be modified.
func all[T any](txn *memdb.Txn, table, index string, args ...any) []*T {
	it, err := txn.Get(table, index, args...)
	if err != nil {
		return nil
	}
	var out []*T
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*T))
	}
	return out
}

// readMeta returns the counters as seen by txn.
func readMeta(txn *memdb.Txn) meta {
	if m := first[meta](txn, tableMeta, indexID, metaKey); m != nil {
		return *m
	}
	return meta{Key: metaKey}
}
