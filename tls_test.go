package zongzi_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
	"go.uber.org/goleak"

	"github.com/zongzi-kv/zongzi"
	"github.com/zongzi-kv/zongzi/internal/bus"
	"github.com/zongzi-kv/zongzi/internal/testcert"
)

// startTLSCluster starts three peers in zones a, b and c, each with a
// certificate of ca. The caller stops them (c.stop).
func startTLSCluster(ctx context.Context, t *testing.T, ca *testcert.CA) *cluster {
	c := newCluster(t, "a", "b", "c")
	for _, n := range c.nodes {
		n.opts = append(n.opts, zongzi.WithTLS(ca.Config(t)))
	}
	c.startAll(ctx, c.nodes...)
	return c
}

// TestTLSClusterFormsAndForwards: three peers with WithTLS form the
// cluster and a guest shard over TLS (raft port and bus); a fourth host
// joins through the bus and takes the registry over raft, and, having no
// replica of the guest shard, serves it by forwarding over the bus.
func TestTLSClusterFormsAndForwards(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ca := testcert.NewCA(t, "cluster")
	c := startTLSCluster(ctx, t, ca)
	defer c.stop()
	a1 := c.nodes[0].agent
	s := c.createActive(ctx, a1, testType, "tls")

	n4 := c.addNode("a")
	n4.opts = append(n4.opts, zongzi.WithTLS(ca.Config(t)))
	c.startAll(ctx, n4)
	a4 := n4.agent
	if i := slices.IndexFunc(a4.State().HostReplicas(a4.HostID()), func(r zongzi.Replica) bool { return r.ShardID == s.ID }); i >= 0 {
		t.Fatalf("host 4 has a replica of shard %d: the test needs it to forward", s.ID)
	}
	cl := a4.Client(s.ID)
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	if idx, _, err := cl.Apply(cctx, []byte("over-tls")); err != nil || idx == 0 {
		t.Fatalf("apply through host 4: index %d, %v", idx, err)
	}
	for _, stale := range []bool{false, true} {
		n, last, err := cl.Read(cctx, nil, stale)
		if err != nil || (!stale && (n == 0 || string(last) != "over-tls")) {
			t.Fatalf("read (stale=%v) through host 4: %d %q %v", stale, n, last, err)
		}
	}
}

// TestTLSRefusesStrangers: a cluster with WithTLS refuses a host whose
// certificate another CA signed, though it trusts the cluster's, and the
// registry never lists it; a plain gRPC client of a host's bus gets no
// answer; a plain TCP connection to its raft port, which says a raftnet
// hello and sends a batch, is closed.
func TestTLSRefusesStrangers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ca, other := testcert.NewCA(t, "cluster"), testcert.NewCA(t, "other")
	c := startTLSCluster(ctx, t, ca)
	defer c.stop()

	n4 := c.addNode("a")
	n4.opts = append(n4.opts, zongzi.WithTLS(other.StrangerConfig(t, ca)))
	a4, err := c.newAgent(n4)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	err = a4.Start(sctx)
	scancel()
	// With TLS 1.3 the host's handshake ends before a peer refuses its
	// certificate, and the peer's alert saying why may be lost with the
	// connection: the error names the last attempt's failure, whatever
	// it was.
	if !errors.Is(err, zongzi.ErrBootstrap) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last attempt") {
		t.Fatalf("start of a host of another CA: %v, want ErrBootstrap after the deadline, with the last attempt's failure", err)
	}
	t.Logf("start of a host of another CA: %v", err)
	st, err := c.nodes[0].agent.StateLinearizable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.Hosts() {
		if h.ApiAddress == n4.api || h.ID == a4.HostID() {
			t.Fatalf("the registry lists the host of another CA: %+v", h)
		}
	}
	if st.HostCount() != 3 {
		t.Fatalf("the registry lists %d hosts, want the 3 peers", st.HostCount())
	}

	t.Run("plain bus client", func(t *testing.T) {
		p := bus.NewPool(zongzi.BusCodes)
		defer p.Close()
		ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
		defer icancel()
		if info, err := p.Info(ictx, c.nodes[0].api); err == nil {
			t.Fatalf("a plain client's Info was answered: %v", info)
		} else {
			t.Logf("a plain client's Info: %v", err)
		}
	})
	t.Run("plain raft connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", c.nodes[0].raft)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		batch := pb.MessageBatch{BinVer: raftio.TransportBinVersion, SourceAddress: "stranger"}
		p, err := batch.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		frames := append(raftnetFrame(4, []byte("127.0.0.1:1")), raftnetFrame(1, p)...) // hello, batch
		if _, err := conn.Write(frames); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the raft port kept a plain connection open 5 s after a hello and a batch")
		}
		if n > 0 {
			t.Fatal("the raft port answered a plain connection")
		}
	})
}

