package raftnet

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// hostEnv, set, makes TestNodeHostProcess run a Dragonboat host with this
// module in the directory it names; minFreeEnv, set, is the module's
// free-space margin there, in bytes.
const (
	hostEnv    = "RAFTNET_TEST_HOST_DIR"
	minFreeEnv = "RAFTNET_TEST_MIN_FREE"
)

// TestNodeHostProcess is the host startHostProcess runs: it prints the raft
// address it listens on and serves until its stdin closes.
func TestNodeHostProcess(t *testing.T) {
	dir := os.Getenv(hostEnv)
	if dir == "" {
		t.Skip("run by startHostProcess")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	var host atomic.Pointer[dragonboat.NodeHost]
	hosts := func(shardID, replicaID uint64) bool {
		nh := host.Load()
		return nh != nil && nh.HasNodeInfo(shardID, replicaID)
	}
	f := Factory{Hosts: hosts}
	if s := os.Getenv(minFreeEnv); s != "" {
		if f.minFree, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	nh, err := dragonboat.NewNodeHost(config.NodeHostConfig{
		NodeHostDir: dir, RTTMillisecond: 10, RaftAddress: addr, DeploymentID: 7,
		Expert: config.ExpertConfig{TransportFactory: f},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	host.Store(nh)
	// Shard 5's replica 1 runs here: chunks for it reach Dragonboat's
	// handler past its checks of the replica.
	sm := func(uint64, uint64) sm.IStateMachine { return &nopSM{} }
	if err := nh.StartReplica(map[uint64]string{1: addr}, false, sm, config.Config{ShardID: 5, ReplicaID: 1, ElectionRTT: 10, HeartbeatRTT: 1}); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("listening %s\n", addr)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// nopSM is a state machine that keeps nothing.
type nopSM struct{}

func (*nopSM) Update(e sm.Entry) (sm.Result, error)                                      { return sm.Result{}, nil }
func (*nopSM) Lookup(any) (any, error)                                                   { return nil, nil }
func (*nopSM) SaveSnapshot(io.Writer, sm.ISnapshotFileCollection, <-chan struct{}) error { return nil }
func (*nopSM) RecoverFromSnapshot(io.Reader, []sm.SnapshotFile, <-chan struct{}) error   { return nil }
func (*nopSM) Close() error                                                              { return nil }

// startHostProcess runs a Dragonboat host with this module in a process of
// its own, so that a panic of the host ends that process, not the test's.
// It returns the host's raft address, and stop, which ends the process and
// says whether it ended well: not if the host panicked.
func startHostProcess(t *testing.T) (addr string, stop func() error) {
	t.Helper()
	return startHostProcessIn(t, t.TempDir(), 0)
}

// startHostProcessIn is startHostProcess with the host dir in dir, and
// minFree, unless 0, as the module's free-space margin.
func startHostProcessIn(t *testing.T, dir string, minFree uint64) (addr string, stop func() error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNodeHostProcess$", "-test.v")
	cmd.Env = append(os.Environ(), hostEnv+"="+dir)
	if minFree > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", minFreeEnv, minFree))
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var waitErr error
	stop = func() error {
		once.Do(func() {
			_ = stdin.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case waitErr = <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				waitErr = fmt.Errorf("the host process did not end in 30 s: %v", <-done)
			}
		})
		return waitErr
	}
	t.Cleanup(func() { _ = stop() })
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return addr, stop
		}
	}
	t.Fatal("the host process ended before it listened")
	return "", nil
}

// TestChunksDragonboatPanicsOnAreRefused sends a real host snapshot chunks
// of the host's deployment that Dragonboat's chunk handler would panic on,
// each on a connection of its own: the host refuses them and lives.
func TestChunksDragonboatPanicsOnAreRefused(t *testing.T) {
	addr, stop := startHostProcess(t)
	chunk := func(id, fileID uint64, file string) pb.Chunk {
		return pb.Chunk{
			ShardID: 5, ReplicaID: 1, From: 2, Index: 100, Term: 2, DeploymentId: 7, BinVer: raftio.TransportBinVersion,
			ChunkId: id, ChunkCount: 3, FileChunkId: fileID, FileChunkCount: 3, FileSize: 12, HasFileInfo: true, Filepath: file,
			Data: []byte("data"),
		}
	}
	other := chunk(0, 0, "snapshot.gbsnap")
	other.ShardID = 6
	short := chunk(0, 0, "snapshot.gbsnap")
	short.HasFileInfo = false // Dragonboat checks the snapshot's header
	v1 := short
	v1.Data = make([]byte, snapshotHeaderSize+8)
	header, err := (&pb.SnapshotHeader{Version: 1, ChecksumType: 7}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(v1.Data, uint64(len(header)))
	copy(v1.Data[8:], header)
	long := short
	long.Data = make([]byte, snapshotHeaderSize)
	binary.LittleEndian.PutUint64(long.Data, snapshotHeaderSize-8)
	streams := []struct {
		name   string
		chunks []pb.Chunk
	}{
		{"a replica that never started here", []pb.Chunk{other}},
		{"the first chunk is a file's second", []pb.Chunk{chunk(0, 1, "snapshot.gbsnap")}},
		{"a file with no name", []pb.Chunk{chunk(0, 0, "")}},
		{"a file named ..", []pb.Chunk{chunk(0, 0, "/x/..")}},
		{"a file's second chunk names another file", []pb.Chunk{chunk(0, 0, "a"), chunk(1, 1, "b")}},
		{"a stream that starts past its first chunk", []pb.Chunk{chunk(1, 1, "a")}},
		{"a first chunk shorter than a snapshot's header", []pb.Chunk{short}},
		{"a header of version 1 with an unknown checksum", []pb.Chunk{v1}},
		{"a header longer than the chunk", []pb.Chunk{long}},
	}
	sender := Factory{}.Create(config.NodeHostConfig{RaftAddress: "127.0.0.1:1"}, nil, nil).(*Transport)
	connect := func(after string) raftio.ISnapshotConnection {
		t.Helper()
		sc, err := sender.GetSnapshotConnection(context.Background(), addr)
		if err != nil {
			t.Fatalf("after %s, the host is gone: %v (%v)", after, err, stop())
		}
		return sc
	}
	last := "nothing"
	for _, s := range streams {
		sc := connect(last)
		for _, ch := range s.chunks {
			_ = sc.SendChunk(ch) // the host may close the connection at any chunk
		}
		// Close waits until the host answered frameEnd or closed the
		// connection: it handled every chunk by then.
		sc.Close()
		last = s.name
	}
	// A stream that another took over: the host must not hand its next
	// chunk over, which appends to a file of a directory Dragonboat
	// replaced with the other stream's.
	first := connect(last)
	if err := first.SendChunk(chunk(0, 0, "a")); err != nil {
		t.Fatal(err)
	}
	second := connect("the first chunk of a stream")
	_ = second.SendChunk(chunk(0, 0, "b"))
	second.Close()
	_ = first.SendChunk(chunk(1, 1, "a"))
	first.Close()
	if err := stop(); err != nil {
		t.Fatalf("the host process: %v, want it to end well", err)
	}
}

// streamAccepted sends chunks to addr on a snapshot connection of their
// own, then frameEnd, and says whether the receiver answered it, having
// handed every chunk over, rather than closing the connection.
func streamAccepted(t *testing.T, sender *Transport, addr string, chunks []pb.Chunk) bool {
	t.Helper()
	sc, err := sender.GetSnapshotConnection(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &sc.(*SnapshotConnection).Connection
	defer c.Close()
	for _, ch := range chunks {
		if sc.SendChunk(ch) != nil {
			return false
		}
	}
	c.grow(0)
	if c.send(frameEnd, 0) != nil {
		return false
	}
	var ack [1]byte
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.c.Read(ack[:])
	return err == nil
}

// TestChunkStreamsSendNoMoreThanTheyDeclare sends a real host snapshot
// streams to a replica that runs on it, each on a connection of its own:
// one that keeps to what its first chunk declares is taken; one that
// sends more chunks than its count, more bytes than a file's size, or a
// count once streamed without one is refused. Dragonboat's chunk handler
// takes such chunks and writes them, without end.
func TestChunkStreamsSendNoMoreThanTheyDeclare(t *testing.T) {
	addr, stop := startHostProcess(t)
	// chunk is the id-th chunk of a stream of count chunks, each of one
	// file of size bytes, made of 4-byte chunks.
	chunk := func(id, count, size uint64) pb.Chunk {
		return pb.Chunk{
			ShardID: 5, ReplicaID: 1, From: 2, Index: 100, Term: 2, DeploymentId: 7, BinVer: raftio.TransportBinVersion,
			ChunkId: id, ChunkCount: count, FileChunkId: id, FileChunkCount: count, FileSize: size, HasFileInfo: true,
			Filepath: "snapshot.gbsnap", Data: []byte("data"), ChunkSize: 4,
		}
	}
	sender := Factory{}.Create(config.NodeHostConfig{RaftAddress: "127.0.0.1:1"}, nil, nil).(*Transport)
	for _, s := range []struct {
		name   string
		chunks []pb.Chunk
		taken  bool
	}{
		{"within what it declares", []pb.Chunk{chunk(0, 10, 40), chunk(1, 10, 40), chunk(2, 10, 40)}, true},
		{"a count that grows", []pb.Chunk{chunk(0, 3, 40), chunk(1, 100, 40), chunk(2, 100, 40), chunk(3, 100, 40)}, false},
		{"more bytes than the file's size", []pb.Chunk{chunk(0, 10, 8), chunk(1, 10, 8), chunk(2, 10, 8)}, false},
		{"a file's size that grows", []pb.Chunk{chunk(0, 10, 8), chunk(1, 10, 8), chunk(2, 10, 40)}, false},
		{"streamed, then a count", []pb.Chunk{chunk(0, 0, 0), chunk(1, 5, 0), chunk(2, 5, 0), chunk(3, 5, 0)}, false},
		{"streamed", []pb.Chunk{chunk(0, 0, 0), chunk(1, 0, 0), chunk(2, 0, 0)}, true},
	} {
		if got := streamAccepted(t, sender, addr, s.chunks); got != s.taken {
			t.Errorf("a stream %s: taken %v, want %v", s.name, got, s.taken)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("the host process: %v, want it to end well", err)
	}
}

// TestChunksBeyondTheDiskAreRefused sends a real host, whose host dir is
// on a file system of 48 MiB, a snapshot of 64 MiB for a replica that
// runs on it: the host refuses the chunk that would leave less than its
// margin free, and lives. Dragonboat's chunk handler panics when it cannot
// write a chunk, and a host whose disk the snapshot filled crashed, at
// every try. It mounts a tmpfs, which takes root.
func TestChunksBeyondTheDiskAreRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a tmpfs, which takes root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() }) // before TempDir's cleanup
	addr, stop := startHostProcessIn(t, dir, 8<<20)
	const size, count = 1 << 20, 64
	var chunks []pb.Chunk
	for id := range uint64(count) {
		chunks = append(chunks, pb.Chunk{
			ShardID: 5, ReplicaID: 1, From: 2, Index: 100, Term: 2, DeploymentId: 7, BinVer: raftio.TransportBinVersion,
			ChunkId: id, ChunkCount: count, FileChunkId: id, FileChunkCount: count, FileSize: size * count,
			HasFileInfo: true, Filepath: "snapshot.gbsnap", Data: make([]byte, size), ChunkSize: size,
		})
	}
	sender := Factory{}.Create(config.NodeHostConfig{RaftAddress: "127.0.0.1:1"}, nil, nil).(*Transport)
	if streamAccepted(t, sender, addr, chunks) {
		t.Error("a snapshot larger than the host's disk was taken")
	}
	if err := stop(); err != nil {
		t.Fatalf("the host process: %v, want it to end well", err)
	}
}
