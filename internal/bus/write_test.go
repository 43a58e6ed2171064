package bus

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// heldWrites is a handler whose writes wait until their ctx ends, after
// telling entered that they arrived.
type heldWrites struct {
	*fakeHandler
	entered chan struct{}
}

func (h heldWrites) Apply(ctx context.Context, _ uint64, _ []byte) (uint64, []byte, error) {
	h.entered <- struct{}{}
	<-ctx.Done()
	return 0, nil, ctx.Err()
}

func (h heldWrites) Commit(ctx context.Context, _ uint64, _ []byte) error {
	h.entered <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// TestWriteAnswered checks that an error the serving host answers keeps
// its meaning: the root package reads Unavailable as "not applied, try the
// next host".
func TestWriteAnswered(t *testing.T) {
	addr, _, p := startBus(t, newFakeHandler())
	ctx := testContext(t)
	if _, _, err := p.Apply(ctx, addr, 1, []byte("w")); !errors.Is(err, errNotReady) || errors.Is(err, errUnknown) {
		t.Errorf("apply: %v, want %v", err, errNotReady)
	}
	if err := p.Commit(ctx, addr, 1, []byte("w")); !errors.Is(err, errNotReady) || errors.Is(err, errUnknown) {
		t.Errorf("commit: %v, want %v", err, errNotReady)
	}
}

// TestWriteTooLarge checks that a command too large for a bus message is
// not sent, and says so: its outcome is known, it did not apply.
func TestWriteTooLarge(t *testing.T) {
	h := heldWrites{fakeHandler: newFakeHandler(), entered: make(chan struct{}, 2)}
	addr, _, p := startBus(t, h)
	ctx := testContext(t)
	cmd := make([]byte, 5<<20)
	_, _, err := p.Apply(ctx, addr, 1, cmd)
	if !errors.Is(err, errOverMax) || errors.Is(err, errUnknown) || !strings.Contains(err.Error(), "message limit") {
		t.Errorf("apply: %v, want %v about the message limit", err, errOverMax)
	}
	err = p.Commit(ctx, addr, 1, cmd)
	if !errors.Is(err, errOverMax) || errors.Is(err, errUnknown) || !strings.Contains(err.Error(), "message limit") {
		t.Errorf("commit: %v, want %v about the message limit", err, errOverMax)
	}
	if n := len(h.entered); n != 0 {
		t.Errorf("the host took %d of the writes, want none", n)
	}
}

// TestWriteCallFails checks that a write whose serving host goes away
// while it holds the write reports an unknown outcome, not the Unavailable
// that gRPC gives it: the host may have proposed the write before it went,
// and sending it to another host could apply it twice.
func TestWriteCallFails(t *testing.T) {
	for _, op := range []string{"apply", "commit"} {
		t.Run(op, func(t *testing.T) {
			h := heldWrites{fakeHandler: newFakeHandler(), entered: make(chan struct{}, 1)}
			addr, srv, p := startBus(t, h)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			errs := make(chan error, 1)
			go func() {
				var err error
				if op == "apply" {
					_, _, err = p.Apply(ctx, addr, 1, []byte("w"))
				} else {
					err = p.Commit(ctx, addr, 1, []byte("w"))
				}
				errs <- err
			}()
			select {
			case <-h.entered:
			case <-ctx.Done():
				t.Fatal("the write never reached the server")
			}
			srv.Stop()
			select {
			case err := <-errs:
				if !errors.Is(err, errUnknown) || errors.Is(err, errNotReady) {
					t.Errorf("%s: %v, want %v", op, err, errUnknown)
				}
				if ctx.Err() != nil {
					t.Errorf("%s returned only at its deadline: %v", op, err)
				}
			case <-ctx.Done():
				t.Fatalf("%s still waiting after the server stopped", op)
			}
		})
	}
}

// TestWriteNotConnected checks that a write to a host that cannot be
// reached is known not to have been made, so that the root package tries
// the next host: gRPC never sent it.
func TestWriteNotConnected(t *testing.T) {
	checkLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	p := NewPool(testCodes)
	t.Cleanup(p.Close)
	ctx := testContext(t)
	if _, _, err := p.Apply(ctx, addr, 1, []byte("w")); !errors.Is(err, errNotReady) || errors.Is(err, errUnknown) {
		t.Errorf("apply: %v, want %v", err, errNotReady)
	}
	if err := p.Commit(ctx, addr, 1, []byte("w")); !errors.Is(err, errNotReady) || errors.Is(err, errUnknown) {
		t.Errorf("commit: %v, want %v", err, errNotReady)
	}
}
