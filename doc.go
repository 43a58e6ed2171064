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
//
// To start, give every process the same cluster name and peer list, register
// the state machines it runs, start it, then create or find a shard and use
// a client of it:
//
//	agent, err := zongzi.NewAgent("mycluster", peerAPIAddrs,
//		zongzi.WithDirRaft(dir), zongzi.WithAddrApi(apiAddr), zongzi.WithAddrRaft(raftAddr))
//	// handle err
//	err = agent.StateMachineRegister("zongzi://example.com/counter", newCounter)
//	// handle err
//	err = agent.Start(ctx) // returns once the agent has formed, joined or rejoined the cluster
//	// handle err
//	defer agent.Stop()
//	shard, _, err := agent.ShardCreate(ctx, "zongzi://example.com/counter",
//		zongzi.WithName("counter-1"), zongzi.WithPlacementMembers(3))
//	// handle err
//	value, data, err := agent.Client(shard.ID).Apply(ctxWithDeadline, cmd)
//
// Errors wrap this package's sentinel errors (ErrInvalidConfig, ErrShardNotReady,
// ErrOutcomeUnknown, ...), to test with errors.Is.
package zongzi
