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
// it. A write that no connection could carry is known not to have been
// made, as when nothing listens (TestWriteNotConnected).
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
	for name, p := range map[string]*Pool{
		"plain": plain, "a certificate of another CA": tlsPool(t, foreign), "another CA trusted": tlsPool(t, untrusting),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := p.Info(ctx, addr); err == nil {
				t.Fatal("info answered")
			} else {
				t.Logf("info: %v", err)
			}
			if _, _, err := p.Apply(ctx, addr, 1, []byte("w")); !errors.Is(err, errNotReady) || errors.Is(err, errUnknown) {
				t.Errorf("apply: %v, want %v", err, errNotReady)
			}
		})
	}
}
