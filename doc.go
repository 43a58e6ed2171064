// Package zongzi turns Dragonboat v4 (multi-group Raft) into a
// self-coordinating cluster.
//
// Every process runs one Agent, which runs one Dragonboat NodeHost. The
// agents share the prime shard (shard 0): a replicated registry of hosts,
// shards and replicas. Peers (the hosts named at start) are its voting
// members; every other host holds a non-voting replica, so each host routes
// requests from a local, eventually consistent copy of the registry.
//
// Guest shards run user state machines registered by type URI with
// StateMachineRegister. A shard declares where its replicas go with tags
// (members, non-voting groups, vary, cover; see WithPlacementMembers), the
// shard controller on the prime shard's leader writes the replicas into the
// registry, and the host controller of each agent starts and stops its
// local replicas to match.
//
// A ShardClient proposes commands and reads from a shard: through the local
// replica when this host has one, otherwise forwarded over the host-to-host
// message bus to the nearest host that has one. Reads are linearizable
// (ReadIndex) unless stale; a leader read goes to the shard's leader.
package zongzi
