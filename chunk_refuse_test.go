package zongzi_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// TestSnapshotForAReplicaNotHereIsRefused sends a host's raft port the first
// chunk of a snapshot for a replica that never started on it. Dragonboat's
// chunk handler panics on one, which ended the host's process; the host
// refuses it and goes on serving.
func TestSnapshotForAReplicaNotHereIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, a := startOne(ctx, t)
	defer c.stop()
	nhc := a.NodeHost().NodeHostConfig()
	chunk := pb.Chunk{
		ShardID: 999, ReplicaID: 1, From: 2, Index: 100, Term: 2, DeploymentId: nhc.GetDeploymentID(),
		BinVer: raftio.TransportBinVersion, ChunkCount: 2, FileChunkCount: 2, Filepath: "snapshot.gbsnap", Data: []byte("data"),
	}
	p, err := chunk.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", c.nodes[0].raft)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A raftnet frame: kind (2, a chunk), length, CRC-32C, payload.
	frame := []byte{2, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(p)))
	binary.BigEndian.PutUint32(frame[5:9], crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)))
	if _, err := conn.Write(append(frame, p...)); err != nil {
		t.Fatal(err)
	}
	// The host closes the connection once it refused the chunk.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the chunk: %v, want the host to close the connection", err)
	}
	// And still serves.
	if _, _, err := a.ShardCreate(ctx, testType); err != nil {
		t.Fatal(err)
	}
}
