package pki

import (
	"crypto/tls"
	"crypto/x509"
)

// ServerTLS returns the TLS configuration of the runner listener: TLS 1.3,
// the server certificate cert, and client certificates verified at the
// handshake against ca.Pool() when one is given. A client without a
// certificate still connects, for the join call; every other handler
// requires RunnerID to answer. The pool is taken now: load the CA again and
// make a new configuration after a rotation step.
func ServerTLS(ca *CA, cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.Pool(),
	}
}

// RunnerID returns the runner a connection belongs to, from its verified
// client chain only: the leaf must carry the URI SAN ward://runner/<id> and
// the ClientAuth usage. It returns false when no chain was verified (no
// client certificate) or the leaf is not a runner certificate.
func RunnerID(cs *tls.ConnectionState) (string, bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", false
	}
	leaf := cs.VerifiedChains[0][0]
	if !hasExtKeyUsage(leaf, x509.ExtKeyUsageClientAuth) {
		return "", false
	}
	return runnerIDOf(leaf)
}
