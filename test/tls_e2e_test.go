package test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
	"github.com/zongzi-kv/zongzi/internal/testcert"
)

// e2eStrangerWait is how long a node whose certificate the cluster's CA
// did not sign is watched, not joining: a node of the cluster's joins
// within it (TestKV1TLS, its last step).
const e2eStrangerWait = 5 * time.Second

// TestKV1TLS runs kv1 with -tls-cert, -tls-key and -tls-ca, certificates
// for 127.0.0.1 of one CA: the three peers form the cluster, serve TLS on
// their raft and API ports, and serve a write and a linearizable read on
// another node (over plain HTTP). A fourth node whose
// certificate another CA signed, though it trusts the cluster's, is not
// ready and not in the registry after e2eStrangerWait; started again with
// a certificate of the cluster's CA, it joins and serves the read.
func TestKV1TLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kv1 cluster; skipped in -short mode")
	}
	pem := t.TempDir()
	ca, other := testcert.NewCA(t, "cluster"), testcert.NewCA(t, "other")
	c := e2eNew(t, kv1Bin)
	for _, n := range c.Nodes {
		n.Args = e2eTLSArgs(t, ca, ca, pem, fmt.Sprintf("node-%d", n.N))
	}
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	e2eWaitHealthy(t, c, c.Nodes...)
	n1, n2 := c.Nodes[0], c.Nodes[1]
	rec := e2eExpectRecord(t, "PUT on node 1", e2ePut(t, n1, "/tlskey?val=v"), "/tlskey", "v")
	if r := e2eGet(t, n2, "/tlskey"); r.Body != rec.JSON() {
		t.Fatalf("linearizable GET on node 2: %v, want %q", r, rec.JSON())
	}
	if reg := e2eGetRegistry(t, n1); reg.Header.Hosts != 3 {
		t.Fatalf("registry of the TLS cluster: %+v, want 3 hosts", reg.Header)
	}
	e2eServesTLS(t, ca, n1)

	n4, err := c.Add()
	if err != nil {
		t.Fatal(err)
	}
	n4.Args = e2eTLSArgs(t, other, ca, pem, "stranger")
	if err := c.Start(n4); err != nil {
		t.Fatal(err)
	}
	e2eNotJoined(t, n1, n4)
	if err := c.Stop(n4); err != nil {
		t.Fatal(err)
	}

	n4.Args = e2eTLSArgs(t, ca, ca, pem, "node-4")
	if err := c.Start(n4); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e2eEventually(t, e2eStrangerWait, "node 4 of the cluster's CA in /_registry", func() string {
		if e2eListed(t, n1, n4) {
			return ""
		}
		return "not listed"
	})
	t.Logf("node 4 of the cluster's CA listed after %v", time.Since(start).Round(time.Millisecond))
	e2eWaitHealthy(t, c, n4)
	if r := e2eGet(t, n4, "/tlskey"); r.Body != rec.JSON() {
		t.Fatalf("linearizable GET on node 4: %v, want %q", r, rec.JSON())
	}
}

// e2eServesTLS checks that n's raft and API ports serve TLS with a
// certificate of ca for 127.0.0.1, to a client with a certificate of ca.
func e2eServesTLS(t *testing.T, ca *testcert.CA, n *kv1proc.Node) {
	t.Helper()
	for _, addr := range []string{n.Raft, n.API} {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: ca.Config(t)}
		conn, err := d.DialContext(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatalf("node %d: TLS to %s: %v", n.N, addr, err)
		}
		conn.Close()
	}
}

// e2eTLSArgs writes a certificate that issuer signs for 127.0.0.1, its
// key and trusted's certificate as PEM files named after name in dir, and
// returns kv1's flags for them.
func e2eTLSArgs(t *testing.T, issuer, trusted *testcert.CA, dir, name string) []string {
	t.Helper()
	cert, key, ca := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), filepath.Join(dir, name+"-ca.crt")
	issuer.WriteCertFiles(t, cert, key)
	trusted.WriteCAFile(t, ca)
	return []string{"-tls-cert", cert, "-tls-key", key, "-tls-ca", ca}
}

// e2eNotJoined watches node n for e2eStrangerWait: member's /_registry
// must not list it, and n must not answer /healthz with 200.
func e2eNotJoined(t *testing.T, member, n *kv1proc.Node) {
	t.Helper()
	for deadline := time.Now().Add(e2eStrangerWait); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if e2eListed(t, member, n) {
			t.Fatalf("node %d, of another CA, is in node %d's /_registry", n.N, member.N)
		}
		if r, err := n.Do(t.Context(), http.MethodGet, "/healthz", nil); err == nil && r.Status == http.StatusOK {
			t.Fatalf("node %d, of another CA, is healthy", n.N)
		}
	}
}

// e2eListed reports whether member's /_registry lists a host at n's API
// address.
func e2eListed(t *testing.T, member, n *kv1proc.Node) bool {
	t.Helper()
	for _, h := range e2eGetRegistry(t, member).Hosts {
		if h.APIAddress == n.API {
			return true
		}
	}
	return false
}
