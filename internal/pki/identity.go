package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/wardhq/ward"
)

// Files of a runner's identity in its directory.
const (
	RunnerKeyFile  = "runner.key" // the runner's key (PEM PKCS#8, 0600)
	RunnerCertFile = "runner.crt" // its certificate (PEM, 0644)
	RunnerCAFile   = "ca.crt"     // the CA bundle it trusts (PEM, 0644)
)

// Identity is what a runner holds after joining: its ID, its key and
// certificate, and the CA bundle it trusts for server certificates.
type Identity struct {
	RunnerID string
	KeyPEM   []byte
	CertPEM  []byte
	CAPEM    []byte
}

// check parses the identity and checks it holds together: the key matches
// the certificate, the certificate names RunnerID, is a client certificate
// and is signed by a CA of the bundle. Time is not checked: an expired
// identity still loads, so the runner can tell why it is refused.
func (id Identity) check() (*x509.Certificate, []*x509.Certificate, error) {
	key, err := parseKey(id.KeyPEM, RunnerKeyFile)
	if err != nil {
		return nil, nil, err
	}
	cert, err := parseOneCert(id.CertPEM, RunnerCertFile)
	if err != nil {
		return nil, nil, err
	}
	cas, err := parseCerts(id.CAPEM, RunnerCAFile)
	if err != nil {
		return nil, nil, err
	}
	if len(cas) == 0 {
		return nil, nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s: holds no certificate", RunnerCAFile)
	}
	if !keyMatches(key, cert) {
		return nil, nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s does not match %s", RunnerKeyFile, RunnerCertFile)
	}
	rid, ok := runnerIDOf(cert)
	if !ok || !hasExtKeyUsage(cert, x509.ExtKeyUsageClientAuth) {
		return nil, nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s is not a runner certificate", RunnerCertFile)
	}
	if id.RunnerID != "" && rid != id.RunnerID {
		return nil, nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s names runner %s, not %s", RunnerCertFile, rid, id.RunnerID)
	}
	signed := false
	for _, c := range cas {
		if err := checkCACert(c, RunnerCAFile); err != nil {
			return nil, nil, err
		}
		if cert.CheckSignatureFrom(c) == nil {
			signed = true
		}
	}
	if !signed {
		return nil, nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s is not signed by a CA of %s", RunnerCertFile, RunnerCAFile)
	}
	return cert, cas, nil
}

// SaveIdentity writes id to dir (created 0700 if missing): runner.key
// (0600), runner.crt and ca.crt, each atomically. The identity is checked
// first; see LoadIdentity. An empty RunnerID takes the certificate's.
func SaveIdentity(dir string, id Identity) error {
	if _, _, err := id.check(); err != nil {
		return err
	}
	if err := makeDir(dir); err != nil {
		return err
	}
	if err := writeFileAtomic(dir, RunnerKeyFile, id.KeyPEM, keyMode); err != nil {
		return err
	}
	if err := writeFileAtomic(dir, RunnerCertFile, id.CertPEM, certMode); err != nil {
		return err
	}
	return writeFileAtomic(dir, RunnerCAFile, id.CAPEM, certMode)
}

// LoadIdentity reads the identity in dir. The runner ID comes from the
// certificate. The files must hold together: the key matches the
// certificate, which is a runner certificate signed by a CA of the bundle;
// otherwise it is an invalid_argument error. A missing file is an error
// wrapping fs.ErrNotExist.
func LoadIdentity(dir string) (Identity, error) {
	var id Identity
	var err error
	if id.KeyPEM, err = readFile(dir, RunnerKeyFile); err != nil {
		return Identity{}, err
	}
	if id.CertPEM, err = readFile(dir, RunnerCertFile); err != nil {
		return Identity{}, err
	}
	if id.CAPEM, err = readFile(dir, RunnerCAFile); err != nil {
		return Identity{}, err
	}
	cert, _, err := id.check()
	if err != nil {
		return Identity{}, err
	}
	id.RunnerID, _ = runnerIDOf(cert)
	return id, nil
}

// ClientTLS returns the runner's TLS configuration for the runner API: TLS
// 1.3, its certificate presented to the server, and only the CA bundle of
// the identity trusted for the server's certificate. The caller (or
// net/http) sets ServerName.
func (id Identity) ClientTLS() (*tls.Config, error) {
	if _, _, err := id.check(); err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(id.CertPEM, id.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: runner key pair: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(id.CAPEM) {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s: holds no certificate", RunnerCAFile)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
	}, nil
}

// Expires returns when the runner certificate expires, or the zero time if
// it does not parse.
func (id Identity) Expires() time.Time {
	c, err := parseOneCert(id.CertPEM, RunnerCertFile)
	if err != nil {
		return time.Time{}
	}
	return c.NotAfter
}
