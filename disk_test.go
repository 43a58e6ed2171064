package zongzi_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// testDiskType is the shard type of the on-disk test state machine.
const testDiskType = "zongzi://github.com/zongzi-kv/zongzi/test/disk"

// diskSM is an on-disk test state machine: it counts commands and keeps the
// count and the last applied index in a file, written on Sync.
type diskSM struct {
	path         string
	mu           sync.RWMutex
	count, index uint64
}

func newDiskSM(dir string) zongzi.StateMachinePersistentFactory {
	return func(shardID, replicaID uint64) zongzi.StateMachinePersistent {
		return &diskSM{path: filepath.Join(dir, fmt.Sprintf("disk-%d-%d", shardID, replicaID))}
	}
}

func (s *diskSM) Open(<-chan struct{}) (uint64, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil || len(b) != 16 {
		return 0, fmt.Errorf("open %s: %v (%d bytes)", s.path, err, len(b))
	}
	s.count, s.index = binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
	return s.index, nil
}

func (s *diskSM) Update(entries []zongzi.Entry) []zongzi.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range entries {
		s.count++
		s.index = entries[i].Index
		entries[i].Result = zongzi.Result{Value: s.count}
	}
	return entries
}

func (s *diskSM) Query(context.Context, []byte) *zongzi.Result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &zongzi.Result{Value: s.count}
}

// Watch sends the current count once, then waits for ctx.
func (s *diskSM) Watch(ctx context.Context, q []byte, results chan<- *zongzi.Result) {
	select {
	case results <- s.Query(ctx, q):
	case <-ctx.Done():
	}
	<-ctx.Done()
}

func (s *diskSM) encode() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, s.count), s.index)
}

func (s *diskSM) Sync() error {
	b := s.encode()
	if err := os.WriteFile(s.path+".tmp", b, 0o644); err != nil {
		return err
	}
	return os.Rename(s.path+".tmp", s.path)
}

func (s *diskSM) PrepareSnapshot() (any, error) { return s.encode(), nil }

func (s *diskSM) SaveSnapshot(c any, w io.Writer, _ <-chan struct{}) error {
	_, err := w.Write(c.([]byte))
	return err
}

func (s *diskSM) RecoverFromSnapshot(r io.Reader, _ <-chan struct{}) error {
	b, err := io.ReadAll(r)
	if err != nil || len(b) != 16 {
		return fmt.Errorf("bad snapshot: %v", err)
	}
	s.mu.Lock()
	s.count, s.index = binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
	s.mu.Unlock()
	return s.Sync()
}

func (s *diskSM) Close() error { return nil }

// TestPersistentStateMachine: an on-disk guest shard applies, survives a
// restart of a host, and its Watch is forwarded from a host without a replica.
func TestPersistentStateMachine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a1 := c.nodes[0].agent
	s := c.createActive(ctx, a1, testDiskType, "disk")
	for i := range 5 {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		n, _, err := a1.Client(s.ID).Apply(actx, []byte("x"))
		acancel()
		if err != nil || n != uint64(i+1) {
			t.Fatalf("apply %d: count %d, %v", i, n, err)
		}
	}

	n3 := c.nodes[2]
	n3.agent.Stop()
	c.startAll(ctx, n3)
	waitFor(t, settle, "restarted disk replica to hold 5 commands", func() bool {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		defer rcancel()
		n, _, err := n3.agent.Client(s.ID).Read(rctx, nil, true)
		return err == nil && n == 5
	})

	// A non-voting host with no replica of the shard watches it remotely.
	// The watch starts after a read barrier, which a shard between leaders
	// refuses (the restart above, or a missed heartbeat on a busy machine,
	// can start an election): Watch then ends with ErrShardNotReady and,
	// unlike the other calls, is not tried again, so the test tries again.
	n4 := c.addNode("a")
	c.startAll(ctx, n4)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	results := make(chan *zongzi.Result, 1)
	done := make(chan error, 1)
	watch := func() { done <- n4.agent.Client(s.ID).Watch(wctx, nil, results, false) }
	go watch()
	for {
		select {
		case r := <-results:
			if r.Value != 5 {
				t.Fatalf("watch: count %d, want 5", r.Value)
			}
			wcancel()
			<-done
			return
		case err := <-done:
			if !errors.Is(err, zongzi.ErrShardNotReady) || wctx.Err() != nil {
				t.Fatalf("watch ended before a result: %v", err)
			}
			t.Logf("watch ended while the shard had no leader, again: %v", err)
			time.Sleep(20 * time.Millisecond)
			go watch()
		case <-wctx.Done():
			t.Fatalf("no watch result: %v", <-done)
		}
	}
}
