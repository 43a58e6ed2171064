package zongzi

import (
	"crypto/tls"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// WithTLS makes every connection between hosts mutually authenticated TLS
// with cfg: the raft port's (raft messages and snapshots, through the
// agent's own transport module) and the API port's (the message bus:
// joins, membership changes, forwarded requests), each host serving and
// dialling with the same config. A host, or anyone, whose certificate cfg
// does not verify can neither join nor reach a shard. Give it to every
// agent of a cluster: one without it cannot talk to those with it.
//
// cfg must be usable at both ends: certificates (Certificates, or
// GetCertificate and GetClientCertificate), ClientAuth set to
// tls.RequireAndVerifyClientCert, ClientCAs and RootCAs. It may not skip
// verification, allow a version below TLS 1.2 or set GetConfigForClient,
// whose configs would escape these checks. The agent keeps a clone, with
// MinVersion TLS 1.2 unless set higher.
//
// A host verifies the certificate of the host it dials against the host
// part of the address it dials, the advertised API or raft address: an IP
// address must be among the certificate's IP SANs, a host name among its
// DNS names. Issue each host a certificate for its addresses, usable for
// server and client authentication. Unless cfg sets ServerName: then every
// host's certificate must carry that name, and the addresses are not
// checked. A host accepts the client certificate of any host that ClientCAs
// verifies: the CA is the cluster's membership. VerifyPeerCertificate and
// VerifyConnection, if set, run besides.
//
// It covers the agent's two ports only: not gossip (WithAddrGossip), whose
// messages stay plain, nor what the process serves itself. It cannot be
// combined with a host config that sets Dragonboat's MutualTLS or names
// its own transport (WithHostConfig).
func WithTLS(cfg *tls.Config) AgentOption {
	return func(a *Agent) error {
		if err := checkTLS(cfg); err != nil {
			return err
		}
		a.tls = cfg.Clone()
		if a.tls.MinVersion < tls.VersionTLS12 {
			a.tls.MinVersion = tls.VersionTLS12
		}
		return nil
	}
}

// checkTLS refuses a TLS config that does not make connections mutually
// authenticated at both ends.
func checkTLS(cfg *tls.Config) error {
	if cfg == nil {
		return fmt.Errorf("%w: nil TLS config", ErrInvalidConfig)
	}
	for i, c := range cfg.Certificates {
		if len(c.Certificate) == 0 || c.PrivateKey == nil {
			return fmt.Errorf("%w: TLS config: certificate %d has no certificate chain or no private key", ErrInvalidConfig, i)
		}
	}
	certs := len(cfg.Certificates) > 0
	var problem string
	switch {
	case !certs && cfg.GetCertificate == nil:
		problem = "no certificate to serve with (Certificates or GetCertificate)"
	case !certs && cfg.GetClientCertificate == nil:
		problem = "no certificate to dial with (Certificates or GetClientCertificate)"
	case cfg.ClientAuth != tls.RequireAndVerifyClientCert:
		problem = fmt.Sprintf("ClientAuth is %v, want RequireAndVerifyClientCert", cfg.ClientAuth)
	case cfg.ClientCAs == nil:
		problem = "no ClientCAs to verify the certificates of dialling hosts"
	case cfg.RootCAs == nil:
		problem = "no RootCAs to verify the certificates of dialled hosts"
	case cfg.InsecureSkipVerify:
		problem = "InsecureSkipVerify is set"
	case cfg.MinVersion != 0 && cfg.MinVersion < tls.VersionTLS12 || cfg.MaxVersion != 0 && cfg.MaxVersion < tls.VersionTLS12:
		problem = "it allows a version below TLS 1.2"
	case cfg.GetConfigForClient != nil:
		problem = "GetConfigForClient is set: rotate certificates with GetCertificate and GetClientCertificate"
	default:
		return nil
	}
	return fmt.Errorf("%w: TLS config: %s", ErrInvalidConfig, problem)
}

// checkTLSHost refuses WithTLS together with a host config that brings
// its own TLS or transport: WithTLS needs the agent's transport module.
func (a *Agent) checkTLSHost() error {
	if a.tls == nil {
		return nil
	}
	nhc := a.hostConfig
	switch {
	case nhc.MutualTLS:
		return fmt.Errorf("%w: WithTLS and a host config that sets MutualTLS: WithTLS covers the raft port, so leave MutualTLS and its files unset", ErrInvalidConfig)
	//lint:ignore SA1019 a config may still set the deprecated field
	case nhc.Expert.TransportFactory != nil || nhc.RaftRPCFactory != nil:
		return fmt.Errorf("%w: WithTLS and a host config that names its own transport: WithTLS needs the agent's", ErrInvalidConfig)
	}
	return nil
}

// busOptions returns the options of the message bus's connections: TLS
// with WithTLS's config, none without it (plain).
func (a *Agent) busOptions() ([]grpc.DialOption, []grpc.ServerOption) {
	if a.tls == nil {
		return nil, nil
	}
	creds := credentials.NewTLS(a.tls)
	return []grpc.DialOption{grpc.WithTransportCredentials(creds)}, []grpc.ServerOption{grpc.Creds(creds)}
}
