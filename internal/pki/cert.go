package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/wardhq/ward"
)

// runnerURIScheme and runnerURIHost make a runner's URI SAN,
// ward://runner/<id>.
const (
	runnerURIScheme = "ward"
	runnerURIHost   = "runner"
	maxRunnerIDLen  = 128
)

// validRunnerID reports whether id can name a runner in a certificate:
// 1–128 ASCII letters, digits, '-', '_' or '.'.
func validRunnerID(id string) bool {
	if len(id) == 0 || len(id) > maxRunnerIDLen {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// runnerURI returns the URI SAN of a runner.
func runnerURI(id string) *url.URL {
	return &url.URL{Scheme: runnerURIScheme, Host: runnerURIHost, Path: "/" + id}
}

// runnerIDOf returns the runner ID of a certificate's URI SANs: exactly one
// ward:// URI, of the form ward://runner/<id>.
func runnerIDOf(c *x509.Certificate) (string, bool) {
	id, found := "", false
	for _, u := range c.URIs {
		if u.Scheme != runnerURIScheme {
			continue
		}
		if found {
			return "", false
		}
		found = true
		rest, ok := strings.CutPrefix(u.Path, "/")
		if !ok || u.Host != runnerURIHost || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" ||
			!validRunnerID(rest) || u.String() != runnerURI(rest).String() {
			return "", false
		}
		id = rest
	}
	return id, found
}

// hasExtKeyUsage reports whether c lists usage among its extended key
// usages.
func hasExtKeyUsage(c *x509.Certificate, usage x509.ExtKeyUsage) bool {
	for _, u := range c.ExtKeyUsage {
		if u == usage {
			return true
		}
	}
	return false
}

// NewRunnerKey makes a runner's key (ECDSA P-256) and a certificate request
// for it, both PEM. The request carries no name: the CA names the runner.
func NewRunnerKey() (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate runner key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create certificate request: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return keyPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// parseCSR parses and checks a PEM certificate request: a valid signature
// and an ECDSA P-256 or Ed25519 key.
func parseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	b, rest := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: the CSR is not a single PEM \"CERTIFICATE REQUEST\" block")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: the CSR does not parse: %v", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: the CSR's ECDSA key is on %s; want P-256", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: the CSR's key is %s; want ECDSA P-256 or Ed25519", csr.PublicKeyAlgorithm)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: the CSR's signature does not verify")
	}
	return csr, nil
}

// issue signs an end-entity certificate for pub, valid from a minute before
// now to now+ttl (no later than the signer's own expiry).
func (ca *CA) issue(tmpl *x509.Certificate, pub any, now time.Time, ttl time.Duration) ([]byte, error) {
	if ttl <= 0 {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: certificate lifetime %s is not positive", ttl)
	}
	if !now.Before(ca.cert.NotAfter) {
		return nil, ward.Errorf(ward.CodeInvalidState, "pki: the CA expired at %s", ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = now.Add(ttl)
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = false
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate: %w", err)
	}
	return der, nil
}

// SignRunner signs a runner certificate for the key of csrPEM, valid from a
// minute before now to now+ttl (capped at the CA's expiry). The CSR must
// carry a valid signature and an ECDSA P-256 or Ed25519 key; its subject and
// SANs are ignored. The certificate names the runner twice, CN = runnerID
// and the URI SAN ward://runner/<runnerID>, and is good for client
// authentication only. A bad CSR, runner ID or ttl is an invalid_argument
// error.
func (ca *CA) SignRunner(csrPEM []byte, runnerID string, now time.Time, ttl time.Duration) (certPEM []byte, err error) {
	if !validRunnerID(runnerID) {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: a runner ID is 1-%d letters, digits, '-', '_' or '.'", maxRunnerIDLen)
	}
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: runnerID},
		URIs:        []*url.URL{runnerURI(runnerID)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := ca.issue(tmpl, csr.PublicKey, now, ttl)
	if err != nil {
		return nil, err
	}
	return encodeCert(der), nil
}

// ServerCert makes a server certificate for the runner listener: a fresh
// ECDSA P-256 key, the hosts as SANs (IP addresses as IP SANs, names as DNS
// SANs), good for server authentication only, valid from a minute before
// now to now+ttl, signed by the signer. The chain holds the leaf and then
// the signer's certificate, which a joining runner checks against its
// token's pin.
func (ca *CA) ServerCert(hosts []string, now time.Time, ttl time.Duration) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, ward.Errorf(ward.CodeInvalidArgument, "pki: a server certificate needs at least one host")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "ward server"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		if !validDNSName(h) {
			return tls.Certificate{}, ward.Errorf(ward.CodeInvalidArgument, "pki: host %q is neither an IP address nor a DNS name", h)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generate server key: %w", err)
	}
	der, err := ca.issue(tmpl, key.Public(), now, ttl)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: parse server certificate: %w", err)
	}
	return tls.Certificate{
		Certificate: [][]byte{der, ca.cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// validDNSName reports whether s is a plausible host name: dot-separated
// labels of letters, digits, '-' and '_', a leading "*." allowed, at most
// 253 characters.
func validDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	s = strings.TrimPrefix(s, "*.")
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := range len(label) {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
