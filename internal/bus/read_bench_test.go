package bus

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
)

// BenchmarkPoolRead compares forwarded reads that coalesce (with one or
// two calls outstanding per address) with one unary Read per read, from 64
// concurrent callers to one in-process host. Its reads take no time
// ("instant": what is measured is the bus's CPU per read), or their
// linearizable reads wait for rounds of 300µs run one after another as the
// read barrier runs ReadIndex rounds ("rounds=300us": there the serving
// host's latency, not CPU, is the limit, and a read that waits for an
// outstanding call to return loses time). A batch's reads of one shard
// after its first are stale on the serving host, which reads them after
// the first one's barrier, so they wait for no round.
func BenchmarkPoolRead(b *testing.B) {
	for _, round := range []time.Duration{0, 300 * time.Microsecond} {
		name := "instant"
		if round > 0 {
			name = fmt.Sprintf("rounds=%dus", round.Microseconds())
		}
		b.Run(name, func(b *testing.B) { benchPoolRead(b, round) })
	}
}

func benchPoolRead(b *testing.B, round time.Duration) {
	h := newFakeHandler()
	h.round = round
	var count batchCounter
	addr, _, p := startBus(b, h, count.options()...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	query := []byte("key-0000000001")
	pe, err := p.get(addr)
	if err != nil {
		b.Fatal(err)
	}
	bench := func(read func() error) func(b *testing.B) {
		return func(b *testing.B) {
			calls0 := count.batches.Load() + count.unary.Load()
			rounds0 := h.rounds.count.Load()
			b.SetParallelism(64 / runtime.GOMAXPROCS(0))
			b.RunParallel(func(tpb *testing.PB) {
				for tpb.Next() {
					if err := read(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			calls := count.batches.Load() + count.unary.Load() - calls0
			b.ReportMetric(float64(b.N)/float64(max(calls, 1)), "reads/call")
			if round > 0 {
				b.ReportMetric(float64(b.N)/float64(max(h.rounds.count.Load()-rounds0, 1)), "reads/round")
			}
		}
	}
	b.Run("unary", bench(func() error {
		_, _, err := p.readUnary(ctx, addr, pe, &pb.ReadRequest{ShardId: 1, Query: query, Leader: true})
		return err
	}))
	for _, live := range []int{1, 2} {
		pe.reads.mu.Lock()
		pe.reads.live = live
		pe.reads.mu.Unlock()
		b.Run(fmt.Sprintf("batched/live=%d", live), bench(func() error {
			_, _, err := p.Read(ctx, addr, 1, query, false, true)
			return err
		}))
	}
}
