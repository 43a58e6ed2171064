package bus

import (
	"context"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/testproxy"
)

// watchHandler serves a Watch that sends one result, then waits for its
// caller to go.
type watchHandler struct{ *fakeHandler }

func (watchHandler) Watch(ctx context.Context, _ uint64, _ []byte, _ bool, send func(uint64, []byte) error) error {
	if err := send(1, nil); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// TestWatchEndsWhenHostGoesSilent: a forwarded Watch has no deadline. When
// the host serving it goes silent without closing the connection (a
// partition, a power loss: here a proxy that stops passing bytes), the
// caller's pings go unanswered and the Watch fails, by callKeepalive's
// time and timeout, rather than wait as long as TCP does.
func TestWatchEndsWhenHostGoesSilent(t *testing.T) {
	callKeepalive.Time, callKeepalive.Timeout = 10*time.Second, time.Second // gRPC's least Time is 10 s
	t.Cleanup(func() { callKeepalive.Time, callKeepalive.Timeout = 30*time.Second, 20*time.Second })
	srv := NewServer(watchHandler{newFakeHandler()}, testCodes)
	t.Cleanup(srv.Stop)
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy, silence := testproxy.Silent(t, addr.String(), 0)
	p := NewPool(testCodes)
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	got := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- p.Watch(ctx, proxy, 1, nil, false, func(uint64, []byte) error { got <- struct{}{}; return nil })
	}()
	select {
	case <-got:
	case err := <-done:
		t.Fatalf("watch ended before its first result: %v", err)
	}
	silence()
	start := time.Now()
	select {
	case err := <-done:
		if err == nil || ctx.Err() != nil {
			t.Fatalf("watch ended with %v after %v (ctx %v), want an error before its ctx ends", err, time.Since(start), ctx.Err())
		}
		t.Logf("watch failed %v after the host went silent: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("watch still waits 30 s after its host went silent")
	}
}
