package main

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/testcert"
)

// tlsTestFiles writes a CA and a host certificate of it (for 127.0.0.1 and
// dnsNames) as PEM files under dir, named after name, and returns them as
// kv1's flags take them.
func tlsTestFiles(t *testing.T, ca *testcert.CA, dir, name string, dnsNames ...string) tlsFiles {
	t.Helper()
	f := tlsFiles{
		cert: filepath.Join(dir, name+".crt"),
		key:  filepath.Join(dir, name+".key"),
		ca:   filepath.Join(dir, name+"-ca.crt"),
	}
	ca.WriteCertFiles(t, f.cert, f.key, dnsNames...)
	ca.WriteCAFile(t, f.ca)
	return f
}

// TestTLSFlags: -tls-cert, -tls-key and -tls-ca are given together or not
// at all, -tls-name only with them; parseFlags says which are missing
// (on stderr too, as kv1's main shows it: TestMainFlagErrors).
func TestTLSFlags(t *testing.T) {
	for _, tc := range []struct {
		args string
		want tlsFiles
		err  string // empty: no error
	}{
		{args: ""},
		{args: "-tls-cert c -tls-key k -tls-ca a", want: tlsFiles{cert: "c", key: "k", ca: "a"}},
		{args: "-tls-cert c -tls-key k -tls-ca a -tls-name kv1.test", want: tlsFiles{cert: "c", key: "k", ca: "a", name: "kv1.test"}},
		{args: "-tls-cert c", err: "-tls-cert without -tls-key, -tls-ca: give -tls-cert, -tls-key and -tls-ca together, or none"},
		{args: "-tls-key k", err: "-tls-key without -tls-cert, -tls-ca: give"},
		{args: "-tls-ca a", err: "-tls-ca without -tls-cert, -tls-key: give"},
		{args: "-tls-cert c -tls-key k", err: "-tls-cert, -tls-key without -tls-ca: give"},
		{args: "-tls-cert c -tls-ca a -tls-name kv1.test", err: "-tls-cert, -tls-ca without -tls-key: give"},
		{args: "-tls-key k -tls-ca a", err: "-tls-key, -tls-ca without -tls-cert: give"},
		{args: "-tls-name kv1.test", err: "-tls-name without -tls-cert, -tls-key and -tls-ca"},
	} {
		o, err := parseFlags(strings.Fields(tc.args))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("kv1 %s: %v", tc.args, err)
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("kv1 %s: error %v, want one starting %q", tc.args, err, tc.err)
		case err == nil && (o.tls != tc.want || o.tls.enabled() != (tc.want.cert != "")):
			t.Errorf("kv1 %s: %+v (enabled %v), want %+v", tc.args, o.tls, o.tls.enabled(), tc.want)
		}
	}
}

// TestTLSConfig: the files make the config that zongzi.WithTLS asks for,
// and newAgent takes them.
func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "cluster")
	for _, name := range []string{"", "kv1.test"} {
		f := tlsTestFiles(t, ca, dir, "node"+name, name)
		f.name = name
		cfg, err := f.config()
		if err != nil {
			t.Fatalf("-tls-name %q: %v", name, err)
		}
		if len(cfg.Certificates) != 1 || cfg.ClientAuth != tls.RequireAndVerifyClientCert ||
			cfg.ClientCAs == nil || cfg.RootCAs == nil || cfg.MinVersion != tls.VersionTLS12 ||
			cfg.ServerName != name || cfg.InsecureSkipVerify {
			t.Errorf("-tls-name %q: config %+v", name, cfg)
		}
		if !cfg.ClientCAs.Equal(ca.Pool) || !cfg.RootCAs.Equal(ca.Pool) {
			t.Errorf("-tls-name %q: ClientCAs and RootCAs are not the CA of -tls-ca", name)
		}

		o, err := parseFlags([]string{"-tls-cert", f.cert, "-tls-key", f.key, "-tls-ca", f.ca, "-tls-name", name,
			"-d", dir, "-p", "127.0.0.1:17013"})
		if err != nil {
			t.Fatal(err)
		}
		agent, err := newAgent(o, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("-tls-name %q: newAgent: %v", name, err)
		}
		agent.Stop()
	}
}

