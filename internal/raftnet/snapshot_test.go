package raftnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// snapshotBytes is the size of a test state machine's snapshot: more
// than two of Dragonboat's 2 MiB chunks.
const snapshotBytes = 5 << 20

// bigSM counts its entries, and makes snapshots of snapshotBytes more.
type bigSM struct{ n uint64 }

func (s *bigSM) Update(e sm.Entry) (sm.Result, error) { s.n++; return sm.Result{Value: s.n}, nil }
func (s *bigSM) Lookup(any) (any, error)              { return s.n, nil }
func (s *bigSM) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], s.n)
	if _, err := w.Write(b[:]); err != nil {
		return err
	}
	_, err := w.Write(bytes.Repeat([]byte{7}, snapshotBytes))
	return err
}
func (s *bigSM) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	s.n = binary.LittleEndian.Uint64(b[:])
	rest, err := io.ReadAll(r)
	if err == nil && len(rest) != snapshotBytes {
		err = fmt.Errorf("a snapshot of %d bytes, want %d", len(rest), snapshotBytes)
	}
	return err
}
func (s *bigSM) Close() error { return nil }

// diskSM is bigSM as an on-disk state machine, whose snapshots
// Dragonboat streams.
type diskSM struct{ n atomic.Uint64 }

func (s *diskSM) Open(<-chan struct{}) (uint64, error) { return 0, nil }
func (s *diskSM) Update(es []sm.Entry) ([]sm.Entry, error) {
	for i := range es {
		s.n.Add(1)
		es[i].Result = sm.Result{Value: s.n.Load()}
	}
	return es, nil
}
func (s *diskSM) Lookup(any) (any, error)       { return s.n.Load(), nil }
func (s *diskSM) Sync() error                   { return nil }
func (s *diskSM) PrepareSnapshot() (any, error) { return s.n.Load(), nil }
func (s *diskSM) SaveSnapshot(c any, w io.Writer, _ <-chan struct{}) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], c.(uint64))
	if _, err := w.Write(b[:]); err != nil {
		return err
	}
	_, err := w.Write(bytes.Repeat([]byte{7}, snapshotBytes))
	return err
}
func (s *diskSM) RecoverFromSnapshot(r io.Reader, _ <-chan struct{}) error {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	s.n.Store(binary.LittleEndian.Uint64(b[:]))
	rest, err := io.ReadAll(r)
	if err == nil && len(rest) != snapshotBytes {
		err = fmt.Errorf("a snapshot of %d bytes, want %d", len(rest), snapshotBytes)
	}
	return err
}
func (s *diskSM) Close() error { return nil }

// TestDragonboatSnapshotsPassTheChunkChecks sends real snapshots between
// two Dragonboat hosts, one sent whole (a regular state machine's) and one
// streamed (an on-disk state machine's), each of several chunks: a new
// replica of each shard catches up from them, so the receiver's checks
// of a chunk stream (chunkStream.next) take what Dragonboat sends.
func TestDragonboatSnapshotsPassTheChunkChecks(t *testing.T) {
	addrA, addrB := freeAddr(t), freeAddr(t)
	mk := func(addr string) *dragonboat.NodeHost {
		nh, err := dragonboat.NewNodeHost(config.NodeHostConfig{NodeHostDir: t.TempDir(), RTTMillisecond: 10, RaftAddress: addr, DeploymentID: 7,
			Expert: config.ExpertConfig{TransportFactory: Factory{}, LogDB: config.GetTinyMemLogDBConfig()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nh.Close)
		return nh
	}
	a, b := mk(addrA), mk(addrB)
	cfg := func(shard, rep uint64) config.Config {
		return config.Config{ShardID: shard, ReplicaID: rep, ElectionRTT: 10, HeartbeatRTT: 1, SnapshotEntries: 5, CompactionOverhead: 1}
	}
	if err := a.StartReplica(map[uint64]string{1: addrA}, false, func(uint64, uint64) sm.IStateMachine { return &bigSM{} }, cfg(1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := a.StartOnDiskReplica(map[uint64]string{1: addrA}, false, func(uint64, uint64) sm.IOnDiskStateMachine { return &diskSM{} }, cfg(2, 1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, shard := range []uint64{1, 2} {
		for i := 0; i < 30; {
			pctx, pc := context.WithTimeout(ctx, time.Second)
			_, err := a.SyncPropose(pctx, a.GetNoOPSession(shard), []byte("x"))
			pc()
			if err == nil {
				i++
			} else if ctx.Err() != nil {
				t.Fatal(err)
			}
		}
		for {
			pctx, pc := context.WithTimeout(ctx, 2*time.Second)
			err := a.SyncRequestAddReplica(pctx, shard, 2, addrB, 0)
			pc()
			if err == nil {
				break
			} else if ctx.Err() != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.StartReplica(nil, true, func(uint64, uint64) sm.IStateMachine { return &bigSM{} }, cfg(1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := b.StartOnDiskReplica(nil, true, func(uint64, uint64) sm.IOnDiskStateMachine { return &diskSM{} }, cfg(2, 2)); err != nil {
		t.Fatal(err)
	}
	for _, shard := range []uint64{1, 2} {
		for {
			v, err := b.StaleRead(shard, nil)
			if err == nil && v.(uint64) >= 30 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("shard %d: the new replica read %v, %v; want 30 entries applied", shard, v, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
