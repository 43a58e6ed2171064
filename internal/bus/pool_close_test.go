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