// TestTLSConfigFileErrors: a file that cannot be read or holds no usable
// PEM is refused, with an error that names it, before the agent exists.
func TestTLSConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "cluster")
	good := tlsTestFiles(t, ca, dir, "good")
	other := tlsTestFiles(t, ca, dir, "other")
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		what    string
		files   tlsFiles
		names   []string // in the error
		is      error    // errors.Is, if not nil
		message string   // in the error
	}{
		{"no cert", tlsFiles{cert: missing, key: good.key, ca: good.ca}, []string{"-tls-cert", missing}, fs.ErrNotExist, ""},
		{"no key", tlsFiles{cert: good.cert, key: missing, ca: good.ca}, []string{"-tls-key", missing}, fs.ErrNotExist, ""},
		{"no CA", tlsFiles{cert: good.cert, key: good.key, ca: missing}, []string{"-tls-ca", missing}, fs.ErrNotExist, ""},
		{"a directory as CA", tlsFiles{cert: good.cert, key: good.key, ca: dir}, []string{"-tls-ca", dir}, nil, "is a directory"},
		{"junk cert", tlsFiles{cert: junk, key: good.key, ca: good.ca}, []string{"-tls-cert " + junk, good.key}, nil, "certificate"},
		{"junk key", tlsFiles{cert: good.cert, key: junk, ca: good.ca}, []string{good.cert, "-tls-key " + junk}, nil, "key"},
		{"another's key", tlsFiles{cert: good.cert, key: other.key, ca: good.ca}, []string{good.cert, other.key}, nil, "does not match"},
		{"key as cert", tlsFiles{cert: good.key, key: good.key, ca: good.ca}, []string{good.key}, nil, "certificate"},
		{"junk CA", tlsFiles{cert: good.cert, key: good.key, ca: junk}, []string{"-tls-ca " + junk}, errNoCACert, ""},
		{"key as CA", tlsFiles{cert: good.cert, key: good.key, ca: good.key}, []string{"-tls-ca " + good.key}, errNoCACert, ""},
	} {
		cfg, err := tc.files.config()
		if err == nil {
			t.Errorf("%s: config %+v, want an error", tc.what, cfg)
			continue
		}
		for _, name := range tc.names {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%s: error %q does not name %s", tc.what, err, name)
			}
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: error %q is not %v", tc.what, err, tc.is)
		}
		if !strings.Contains(err.Error(), tc.message) {
			t.Errorf("%s: error %q does not say %q", tc.what, err, tc.message)
		}

		o := options{dir: dir, api: "127.0.0.1:17013", raft: "127.0.0.1:17012", peers: "127.0.0.1:17013", name: "kv1", tls: tc.files}
		if agent, nerr := newAgent(o, slog.New(slog.DiscardHandler)); nerr == nil || nerr.Error() != err.Error() {
			if agent != nil {
				agent.Stop()
			}
			t.Errorf("%s: newAgent: %v, want %v", tc.what, nerr, err)
		}
	}
}

// TestTLSHandshake: configs made from kv1's files connect two nodes of a
// CA both ways, the server verifying the client's certificate too; they
// refuse a node of another CA at either end, and check the dialled IP
// address, or the -tls-name that replaces it.
func TestTLSHandshake(t *testing.T) {
	dir := t.TempDir()
	ca, other := testcert.NewCA(t, "cluster"), testcert.NewCA(t, "other")
	config := func(f tlsFiles) *tls.Config {
		t.Helper()
		cfg, err := f.config()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	named := func(f tlsFiles, name string) tlsFiles { f.name = name; return f }
	a := tlsTestFiles(t, ca, dir, "a", "kv1.test")
	b := tlsTestFiles(t, ca, dir, "b", "kv1.test")
	plain := tlsTestFiles(t, ca, dir, "plain") // 127.0.0.1 only
	stranger := tlsTestFiles(t, other, dir, "stranger", "kv1.test")
	trusting := stranger // another CA's certificate, trusting the cluster's
	trusting.ca = a.ca

	for _, tc := range []struct {
		what           string
		server, client tlsFiles
		ok             bool
		present        bool // the client presents its certificate though the server asks for one of its CA
	}{
		{"same CA, IP SAN", a, b, true, false},
		{"same CA, both ways", b, a, true, false},
		{"-tls-name", named(a, "kv1.test"), named(b, "kv1.test"), true, false},
		{"-tls-name the server's certificate lacks", named(plain, "kv1.test"), named(b, "kv1.test"), false, false},
		{"-tls-name no certificate carries", named(a, "other.test"), named(b, "other.test"), false, false},
		{"client of another CA", a, stranger, false, false},
		{"server of another CA", stranger, a, false, false},
		{"client of another CA that trusts the server", a, trusting, false, false},
		{"client of another CA that presents its certificate", a, trusting, false, true},
		{"server of another CA that trusts the client", trusting, a, false, false},
	} {
		client := config(tc.client)
		if tc.present {
			cert := client.Certificates[0]
			client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		}
		serverErr, clientErr := tlsHandshake(t, config(tc.server), client)
		if ok := serverErr == nil && clientErr == nil; ok != tc.ok {
			t.Errorf("%s: server: %v; client: %v; want success %v", tc.what, serverErr, clientErr, tc.ok)
		} else if !ok {
			t.Logf("%s: refused: server: %v; client: %v", tc.what, serverErr, clientErr)
		}
	}
}

// tlsHandshake connects a client with config client to a server with
// config server on a loopback port, dialled as 127.0.0.1, and returns each
// end's error: of the handshake and one byte each way, since with TLS 1.3
// a client's handshake ends before the server has checked its certificate.
func tlsHandshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		done <- echoByte(conn.(*tls.Conn), false)
	}()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: client}
	conn, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		err = echoByte(conn.(*tls.Conn), true)
		conn.Close()
	}
	return <-done, err
}

// echoByte completes the handshake on conn, then writes a byte and reads
// one (first when first is set, else after reading).
func echoByte(conn *tls.Conn, first bool) error {
	if err := conn.Handshake(); err != nil {
		return err
	}
	b := []byte{1}
	if first {
		if _, err := conn.Write(b); err != nil {
			return err
		}
	}
	if _, err := conn.Read(b); err != nil {
		return err
	}
	if !first {
		_, err := conn.Write(b)
		return err
	}
	return nil
}