// raftnetFrame is a frame of raftnet's (internal/raftnet): kind, payload
// length and CRC-32C, then the payload.
func raftnetFrame(kind byte, p []byte) []byte {
	f := []byte{kind}
	f = binary.BigEndian.AppendUint32(f, uint32(len(p)))
	f = binary.BigEndian.AppendUint32(f, crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)))
	return append(f, p...)
}

// otherTransport is a transport factory of the user's own.
type otherTransport struct{}

func (otherTransport) Create(config.NodeHostConfig, raftio.MessageHandler, raftio.ChunkHandler) raftio.ITransport {
	return nil
}

func (otherTransport) Validate(string) bool { return true }

// TestTLSConfigRefused: WithTLS refuses a config that does not make
// connections mutually authenticated and verified at both ends, and
// NewAgent refuses it beside a host config with Dragonboat's TLS or a
// transport of its own, in either order.
func TestTLSConfigRefused(t *testing.T) {
	ca := testcert.NewCA(t, "cluster")
	edited := func(edit func(*tls.Config)) zongzi.AgentOption {
		cfg := ca.Config(t)
		edit(cfg)
		return zongzi.WithTLS(cfg)
	}
	mutualTLS := zongzi.WithHostConfig(config.NodeHostConfig{MutualTLS: true, CAFile: "ca.crt", CertFile: "h.crt", KeyFile: "h.key"})
	ownTransport := zongzi.WithHostConfig(config.NodeHostConfig{Expert: config.ExpertConfig{TransportFactory: otherTransport{}}})
	for name, opts := range map[string][]zongzi.AgentOption{
		"nil":                        {zongzi.WithTLS(nil)},
		"no certificate":             {edited(func(c *tls.Config) { c.Certificates = nil })},
		"certificate without key":    {edited(func(c *tls.Config) { c.Certificates[0].PrivateKey = nil })},
		"no client certificate":      {edited(func(c *tls.Config) { c.GetCertificate, c.Certificates = serveCert(c.Certificates[0]), nil })},
		"client certificate unasked": {edited(func(c *tls.Config) { c.ClientAuth = tls.NoClientCert })},
		"client certificate if given": {edited(func(c *tls.Config) {
			c.ClientAuth = tls.VerifyClientCertIfGiven
		})},
		"client certificate unverified": {edited(func(c *tls.Config) { c.ClientAuth = tls.RequireAnyClientCert })},
		"no ClientCAs":                  {edited(func(c *tls.Config) { c.ClientCAs = nil })},
		"no RootCAs":                    {edited(func(c *tls.Config) { c.RootCAs = nil })},
		"InsecureSkipVerify":            {edited(func(c *tls.Config) { c.InsecureSkipVerify = true })},
		"TLS 1.1 allowed":               {edited(func(c *tls.Config) { c.MinVersion = tls.VersionTLS11 })},
		"TLS 1.1 at most":               {edited(func(c *tls.Config) { c.MaxVersion = tls.VersionTLS11 })},
		"GetConfigForClient": {edited(func(c *tls.Config) {
			c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return nil, nil }
		})},
		"then MutualTLS":      {zongzi.WithTLS(ca.Config(t)), mutualTLS},
		"after MutualTLS":     {mutualTLS, zongzi.WithTLS(ca.Config(t))},
		"then own transport":  {zongzi.WithTLS(ca.Config(t)), ownTransport},
		"after own transport": {ownTransport, zongzi.WithTLS(ca.Config(t))},
	} {
		t.Run(name, func(t *testing.T) {
			opts = append(opts, zongzi.WithDirRaft(t.TempDir()))
			a, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:17013"}, opts...)
			if !errors.Is(err, zongzi.ErrInvalidConfig) || a != nil {
				t.Fatalf("got agent %v, error %v; want ErrInvalidConfig", a, err)
			}
			t.Log(err)
		})
	}
	callbacks := edited(func(c *tls.Config) {
		c.GetCertificate, c.GetClientCertificate = serveCert(c.Certificates[0]), dialCert(c.Certificates[0])
		c.Certificates = nil
	})
	for name, opt := range map[string]zongzi.AgentOption{"certificates": zongzi.WithTLS(ca.Config(t)), "callbacks": callbacks} {
		if _, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:17013"}, opt, zongzi.WithDirRaft(t.TempDir())); err != nil {
			t.Errorf("valid TLS config with %s: %v", name, err)
		}
	}
}

func serveCert(c tls.Certificate) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c, nil }
}

func dialCert(c tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
}
