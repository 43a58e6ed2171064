// Package testcert issues certificates for tests that run hosts over
// mutual TLS: a certificate authority made on the spot, and host
// certificates it signs, ECDSA P-256, valid for an hour, for 127.0.0.1,
// in memory or written to PEM files. Nothing outside tests imports it.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// validity is how long a certificate of this package is valid; it starts
// a minute in the past, to allow for clocks that differ a little.
const validity = time.Hour

// CA is a certificate authority that signs host certificates.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// Pool holds the CA's certificate, for a config's RootCAs and ClientCAs.
	Pool *x509.CertPool
}

// NewCA makes a certificate authority named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := template(t, name)
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testcert: make CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcert: parse CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: key, Pool: pool}
}

// Cert issues a host certificate signed by ca, for the IP address
// 127.0.0.1 and the given DNS names, good for both ends of a connection
// (server and client authentication), as a host's is.
func (ca *CA) Cert(t testing.TB, dnsNames ...string) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := template(t, "host")
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	tmpl.DNSNames = dnsNames
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("testcert: issue certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Config returns a mutual TLS config of a host: a certificate of ca's
// (Cert, with dnsNames), client certificates required and verified
// against ca, and servers verified against ca.
func (ca *CA) Config(t testing.TB, dnsNames ...string) *tls.Config {
	t.Helper()
	return &tls.Config{
		Certificates: []tls.Certificate{ca.Cert(t, dnsNames...)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool,
		RootCAs:      ca.Pool,
	}
}

// StrangerConfig returns the config of a host that is not of the cluster
// of trusted: it has a certificate of ca's, verifies servers against
// trusted, and presents its certificate to them although they ask for one
// of trusted's (a client of crypto/tls would send none).
func (ca *CA) StrangerConfig(t testing.TB, trusted *CA) *tls.Config {
	t.Helper()
	cfg := ca.Config(t)
	cfg.RootCAs = trusted.Pool
	cert := cfg.Certificates[0]
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return cfg
}

// WriteCAFile writes ca's certificate to path as PEM, for a program that
// reads its CA from a file.
func (ca *CA) WriteCAFile(t testing.TB, path string) {
	t.Helper()
	writePEM(t, path, "CERTIFICATE", ca.cert.Raw)
}

// WriteCertFiles issues a host certificate (as Cert does, with dnsNames)
// and writes it and its private key (PKCS #8) as PEM to certPath and
// keyPath, for a program that reads them from files.
func (ca *CA) WriteCertFiles(t testing.TB, certPath, keyPath string, dnsNames ...string) {
	t.Helper()
	cert := ca.Cert(t, dnsNames...)
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatalf("testcert: encode key: %v", err)
	}
	writePEM(t, certPath, "CERTIFICATE", cert.Certificate[0])
	writePEM(t, keyPath, "PRIVATE KEY", key)
}

// writePEM writes der as one PEM block of type typ to path, readable by
// its owner only.
func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testcert: %v", err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testcert: make key: %v", err)
	}
	return key
}

// template is a certificate template with a random serial number, named
// name, valid from a minute ago for validity.
func template(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("testcert: serial number: %v", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
	}
}
