package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"testing"
	"time"

	"github.com/wardhq/ward/internal/pki"
)

// TestClientCertificates runs handshakes against the runner listener with
// every kind of client certificate: only one from the cluster CA, valid now
// and made for client authentication, gets a connection.
func TestClientCertificates(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, ca := newCA(t, now)
	_, foreign := newCA(t, now)
	srv := pki.ServerTLS(ca, serverCert(t, ca, now))

	// An impostor CA with the real CA's name and key ID but its own key.
	impTmpl := &x509.Certificate{
		Subject:               ca.Cert().Subject,
		SubjectKeyId:          ca.Cert().SubjectKeyId,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	impPEM, _, impKey := makeCert(t, impTmpl, nil, nil)
	imp := parseCert(t, impPEM)

	selfPEM, selfKey, _ := makeCert(t, runnerTemplate("r1", now), nil, nil)
	impLeafPEM, impLeafKey, _ := makeCert(t, runnerTemplate("r1", now), imp, impKey)
	srvAsClient := serverCert(t, ca, now)

	cases := []struct {
		name   string
		cert   *tls.Certificate // nil: none
		accept bool
		id     string // RunnerID on the server when accepted; "" = none
	}{
		{"runner cert from the CA", ptr(newRunner(t, ca, "r1", now, time.Hour).pair(t)), true, "r1"},
		{"no client certificate", nil, true, ""},
		{"self-signed, same runner ID", ptr(runner{selfKey, selfPEM}.pair(t)), false, ""},
		{"impostor CA with the same name", ptr(runner{impLeafKey, impLeafPEM}.pair(t)), false, ""},
		{"foreign CA", ptr(newRunner(t, foreign, "r1", now, time.Hour).pair(t)), false, ""},
		{"expired", ptr(newRunner(t, ca, "r1", now.Add(-2*time.Hour), time.Hour).pair(t)), false, ""},
		{"not yet valid", ptr(newRunner(t, ca, "r1", now.Add(2*time.Hour), time.Hour).pair(t)), false, ""},
		{"server certificate as client certificate", ptr(srvAsClient), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cli := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool()}
			if tc.cert != nil {
				// Send the certificate whatever CAs the server names, as a
				// hostile client would (crypto/tls would hold back one
				// whose issuer the server does not name).
				cli.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return tc.cert, nil
				}
			}
			o := handshake(t, srv, cli)
			if !tc.accept {
				o.wantRefused(t)
				return
			}
			o.wantAccepted(t)
			id, ok := pki.RunnerID(&o.server)
			if ok != (tc.id != "") || id != tc.id {
				t.Fatalf("RunnerID = %q, %v; want %q", id, ok, tc.id)
			}
		})
	}
}

// TestServerCertificates: a runner accepts only a server certificate from
// its CA bundle made for server authentication.
func TestServerCertificates(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, ca := newCA(t, now)
	_, foreign := newCA(t, now)
	r := newRunner(t, ca, "r1", now, time.Hour)
	cli := r.clientTLS(t, "r1", ca.Bundle())

	// A runner certificate with the CA after it, as a server would send.
	other := newRunner(t, ca, "r2", now, time.Hour).pair(t)
	other.Certificate = append(other.Certificate, ca.Cert().Raw)

	cases := []struct {
		name   string
		cert   tls.Certificate
		accept bool
	}{
		{"server cert from the CA", serverCert(t, ca, now), true},
		{"server cert from a foreign CA", serverCert(t, foreign, now), false},
		{"runner cert as server cert", other, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := handshake(t, pki.ServerTLS(ca, tc.cert), cli)
			if tc.accept {
				o.wantAccepted(t)
				if id, ok := pki.RunnerID(&o.server); !ok || id != "r1" {
					t.Fatalf("RunnerID = %q, %v; want r1", id, ok)
				}
			} else if o.clientErr == nil {
				t.Fatal("the runner accepted the server")
			}
		})
	}
}

// TestServerTLS checks the listener's settings.
func TestServerTLS(t *testing.T) {
	t.Parallel()
	_, ca := newCA(t, fixed)
	cfg := pki.ServerTLS(ca, tls.Certificate{})
	if cfg.MinVersion != tls.VersionTLS13 || cfg.ClientAuth != tls.VerifyClientCertIfGiven || cfg.ClientCAs == nil || cfg.InsecureSkipVerify {
		t.Fatalf("ServerTLS = %+v", cfg)
	}
}

// TestTLS12Refused: the listener speaks TLS 1.3 only.
func TestTLS12Refused(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, ca := newCA(t, now)
	cli := &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12}
	handshake(t, pki.ServerTLS(ca, serverCert(t, ca, now)), cli).wantRefused(t)
}

// TestRunnerIDNeedsVerifiedChain: RunnerID reads verified chains only, and
// only runner client certificates.
func TestRunnerIDNeedsVerifiedChain(t *testing.T) {
	t.Parallel()
	_, ca := newCA(t, fixed)
	leaf := parseCert(t, newRunner(t, ca, "r1", fixed, time.Hour).certPEM)

	tmpl := runnerTemplate("r1", fixed)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	serverUsage, _, _ := makeCert(t, tmpl, nil, nil)

	tmpl = runnerTemplate("r1", fixed)
	tmpl.URIs = append(tmpl.URIs, &url.URL{Scheme: "ward", Host: "runner", Path: "/r2"})
	twoIDs, _, _ := makeCert(t, tmpl, nil, nil)

	tmpl = runnerTemplate("r1", fixed)
	tmpl.URIs = []*url.URL{{Scheme: "ward", Host: "server", Path: "/r1"}}
	otherHost, _, _ := makeCert(t, tmpl, nil, nil)

	tmpl = runnerTemplate("r1", fixed)
	tmpl.URIs = []*url.URL{{Scheme: "ward", Host: "runner", Path: "/r1/x"}}
	badID, _, _ := makeCert(t, tmpl, nil, nil)

	tmpl = runnerTemplate("r1", fixed)
	tmpl.URIs = nil
	tmpl.Subject = pkix.Name{CommonName: "r1"}
	cnOnly, _, _ := makeCert(t, tmpl, nil, nil)

	chain := func(c *x509.Certificate) *tls.ConnectionState {
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c, ca.Cert()}}}
	}
	cases := []struct {
		name string
		cs   *tls.ConnectionState
		want string
	}{
		{"nil", nil, ""},
		{"verified runner cert", chain(leaf), "r1"},
		{"presented but not verified", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}, ""},
		{"empty verified chain", &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{}}}, ""},
		{"server usage", chain(parseCert(t, serverUsage)), ""},
		{"two runner IDs", chain(parseCert(t, twoIDs)), ""},
		{"other URI host", chain(parseCert(t, otherHost)), ""},
		{"malformed ID", chain(parseCert(t, badID)), ""},
		{"CN only", chain(parseCert(t, cnOnly)), ""},
	}
	for _, tc := range cases {
		id, ok := pki.RunnerID(tc.cs)
		if id != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: RunnerID = %q, %v; want %q", tc.name, id, ok, tc.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
