package raftnet

import (
	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/lni/dragonboat/v4/raftpb"
)

// Field numbers of Dragonboat's raftpb that its decoder counts ahead.
const (
	batchRequests  protowire.Number = 1  // MessageBatch.Requests
	messageEntries protowire.Number = 11 // Message.Entries
)

// decodeBatch decodes a batch's payload. Dragonboat's decoder trusts
// what it reads: before it decodes the first of a batch's messages, and
// the first of a message's entries, it counts the rest without bounds
// checks, so a malformed payload of a dozen bytes makes it read out of
// range (a panic) or loop forever. The two levels it counts are checked
// first (checkBatch), a panic is taken as a bad payload, and so is a batch
// with a message Dragonboat would panic on (routable).
func decodeBatch(p []byte) (b pb.MessageBatch, err error) {
	if !checkBatch(p) {
		return b, errBadFrame
	}
	defer recoverBad(&err)
	if err = b.Unmarshal(p); err == nil && !routable(&b) {
		err = errBadFrame
	}
	return b, err
}

// routable says whether every message of b could have come from another
// host. Dragonboat panics on a message to replica 0, on a type it does
// not know, and on one of its local types (a tick, an election, a
// snapshot to install, ...) that comes in a batch, which no host sends.
// A well-formed message forged by a peer can still do harm: raftnet
// trusts the network, or with TLS the peers it verifies.
func routable(b *pb.MessageBatch) bool {
	for i := range b.Requests {
		switch t := b.Requests[i].Type; {
		case b.Requests[i].To == 0, t < pb.LocalTick, t > pb.LogQuery:
			return false
		case t == pb.LocalTick, t == pb.Election, t == pb.LeaderHeartbeat, t == pb.CheckQuorum,
			t == pb.BatchedReadIndex, t == pb.Unreachable, t == pb.SnapshotStatus, t == pb.InstallSnapshot:
			return false
		}
	}
	return true
}

// decodeChunk decodes a chunk's payload; a panic of Dragonboat's decoder
// is taken as a bad payload.
func decodeChunk(p []byte) (ch pb.Chunk, err error) {
	defer recoverBad(&err)
	err = ch.Unmarshal(p)
	return ch, err
}

// recoverBad, deferred, turns a panic into errBadFrame.
func recoverBad(err *error) {
	if recover() != nil {
		*err = errBadFrame
	}
}

// checkBatch says whether Dragonboat's decoder may count ahead in p, a
// MessageBatch: its fields are well-formed, its messages (field 1) are
// length-delimited, and so are their fields, with entries (field 11)
// length-delimited. It walks fields, not the entries' bytes.
func checkBatch(p []byte) bool {
	return checkFields(p, batchRequests, func(m []byte) bool {
		return checkFields(m, messageEntries, nil)
	})
}

// checkFields says whether p is a well-formed sequence of protobuf fields
// in which every field numbered counted is length-delimited, with a value
// that inner, when not nil, accepts.
func checkFields(p []byte, counted protowire.Number, inner func([]byte) bool) bool {
	for len(p) > 0 {
		num, typ, n := protowire.ConsumeTag(p)
		if n < 0 || num == counted && typ != protowire.BytesType {
			return false
		}
		p = p[n:]
		if num == counted && inner != nil {
			v, m := protowire.ConsumeBytes(p)
			if m < 0 || !inner(v) {
				return false
			}
			p = p[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, p)
		if m < 0 {
			return false
		}
		p = p[m:]
	}
	return true
}
