package pki_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/pki"
	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixed is a point in time for tests that need no real clock.
var fixed = time.Date(2031, 3, 14, 9, 26, 53, 0, time.UTC)

// newCA creates a CA in a fresh directory at now and loads it.
func newCA(t *testing.T, now time.Time) (string, *pki.CA) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	created, err := pki.InitCA(dir, now)
	if err != nil || !created {
		t.Fatalf("InitCA = %v, %v; want created", created, err)
	}
	return dir, loadCA(t, dir)
}

func loadCA(t *testing.T, dir string) *pki.CA {
	t.Helper()
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	return ca
}

// runner is a runner's key and certificate signed by ca.
type runner struct {
	keyPEM, certPEM []byte
}

func newRunner(t *testing.T, ca *pki.CA, id string, now time.Time, ttl time.Duration) runner {
	t.Helper()
	keyPEM, csrPEM, err := pki.NewRunnerKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignRunner(csrPEM, id, now, ttl)
	if err != nil {
		t.Fatalf("SignRunner: %v", err)
	}
	return runner{keyPEM: keyPEM, certPEM: certPEM}
}

func (r runner) pair(t *testing.T) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(r.certPEM, r.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// identity is r with the CA bundle caPEM.
func (r runner) identity(id string, caPEM []byte) pki.Identity {
	return pki.Identity{RunnerID: id, KeyPEM: r.keyPEM, CertPEM: r.certPEM, CAPEM: caPEM}
}

// clientTLS is the runner's TLS configuration trusting caPEM.
func (r runner) clientTLS(t *testing.T, id string, caPEM []byte) *tls.Config {
	t.Helper()
	cfg, err := r.identity(id, caPEM).ClientTLS()
	if err != nil {
		t.Fatalf("ClientTLS: %v", err)
	}
	return cfg
}

func serverCert(t *testing.T, ca *pki.CA, now time.Time) tls.Certificate {
	t.Helper()
	c, err := ca.ServerCert([]string{"127.0.0.1"}, now, time.Hour)
	if err != nil {
		t.Fatalf("ServerCert: %v", err)
	}
	return c
}

// outcome is what both ends of a handshake saw.
type outcome struct {
	serverErr, clientErr error
	server               tls.ConnectionState // the server's view, when it succeeded
}

// handshake connects a TLS client to a TLS server over loopback TCP. The
// server writes one byte after a successful handshake and the client reads
// it: in TLS 1.3 a client learns that the server refused its certificate
// only on its first read.
func handshake(t *testing.T, srv, cli *tls.Config) outcome {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type side struct {
		err   error
		state tls.ConnectionState
	}
	done := make(chan side, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- side{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		tc := tls.Server(c, srv)
		if err := tc.Handshake(); err != nil {
			done <- side{err: err}
			return
		}
		st := tc.ConnectionState()
		_, err = tc.Write([]byte{'k'})
		done <- side{err: err, state: st}
	}()
	cli = cli.Clone()
	if cli.ServerName == "" && !cli.InsecureSkipVerify {
		cli.ServerName = "127.0.0.1"
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	tc := tls.Client(c, cli)
	cerr := tc.Handshake()
	if cerr == nil {
		var b [1]byte
		if _, cerr = io.ReadFull(tc, b[:]); cerr == nil && b[0] != 'k' {
			cerr = errors.New("unexpected byte")
		}
	}
	tc.Close()
	s := <-done
	return outcome{serverErr: s.err, clientErr: cerr, server: s.state}
}

// wantAccepted fails unless both ends completed the handshake.
func (o outcome) wantAccepted(t *testing.T) {
	t.Helper()
	if o.serverErr != nil || o.clientErr != nil {
		t.Fatalf("handshake refused: server %v, client %v", o.serverErr, o.clientErr)
	}
}

// wantRefused fails unless both ends saw the handshake fail.
func (o outcome) wantRefused(t *testing.T) {
	t.Helper()
	if o.serverErr == nil || o.clientErr == nil {
		t.Fatalf("handshake not refused on both ends: server %v, client %v", o.serverErr, o.clientErr)
	}
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code ward.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want code %s", code)
	}
	if got := ward.CodeOf(err); got != code {
		t.Fatalf("code = %s (%v), want %s", got, err, code)
	}
}

// wantMode fails unless path has the permission bits mode.
func wantMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != mode {
		t.Errorf("%s: mode %04o, want %04o", filepath.Base(path), got, mode)
	}
}

// makeCert makes a certificate for tmpl with a fresh key, self-signed or
// by parent/parentKey when given; it returns the PEM of both halves.
func makeCert(t *testing.T, tmpl, parent *x509.Certificate, parentKey crypto.Signer) (certPEM, keyPEM []byte, key crypto.Signer) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, k
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(42)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), k
}

// runnerTemplate is a client certificate template naming runner id, as the
// CA would make it.
func runnerTemplate(id string, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: id},
		URIs:                  []*url.URL{{Scheme: "ward", Host: "runner", Path: "/" + id}},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
	}
}

func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countCerts returns the number of certificates in a PEM bundle.
func countCerts(b []byte) int {
	return bytes.Count(b, []byte("-----BEGIN CERTIFICATE-----"))
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
