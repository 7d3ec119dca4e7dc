package pki_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/pki"
)

// csrFor makes a PEM CSR for key with a subject and SANs the CA must
// ignore.
func csrFor(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "admin", Organization: []string{"ward"}},
		DNSNames:       []string{"ward.internal"},
		IPAddresses:    []net.IP{net.ParseIP("10.0.0.1")},
		EmailAddresses: []string{"root@example.com"},
		URIs:           []*url.URL{{Scheme: "ward", Host: "runner", Path: "/someone-else"}},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestSignRunner(t *testing.T) {
	t.Parallel()
	_, ca := newCA(t, fixed)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []crypto.Signer{ecKey, edKey} {
		certPEM, err := ca.SignRunner(csrFor(t, key), "r-01.a_b", fixed, 6*time.Hour)
		if err != nil {
			t.Fatalf("SignRunner(%T): %v", key, err)
		}
		c := parseCert(t, certPEM)
		if c.Subject.CommonName != "r-01.a_b" || len(c.Subject.Organization) != 0 {
			t.Errorf("subject = %v", c.Subject)
		}
		if len(c.URIs) != 1 || c.URIs[0].String() != "ward://runner/r-01.a_b" {
			t.Errorf("URIs = %v", c.URIs)
		}
		if len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses) != 0 {
			t.Errorf("CSR SANs copied: %v %v %v", c.DNSNames, c.IPAddresses, c.EmailAddresses)
		}
		if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || c.IsCA {
			t.Errorf("ExtKeyUsage = %v, IsCA %v", c.ExtKeyUsage, c.IsCA)
		}
		if !c.NotBefore.Equal(fixed.Add(-time.Minute)) || !c.NotAfter.Equal(fixed.Add(6*time.Hour)) {
			t.Errorf("validity %s to %s", c.NotBefore, c.NotAfter)
		}
		if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
			t.Errorf("serial %v", c.SerialNumber)
		}
		if err := c.CheckSignatureFrom(ca.Cert()); err != nil {
			t.Errorf("not signed by the CA: %v", err)
		}
		if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(c.PublicKey) {
			t.Error("the certificate is not for the CSR's key")
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: fixed, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("does not verify for client auth: %v", err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: fixed, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
			t.Error("a runner certificate verifies for server auth")
		}
	}

	// Serials differ.
	_, csr, err := pki.NewRunnerKey()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ca.SignRunner(csr, "r1", fixed, time.Hour)
	b, _ := ca.SignRunner(csr, "r1", fixed, time.Hour)
	if parseCert(t, a).SerialNumber.Cmp(parseCert(t, b).SerialNumber) == 0 {
		t.Error("two certificates share a serial")
	}

	// A lifetime past the CA's expiry stops at it.
	c := parseCert(t, mustSign(t, ca, csr, fixed, 20*365*24*time.Hour))
	if !c.NotAfter.Equal(ca.Cert().NotAfter) {
		t.Errorf("NotAfter = %s, want the CA's %s", c.NotAfter, ca.Cert().NotAfter)
	}
	// An expired CA signs nothing.
	_, err = ca.SignRunner(csr, "r1", ca.Cert().NotAfter.Add(time.Second), time.Hour)
	wantCode(t, err, ward.CodeInvalidState)
}

