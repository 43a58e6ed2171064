// Package bus is the host-to-host message bus of a Zongzi cluster, built on
// gRPC: bootstrap (Info, Join), membership changes and forwarded shard
// requests. It knows nothing of the agent: a Server serves a Handler, and a
// Pool keeps one connection per remote address with its measured round
// trip, until told to let go of it (Retain).
//
// Forwarded reads to one address coalesce: reads made while a batch to it
// is outstanding travel together in the next batch, whose results stream
// back as they complete (read_batch.go explains why this keeps reads
// linearizable). Batches go on one long-lived ReadStream per address
// (read_stream.go). Hosts that lack ReadStream get a ReadBatch call per
// batch, and hosts that lack that too a unary Read per read.
//
// Errors cross the bus as gRPC status codes. The caller supplies the mapping
// both ways (Codes), so the root package's sentinel errors survive a hop.
// Every error a Server answers carries an ErrorInfo detail; a forwarded
// write whose call failed without one (the connection broke, the host
// stopped) has an unknown outcome, whatever the code (Pool.Apply).
package bus
