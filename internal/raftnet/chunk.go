package raftnet

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"sync"

	pb "github.com/lni/dragonboat/v4/raftpb"
)

// snapshotHeaderSize is the size of the header that starts a snapshot
// file, and so the data of its first chunk, when Dragonboat checks it.
const snapshotHeaderSize = 1024

// maxFileName bounds the name of a snapshot's file: a longer one fails to
// be created on most file systems, which Dragonboat panics on.
const maxFileName = 255

// chunkKey names a snapshot in transit to a replica, as Dragonboat's chunk
// handler does: chunks of one key go to one temporary directory.
type chunkKey struct{ shard, replica, index uint64 }

// chunkStream is what one connection sent of its snapshot so far.
// Dragonboat sends a snapshot on a connection of its own, every chunk in
// order from the first, each file's chunks in order from its first.
// Dragonboat's chunk handler trusts that: it panics on a chunk that
// appends to a file its stream did not create, or that names no file it
// can create. A connection's chunks must follow each other so (next), and
// only the connection that sent a snapshot's latest first chunk may send
// the rest of it: Dragonboat drops the files of a snapshot whose first
// chunk comes again, and would panic on the earlier stream's next chunk.
//
// A stream may not send more than its first chunk declares: Dragonboat's
// chunk handler writes whatever comes until a chunk says it is the last.
// A snapshot sent whole declares its chunk count in every chunk, and each
// file's size in each of its chunks; a streamed one (an on-disk state
// machine's) declares no count (0) until its last chunk
// (pb.LastChunkCount), and no size, so only its end is checked.
type chunkStream struct {
	owner  *chunkOwner // of key, once the first chunk came
	key    chunkKey
	from   uint64
	count  uint64 // ChunkCount of the first chunk: 0 when streamed
	chunk  uint64 // ChunkId of the last chunk
	file   string // name of the last chunk's file
	fpart  uint64 // FileChunkId of the last chunk
	fsize  uint64 // FileSize of the last chunk's file, as its first chunk declared
	fbytes uint64 // bytes of the last chunk's file so far
	done   bool   // the last chunk came
}

// chunkOwner says which connection's chunks of a snapshot Dragonboat
// takes. Its mutex is held while one of them is handed over, so a new
// stream cannot take the snapshot over between the check and the handing.
type chunkOwner struct {
	mu     sync.Mutex
	stream *chunkStream // guarded by mu
	refs   int          // streams of the key; guarded by Transport.mu
}

// next says whether ch may follow the chunks the connection sent so far,
// and records it if so.
func (s *chunkStream) next(ch *pb.Chunk) bool {
	name, ok := fileName(ch.Filepath)
	if !ok || s.done {
		return false
	}
	key := chunkKey{ch.ShardID, ch.ReplicaID, ch.Index}
	if s.owner == nil {
		if ch.ChunkId != 0 || ch.FileChunkId != 0 {
			return false
		}
		s.count = ch.ChunkCount
	} else if key != s.key || ch.From != s.from || ch.ChunkId != s.chunk+1 ||
		ch.FileChunkId != 0 && (ch.FileChunkId != s.fpart+1 || name != s.file) {
		return false
	}
	fbytes := uint64(len(ch.Data))
	if ch.FileChunkId != 0 {
		fbytes += s.fbytes
	}
	if s.count == 0 {
		if ch.ChunkCount != 0 && ch.ChunkCount != pb.LastChunkCount {
			return false
		}
	} else if ch.ChunkCount != s.count || ch.ChunkId >= s.count ||
		ch.FileChunkId != 0 && ch.FileSize != s.fsize || fbytes > ch.FileSize {
		return false
	}
	s.key, s.from, s.chunk, s.file, s.fpart = key, ch.From, ch.ChunkId, name, ch.FileChunkId
	s.fsize, s.fbytes, s.done = ch.FileSize, fbytes, ch.IsLastChunk()
	return true
}

// fileName returns the name Dragonboat gives the file of a chunk with path
// p, and whether a file of that name can be made in a directory.
func fileName(p string) (string, bool) {
	name := filepath.Base(p)
	return name, name != "." && name != ".." && name != string(filepath.Separator) &&
		len(name) <= maxFileName && !strings.ContainsRune(name, 0)
}

// snapshotHeaderOK says whether Dragonboat's check of the header that
// starts data, a snapshot's first chunk, would return rather than panic:
// it panics on data shorter than the header, on a header's length that
// runs past the data, on a header that does not decode, and on one of
// version 1 with a checksum type it does not know.
func snapshotHeaderOK(data []byte) (ok bool) {
	if len(data) < snapshotHeaderSize {
		return false
	}
	n := binary.LittleEndian.Uint64(data)
	if n > uint64(len(data))-12 { // the header, then its 4-byte checksum
		return false
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	var h pb.SnapshotHeader
	if h.Unmarshal(data[8:8+n]) != nil {
		return false
	}
	return h.Version != 1 || h.ChecksumType == pb.CRC32IEEE
}

// handChunk hands ch, the next chunk of stream s, to Dragonboat, and says
// whether the connection may go on: not if ch may not follow what s sent,
// or is the first chunk of a snapshot for a replica that Hosts denies or
// with a header Dragonboat would panic on (snapshotHeaderOK), or
// another stream took its snapshot over, or Dragonboat refused it.
func (t *Transport) handChunk(s *chunkStream, ch pb.Chunk) bool {
	if !s.next(&ch) {
		return false
	}
	if s.owner == nil {
		if t.hosts != nil && !t.hosts(ch.ShardID, ch.ReplicaID) {
			return false
		}
		t.mu.Lock()
		o := t.owners[s.key]
		if o == nil {
			o = &chunkOwner{}
			t.owners[s.key] = o
		}
		o.refs++
		t.mu.Unlock()
		s.owner = o
	}
	if ch.ChunkId == 0 && !ch.HasFileInfo && !snapshotHeaderOK(ch.Data) {
		return false
	}
	o := s.owner
	o.mu.Lock()
	defer o.mu.Unlock()
	if ch.ChunkId == 0 {
		o.stream = s
	} else if o.stream != s {
		return false
	}
	return t.onChunk(ch)
}

// endChunks forgets stream s, whose connection ended.
func (t *Transport) endChunks(s *chunkStream) {
	if s.owner == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.owner.refs--; s.owner.refs == 0 {
		delete(t.owners, s.key)
	}
}