func mustSign(t *testing.T, ca *pki.CA, csr []byte, now time.Time, ttl time.Duration) []byte {
	t.Helper()
	c, err := ca.SignRunner(csr, "r1", now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSignRunnerRejects(t *testing.T) {
	t.Parallel()
	_, ca := newCA(t, fixed)
	_, good, err := pki.NewRunnerKey()
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A CSR whose signature is altered in its last byte.
	blk, _ := pem.Decode(good)
	bad := append([]byte(nil), blk.Bytes...)
	bad[len(bad)-1] ^= 0x01
	badSig := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: bad})
	// A CSR whose key is swapped for another: the signature no longer
	// matches.
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	req, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, err := x509.MarshalPKIXPublicKey(other.Public())
	if err != nil {
		t.Fatal(err)
	}
	oldPub, err := x509.MarshalPKIXPublicKey(req.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	swapped := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte(strings.Replace(string(blk.Bytes), string(oldPub), string(otherPub), 1))})

	cases := []struct {
		name string
		csr  []byte
		id   string
		ttl  time.Duration
	}{
		{"empty", nil, "r1", time.Hour},
		{"garbage", []byte("not a csr at all"), "r1", time.Hour},
		{"garbage in PEM", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte("junk")}), "r1", time.Hour},
		{"wrong PEM type", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes}), "r1", time.Hour},
		{"trailing data", append(append([]byte(nil), good...), "junk"...), "r1", time.Hour},
		{"bad signature", badSig, "r1", time.Hour},
		{"swapped key", swapped, "r1", time.Hour},
		{"RSA key", csrFor(t, rsaKey), "r1", time.Hour},
		{"P-384 key", csrFor(t, p384), "r1", time.Hour},
		{"empty runner ID", good, "", time.Hour},
		{"runner ID with a slash", good, "a/b", time.Hour},
		{"runner ID with a space", good, "a b", time.Hour},
		{"runner ID too long", good, strings.Repeat("a", 129), time.Hour},
		{"zero ttl", good, "r1", 0},
		{"negative ttl", good, "r1", -time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cert, err := ca.SignRunner(tc.csr, tc.id, fixed, tc.ttl)
			if cert != nil {
				t.Error("a certificate came back with the error")
			}
			wantCode(t, err, ward.CodeInvalidArgument)
		})
	}
	if _, err := ca.SignRunner(good, strings.Repeat("a", 128), fixed, time.Hour); err != nil {
		t.Errorf("a 128-character runner ID: %v", err)
	}
}

func TestNewRunnerKey(t *testing.T) {
	t.Parallel()
	keyPEM, csrPEM, err := pki.NewRunnerKey()
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		t.Fatal("key is not PEM PKCS#8")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		t.Fatalf("key %T, want ECDSA P-256", k)
	}
	cb, _ := pem.Decode(csrPEM)
	csr, err := x509.ParseCertificateRequest(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil || !ek.PublicKey.Equal(csr.PublicKey) {
		t.Fatalf("CSR does not belong to the key: %v", err)
	}
	k2, _, err := pki.NewRunnerKey()
	if err != nil || string(k2) == string(keyPEM) {
		t.Fatal("two runner keys are the same")
	}
}

func TestServerCert(t *testing.T) {
	t.Parallel()
	_, ca := newCA(t, fixed)
	c, err := ca.ServerCert([]string{"127.0.0.1", "::1", "ward.internal", "localhost"}, fixed, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 || string(c.Certificate[1]) != string(ca.Cert().Raw) {
		t.Fatalf("chain holds %d certificates, want the leaf and the signer", len(c.Certificate))
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf == nil || !c.Leaf.Equal(leaf) {
		t.Error("Leaf is not the first certificate")
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !leaf.IPAddresses[1].Equal(net.ParseIP("::1")) {
		t.Errorf("IP SANs = %v", leaf.IPAddresses)
	}
	if strings.Join(leaf.DNSNames, ",") != "ward.internal,localhost" {
		t.Errorf("DNS SANs = %v", leaf.DNSNames)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || leaf.IsCA || len(leaf.URIs) != 0 {
		t.Errorf("ExtKeyUsage = %v, IsCA %v, URIs %v", leaf.ExtKeyUsage, leaf.IsCA, leaf.URIs)
	}
	if !leaf.NotAfter.Equal(fixed.Add(24 * time.Hour)) {
		t.Errorf("NotAfter = %s", leaf.NotAfter)
	}
	for _, host := range []string{"127.0.0.1", "ward.internal"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: fixed, DNSName: host}); err != nil {
			t.Errorf("does not verify for %s: %v", host, err)
		}
	}
	if pub, ok := c.PrivateKey.(crypto.Signer); !ok || !pub.Public().(*ecdsa.PublicKey).Equal(leaf.PublicKey) {
		t.Error("private key does not match the leaf")
	}
	if _, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), mustKeyPEM(t, c.PrivateKey)); err != nil {
		t.Errorf("not a usable key pair: %v", err)
	}
	c2, err := ca.ServerCert([]string{"127.0.0.1"}, fixed, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(leaf.PublicKey) {
		t.Error("two server certificates share a key")
	}

	for _, hosts := range [][]string{nil, {""}, {"bad host"}, {"a..b"}, {"-a.b"}, {"127.0.0.1", "x/y"}} {
		_, err := ca.ServerCert(hosts, fixed, time.Hour)
		wantCode(t, err, ward.CodeInvalidArgument)
	}
	_, err = ca.ServerCert([]string{"localhost"}, fixed, 0)
	wantCode(t, err, ward.CodeInvalidArgument)
}

func mustKeyPEM(t *testing.T, k crypto.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
