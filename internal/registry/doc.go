// Package registry is the replicated registry of hosts, shards and replicas
// that the prime shard's state machine stores.
//
// The registry changes only through Commands, applied in Raft log order by
// Store.Apply. A command is validated and applied in one memdb write
// transaction: it either changes the registry as a whole or is rejected with
// a reason in its Result, and no input can make Apply panic, since every
// replica would crash alike. Each applied entry records its Raft index, and
// records carry the index of the entry that created and last changed them.
//
// Readers take a State: a snapshot-isolated, read-only view that never
// blocks the writer. State.Save writes the JSON-lines snapshot format (the
// README's registry snapshots), and Store.Load reads it back, validating it as strictly as
// Apply validates commands. Both ignore the JSON fields they do not know,
// which a newer binary may write (see Command).
package registry
