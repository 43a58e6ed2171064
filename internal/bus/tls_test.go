package bus

import (
	"crypto/tls"
	"errors"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/zongzi-kv/zongzi/internal/testcert"
)

// tlsPool returns a pool whose connections use TLS with cfg.
func tlsPool(t *testing.T, cfg *tls.Config) *Pool {
	p := NewPool(testCodes, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	t.Cleanup(p.Close)
	return p
}

// TestTLS: a server with TLS credentials answers a pool of the same CA,
// and no plain pool, nor one that it cannot verify or that cannot verify
// it. A write refused in the handshake, or before the server's preface
// came, is known not to have been made, as when nothing listens
// (TestWriteNotConnected). With TLS 1.3, the server refuses a client's
// certificate after the client's handshake ended, and the client may find
// the connection closed while it writes its own preface: gRPC words that
// failure as the bare write error, and the write is then of unknown
// outcome, which is safe.
func TestTLS(t *testing.T) {
	ca, other := testcert.NewCA(t, "cluster"), testcert.NewCA(t, "other")
	addr, _, plain := startBus(t, newFakeHandler(), grpc.Creds(credentials.NewTLS(ca.Config(t))))
	ctx := testContext(t)
	if info, err := tlsPool(t, ca.Config(t)).Info(ctx, addr); err != nil || info.HostId != "fake" {
		t.Fatalf("info over TLS: %v, %v", info, err)
	}

	foreign := other.StrangerConfig(t, ca)
	untrusting := ca.Config(t)
	untrusting.RootCAs = other.Pool
	for _, tc := range []struct {
		name      string
		p         *Pool
		knownSent bool // a refused write is always known not to have been made
	}{
		{"plain", plain, true},
		{"another CA trusted", tlsPool(t, untrusting), true},
		{"a certificate of another CA", tlsPool(t, foreign), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.p.Info(ctx, addr); err == nil {
				t.Fatal("info answered")
			} else {
				t.Logf("info: %v", err)
			}
			_, _, err := tc.p.Apply(ctx, addr, 1, []byte("w"))
			switch {
			case errors.Is(err, errNotReady) && !errors.Is(err, errUnknown):
			case tc.knownSent:
				t.Errorf("apply: %v, want %v", err, errNotReady)
			case !errors.Is(err, errUnknown):
				t.Errorf("apply: %v, want %v or %v", err, errNotReady, errUnknown)
			}
		})
	}
}
