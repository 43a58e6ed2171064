package raftnet

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/config"

	"github.com/zongzi-kv/zongzi/internal/testcert"
)

// captured is a slog handler that keeps what it is given.
type captured struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *captured) Enabled(context.Context, slog.Level) bool { return true }
func (h *captured) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *captured) WithGroup(string) slog.Handler            { return h }
func (h *captured) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// warnings returns how many warnings of each message were logged, and
// the remote host each names.
func (h *captured) warnings() (count map[string]int, remotes []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	count = map[string]int{}
	for _, r := range h.recs {
		if r.Level != slog.LevelWarn {
			continue
		}
		count[r.Message]++
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "remote" {
				remotes = append(remotes, a.Value.String())
			}
			return true
		})
	}
	return count, remotes
}

// TestRefusedConnectionsAreLogged: a peer that speaks another protocol
// (Dragonboat's own TCP module), says no hello in time, sends batches of
// another deployment or fails the TLS handshake is logged as a warning
// that names it, once per kind however often it redials; a peer that
// connects and closes at once, a probe, is not.
func TestRefusedConnectionsAreLogged(t *testing.T) {
	const tries = 3
	var h captured
	r := startReceiverOf(t, Factory{Log: slog.New(&h), hello: 500 * time.Millisecond}, time.Minute)
	for range tries {
		c := dialTCP(t, r.address())
		_ = c.Close() // a probe
	}
	for range tries {
		c := dialTCP(t, r.address())
		// Dragonboat's TCP module starts with its magic number.
		if _, err := c.Write([]byte{0xAE, 0x7D, 1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(t, c, 5*time.Second) {
			t.Fatal("a connection of another protocol is open")
		}
	}
	for range tries {
		if c := dialTCP(t, r.address()); !closedWithin(t, c, 5*time.Second) {
			t.Fatal("a silent connection is open")
		}
	}
	sender := Factory{}.Create(config.NodeHostConfig{RaftAddress: "127.0.0.1:4242"}, nil, nil).(*Transport)
	for range tries {
		conn, err := sender.GetConnection(context.Background(), r.address())
		if err != nil {
			t.Fatal(err)
		}
		b := testBatch(1, nil)
		b.DeploymentId = 8
		if err := conn.SendMessageBatch(b); err != nil {
			t.Fatal(err)
		}
		r.await(t, 1)
		conn.Close()
	}
	ca, other := testcert.NewCA(t, "cluster"), testcert.NewCA(t, "other")
	rt := startReceiverOf(t, Factory{Log: slog.New(&h), TLS: ca.Config(t)}, time.Minute)
	for range tries {
		c, err := tls.Dial("tcp", rt.address(), other.StrangerConfig(t, ca))
		if err == nil {
			_, _ = c.Write(helloAndBatch(t))
			if !closedWithin(t, c, 5*time.Second) {
				t.Fatal("a stranger's TLS connection is open")
			}
			_ = c.Close()
		}
	}
	for _, tr := range []*receiver{r, rt} {
		if !waitUntil(5*time.Second, func() bool { open, _ := tr.accepted(); return open == 0 }) {
			t.Fatal("connections are still served")
		}
	}

	count, remotes := h.warnings()
	t.Logf("warnings: %v", count)
	want := map[string]bool{"bad frame": true, "no hello in time": true, "batch of another deployment": true, "TLS handshake failed": true}
	for msg, n := range count {
		kind := ""
		for k := range want {
			if strings.Contains(msg, k) {
				kind = k
			}
		}
		if kind == "" {
			t.Errorf("warning %q, %d times: not one of the kinds expected", msg, n)
			continue
		}
		delete(want, kind)
		if n != 1 {
			t.Errorf("warning %q logged %d times for %d tries from one host, want once", msg, n, tries)
		}
	}
	for kind := range want {
		t.Errorf("no warning about %s", kind)
	}
	for _, remote := range remotes {
		if !strings.HasPrefix(remote, "127.0.0.1:") {
			t.Errorf("a warning names the remote %q, want the peer's address", remote)
		}
	}
}
