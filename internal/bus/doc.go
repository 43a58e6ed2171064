// Package bus is the host-to-host message bus of a Zongzi cluster, built on
// gRPC: bootstrap (Info, Join), membership changes and forwarded shard
// requests. It knows nothing of the agent: a Server serves a Handler, and a
// Pool keeps one connection per remote address with its measured round trip.
//
// Errors cross the bus as gRPC status codes. The caller supplies the mapping
// both ways (Codes), so the root package's sentinel errors survive a hop.
package bus
