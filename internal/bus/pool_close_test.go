package bus

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"
)

// A call made once the pool is closed, as one in flight when an agent
// stops may be, fails with Codes.Closed and opens no connection, whose
// goroutines nothing would ever stop.
func TestPoolClosedMakesNoConnection(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	closed := errors.New("test: closed")
	p := NewPool(Codes{Closed: closed})
	p.Close()
	if _, err := p.Info(context.Background(), "127.0.0.1:1"); !errors.Is(err, closed) {
		t.Fatalf("Info after Close: %v, want Codes.Closed", err)
	}
}

// TestPoolRetainSparesCallsInProgress checks that Retain closes the
// connection to an address it is not to keep once no call is in progress
// on it, not while one is: a read on it is answered.
func TestPoolRetainSparesCallsInProgress(t *testing.T) {
	h, addr, p, errc := stuckRead(t)
	ctx := testContext(t)
	p.Retain(func(string) bool { return false })
	if !p.Has(addr) {
		t.Fatal("Retain closed a connection with a read in progress")
	}
	close(h.unstick)
	if err := <-errc; err != nil {
		t.Fatalf("read in progress: %v", err)
	}
	p.Retain(func(string) bool { return true })
	if !p.Has(addr) {
		t.Fatal("Retain closed a connection it was to keep")
	}
	p.Retain(func(string) bool { return false })
	if p.Has(addr) {
		t.Fatal("Retain kept an idle connection it was not to keep")
	}
	if _, _, err := p.Read(ctx, addr, 1, []byte("q"), true, false); err != nil {
		t.Fatalf("read after Retain closed the connection: %v", err)
	}
}

// A read in flight when the pool is closed (its agent stops) fails with
// Codes.Closed, as one made after, not with context.Canceled, which would
// say its caller gave up.
func TestPoolCloseFailsReadsInFlightAsClosed(t *testing.T) {
	h, _, p, errc := stuckRead(t)
	defer close(h.unstick)
	p.Close()
	if err := <-errc; !errors.Is(err, errPoolClosed) || errors.Is(err, context.Canceled) {
		t.Fatalf("read in flight when the pool closed: %v, want Codes.Closed", err)
	}
}

// A watch whose query is over the bus's limit is refused before anything
// crosses the network, as a read's is: not after more than 4 MiB went to
// the host, which refuses it.
func TestPoolWatchRefusesAQueryTooLarge(t *testing.T) {
	addr, _, p := startBus(t, newFakeHandler())
	err := p.Watch(testContext(t), addr, 1, make([]byte, maxPayload+1), true, func(uint64, []byte) error { return nil })
	if !errors.Is(err, errOverMax) {
		t.Fatalf("watch with a query over the limit: %v, want Codes.TooLarge", err)
	}
	if p.Has(addr) {
		t.Fatal("a watch with a query over the limit connected to its host")
	}
}

// errPoolClosed is the Codes.Closed of stuckRead's pool.
var errPoolClosed = errors.New("test: closed")

// stuckRead starts a bus and a read of shardStuck through a pool whose
// Codes.Closed is errPoolClosed, and returns once the handler has the
// read, which it answers once h.unstick is closed; errc gets the read's
// error.
func stuckRead(t *testing.T) (h *fakeHandler, addr string, p *Pool, errc <-chan error) {
	h = newFakeHandler()
	h.entered = make(chan uint64, 1)
	addr, _, p = startBus(t, h)
	p.codes.Closed = errPoolClosed
	ctx := testContext(t)
	c := make(chan error, 1)
	go func() {
		_, _, err := p.Read(ctx, addr, shardStuck, nil, true, false)
		c <- err
	}()
	<-h.entered
	return h, addr, p, c
}
