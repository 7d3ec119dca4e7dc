package pki_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/pki"
)

func TestIdentityRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, ca := newCA(t, now)
	r := newRunner(t, ca, "r7", now, 3*time.Hour)
	dir := filepath.Join(t.TempDir(), "runner")
	if err := pki.SaveIdentity(dir, r.identity("r7", ca.Bundle())); err != nil {
		t.Fatalf("SaveIdentity: %v", err)
	}
	wantMode(t, dir, 0o700)
	wantMode(t, filepath.Join(dir, "runner.key"), 0o600)
	wantMode(t, filepath.Join(dir, "runner.crt"), 0o644)
	wantMode(t, filepath.Join(dir, "ca.crt"), 0o644)

	id, err := pki.LoadIdentity(dir)
	if err != nil {
		t.Fatalf("LoadIdentity: %v", err)
	}
	if id.RunnerID != "r7" || !bytes.Equal(id.KeyPEM, r.keyPEM) || !bytes.Equal(id.CertPEM, r.certPEM) || !bytes.Equal(id.CAPEM, ca.Bundle()) {
		t.Fatalf("loaded identity differs: runner %q", id.RunnerID)
	}
	if want := parseCert(t, r.certPEM).NotAfter; !id.Expires().Equal(want) {
		t.Errorf("Expires = %s, want %s", id.Expires(), want)
	}
	if !(pki.Identity{CertPEM: []byte("junk")}).Expires().IsZero() {
		t.Error("Expires of a broken certificate is not zero")
	}

	cfg, err := id.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS13 || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.InsecureSkipVerify {
		t.Fatalf("ClientTLS = %+v", cfg)
	}
	o := handshake(t, pki.ServerTLS(ca, serverCert(t, ca, now)), cfg)
	o.wantAccepted(t)
	if got, ok := pki.RunnerID(&o.server); !ok || got != "r7" {
		t.Fatalf("RunnerID = %q, %v", got, ok)
	}

	// Saving again replaces the files (a renewal).
	r2 := newRunner(t, ca, "r7", now, 5*time.Hour)
	if err := pki.SaveIdentity(dir, r2.identity("", ca.Bundle())); err != nil {
		t.Fatalf("SaveIdentity again: %v", err)
	}
	id2, err := pki.LoadIdentity(dir)
	if err != nil || !bytes.Equal(id2.CertPEM, r2.certPEM) || id2.RunnerID != "r7" {
		t.Fatalf("after renewal: %v", err)
	}
}

func TestIdentityRejects(t *testing.T) {
	t.Parallel()
	now := fixed
	_, ca := newCA(t, now)
	_, foreign := newCA(t, now)
	r := newRunner(t, ca, "r1", now, time.Hour)
	other := newRunner(t, ca, "r2", now, time.Hour)
	srvCert := serverCert(t, ca, now)
	srvPEM := encodePEM("CERTIFICATE", srvCert.Certificate[0])

	cases := []struct {
		name string
		id   pki.Identity
	}{
		{"key of another runner", pki.Identity{RunnerID: "r1", KeyPEM: other.keyPEM, CertPEM: r.certPEM, CAPEM: ca.Bundle()}},
		{"another runner's ID", pki.Identity{RunnerID: "r2", KeyPEM: r.keyPEM, CertPEM: r.certPEM, CAPEM: ca.Bundle()}},
		{"foreign CA bundle", pki.Identity{RunnerID: "r1", KeyPEM: r.keyPEM, CertPEM: r.certPEM, CAPEM: foreign.Bundle()}},
		{"empty CA bundle", pki.Identity{RunnerID: "r1", KeyPEM: r.keyPEM, CertPEM: r.certPEM}},
		{"garbage key", pki.Identity{RunnerID: "r1", KeyPEM: []byte("junk"), CertPEM: r.certPEM, CAPEM: ca.Bundle()}},
		{"garbage certificate", pki.Identity{RunnerID: "r1", KeyPEM: r.keyPEM, CertPEM: []byte("junk"), CAPEM: ca.Bundle()}},
		{"leaf as CA", pki.Identity{RunnerID: "r1", KeyPEM: r.keyPEM, CertPEM: r.certPEM, CAPEM: r.certPEM}},
		{"server certificate", pki.Identity{KeyPEM: mustKeyPEM(t, srvCert.PrivateKey), CertPEM: srvPEM, CAPEM: ca.Bundle()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			wantCode(t, pki.SaveIdentity(dir, tc.id), ward.CodeInvalidArgument)
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused identity left %d files", len(entries))
			}
			_, err := tc.id.ClientTLS()
			wantCode(t, err, ward.CodeInvalidArgument)
		})
	}

	// LoadIdentity checks the files the same way.
	dir := t.TempDir()
	if err := pki.SaveIdentity(dir, r.identity("r1", ca.Bundle())); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "ca.crt"), foreign.Bundle())
	_, err := pki.LoadIdentity(dir)
	wantCode(t, err, ward.CodeInvalidArgument)
	os.Remove(filepath.Join(dir, "runner.key"))
	if _, err := pki.LoadIdentity(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadIdentity without runner.key: %v", err)
	}
}
