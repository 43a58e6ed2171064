package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// errNoCACert: the file of -tls-ca holds no PEM certificate.
var errNoCACert = errors.New("no PEM certificate in it")

// tlsFiles are the flags of mutual TLS between nodes: the PEM files of
// the node's certificate, its private key and the CA, and the name every
// node's certificate carries, if any.
type tlsFiles struct {
	cert, key, ca, name string
}

// enabled reports whether the files are given, and so TLS is on.
func (f tlsFiles) enabled() bool { return f.cert != "" }

// check says what is wrong with the flags: the three files go together,
// and a name without them has nothing to apply to.
func (f tlsFiles) check() error {
	var given, missing []string
	for _, v := range []struct{ flag, file string }{{"-tls-cert", f.cert}, {"-tls-key", f.key}, {"-tls-ca", f.ca}} {
		if v.file == "" {
			missing = append(missing, v.flag)
		} else {
			given = append(given, v.flag)
		}
	}
	switch {
	case len(given) > 0 && len(missing) > 0:
		return fmt.Errorf("%s without %s: give -tls-cert, -tls-key and -tls-ca together, or none",
			strings.Join(given, ", "), strings.Join(missing, ", "))
	case len(given) == 0 && f.name != "":
		return errors.New("-tls-name without -tls-cert, -tls-key and -tls-ca")
	}
	return nil
}

// config reads the files into the config of zongzi.WithTLS: the node's
// certificate, at both ends of a connection; the CA's certificates as
// ClientCAs and RootCAs, so that a node accepts and dials only nodes whose
// certificates the CA signed; client certificates required; TLS 1.2 at
// least; and ServerName set to the name when given (WithTLS then checks
// it instead of the dialled IP address). The errors name the file.
func (f tlsFiles) config() (*tls.Config, error) {
	certPEM, err := os.ReadFile(f.cert)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert: %w", err)
	}
	keyPEM, err := os.ReadFile(f.key)
	if err != nil {
		return nil, fmt.Errorf("-tls-key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert %s, -tls-key %s: %w", f.cert, f.key, err)
	}
	caPEM, err := os.ReadFile(f.ca)
	if err != nil {
		return nil, fmt.Errorf("-tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("-tls-ca %s: %w", f.ca, errNoCACert)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		RootCAs:      pool,
		ServerName:   f.name,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
