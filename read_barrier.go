package zongzi

import (
	"context"
	"errors"
	"sync"

	"github.com/lni/dragonboat/v4"
)

// readBarrier coalesces the linearizable reads of one local replica. A
// read joins the next round; a round is one ReadIndex, started only when
// the previous one has finished, so every read waits for a ReadIndex that
// began after it arrived (which is what makes the read linearizable), and
// one ReadIndex serves all the reads that arrived during the previous one.
// Under load this keeps one heartbeat round per shard in flight instead of
// one per small batch. After its round, a read queries the replica's
// state directly: it has applied at least up to the read index.
type readBarrier struct {
	a       *Agent // whose host the rounds go to (Agent.hostCall)
	mu      sync.Mutex
	running bool
	next    *readRound // the round new reads join; nil when none is waiting
}

// readRound is one ReadIndex and the reads waiting for it.
type readRound struct {
	done chan struct{}
	err  error
}

// barrier returns the read barrier of a shard's local replica.
func (a *Agent) barrier(shardID uint64) *readBarrier {
	if b, ok := a.barriers.Load(shardID); ok {
		return b
	}
	var b *readBarrier
	a.barriers.Update(func(m map[uint64]*readBarrier) {
		if b = m[shardID]; b == nil {
			b = &readBarrier{a: a}
			m[shardID] = b
		}
	})
	return b
}

// wait returns once a ReadIndex that started after the call completed on
// the local replica, or with the reason none could before ctx is done.
func (b *readBarrier) wait(ctx context.Context, nh *dragonboat.NodeHost, shardID uint64) error {
	for {
		b.mu.Lock()
		r := b.next
		if r == nil {
			r = &readRound{done: make(chan struct{})}
			b.next = r
		}
		if !b.running {
			b.running = true
			go b.run(nh, shardID)
		}
		b.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		// A round that timed out lost its ReadIndex (e.g. with a leader
		// that just changed): join the next one while time is left.
		if !errors.Is(r.err, ErrTimeout) || ctx.Err() != nil {
			return r.err
		}
	}
}

// run runs rounds while reads are waiting for one.
func (b *readBarrier) run(nh *dragonboat.NodeHost, shardID uint64) {
	for {
		b.mu.Lock()
		r := b.next
		if r == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.next = nil
		b.mu.Unlock()
		r.err = b.readIndex(nh, shardID)
		close(r.done)
	}
}

// readIndex makes one ReadIndex attempt on the local replica.
func (b *readBarrier) readIndex(nh *dragonboat.NodeHost, shardID uint64) error {
	var rs *dragonboat.RequestState
	err := b.a.hostCall(nh, func() (err error) {
		rs, err = nh.ReadIndex(shardID, readAttempt)
		return err
	})
	if err != nil {
		return mapError(err)
	}
	r := <-rs.AppliedC()
	rs.Release()
	if r.Completed() {
		return nil
	}
	return resultError(r)
}
