package raftnet

import "fmt"

// minFree is the free space a host's disk keeps beyond a snapshot chunk
// it takes: a chunk that would leave less is refused (room). Dragonboat
// panics when it cannot write a chunk, so a snapshot larger than the
// room left on the receiver's disk crashed the host, and crashed it again
// at every try once it restarted; refused, it fails the snapshot, which
// the leader sends again later, and the host and its other replicas keep
// running. The margin leaves room for the log's own writes, whose failure
// Dragonboat panics on too.
const minFree = 64 << 20

// room returns an error when writing n bytes of a snapshot chunk would
// leave less than the transport's free-space margin on the disk of dir,
// Dragonboat's host dir, where it writes snapshots. A disk whose free
// space cannot be read has room.
func (t *Transport) room(n int) error {
	if t.dir == "" {
		return nil
	}
	free, ok := freeSpace(t.dir)
	if !ok || free >= uint64(n)+t.minFree {
		return nil
	}
	return fmt.Errorf("a chunk of %d bytes would leave less than %d MiB free in %s (%d MiB free)",
		n, t.minFree>>20, t.dir, free>>20)
}
