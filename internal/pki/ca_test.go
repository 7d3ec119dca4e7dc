package pki_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/pki"
)

func TestInitCA(t *testing.T) {
	t.Parallel()
	dir, ca := newCA(t, fixed)
	c := ca.Cert()
	if c.Subject.CommonName != "ward cluster CA" || !c.IsCA || !c.BasicConstraintsValid || !c.MaxPathLenZero || c.MaxPathLen != 0 {
		t.Errorf("CA certificate: CN %q, IsCA %v, MaxPathLen %d/%v", c.Subject.CommonName, c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsage = %v", c.KeyUsage)
	}
	if !c.NotBefore.Equal(fixed.Add(-time.Minute)) || !c.NotAfter.Equal(fixed.AddDate(10, 0, 0)) {
		t.Errorf("validity %s to %s, want %s to %s", c.NotBefore, c.NotAfter, fixed.Add(-time.Minute), fixed.AddDate(10, 0, 0))
	}
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", c.PublicKey)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if ca.Next() != nil || countCerts(ca.Bundle()) != 1 {
		t.Errorf("a new CA has a successor or a bundle of %d", countCerts(ca.Bundle()))
	}
	if !bytes.Equal(ca.Bundle(), mustRead(t, filepath.Join(dir, "ca.crt"))) {
		t.Error("Bundle differs from ca.crt")
	}
	wantMode(t, dir, 0o700)
	wantMode(t, filepath.Join(dir, "ca.key"), 0o600)
	wantMode(t, filepath.Join(dir, "ca.crt"), 0o644)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want ca.crt and ca.key only", len(entries))
	}

	// A second InitCA leaves the CA alone.
	before := mustRead(t, filepath.Join(dir, "ca.key"))
	created, err := pki.InitCA(dir, fixed.Add(time.Hour))
	if err != nil || created {
		t.Fatalf("InitCA again = %v, %v; want not created", created, err)
	}
	if !bytes.Equal(before, mustRead(t, filepath.Join(dir, "ca.key"))) || !loadCA(t, dir).Cert().Equal(c) {
		t.Fatal("InitCA replaced an existing CA")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCAErrors(t *testing.T) {
	t.Parallel()
	_, other := newCA(t, fixed)
	leafPEM, leafKey, _ := makeCert(t, runnerTemplate("r1", fixed), nil, nil)

	cases := []struct {
		name   string
		mutate func(t *testing.T, dir string, foreignDir string)
		code   ward.Code // "" = wraps fs.ErrNotExist
		msg    string
	}{
		{"missing ca.crt", func(t *testing.T, dir, _ string) { os.Remove(filepath.Join(dir, "ca.crt")) }, "", ""},
		{"missing ca.key", func(t *testing.T, dir, _ string) { os.Remove(filepath.Join(dir, "ca.key")) }, "", ""},
		{"garbage ca.crt", func(t *testing.T, dir, _ string) { mustWrite(t, filepath.Join(dir, "ca.crt"), []byte("hello")) }, ward.CodeInvalidArgument, "ca.crt"},
		{"empty ca.crt", func(t *testing.T, dir, _ string) { mustWrite(t, filepath.Join(dir, "ca.crt"), nil) }, ward.CodeInvalidArgument, "ca.crt"},
		{"two certs in ca.crt", func(t *testing.T, dir, _ string) {
			mustWrite(t, filepath.Join(dir, "ca.crt"), append(mustRead(t, filepath.Join(dir, "ca.crt")), other.Bundle()...))
		}, ward.CodeInvalidArgument, "ca.crt"},
		{"garbage ca.key", func(t *testing.T, dir, _ string) {
			mustWrite(t, filepath.Join(dir, "ca.key"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
		}, ward.CodeInvalidArgument, "ca.key"},
		{"mismatched key", func(t *testing.T, dir, foreign string) {
			mustWrite(t, filepath.Join(dir, "ca.key"), mustRead(t, filepath.Join(foreign, "ca.key")))
		}, ward.CodeInvalidArgument, "does not match"},
		{"not a CA", func(t *testing.T, dir, _ string) {
			mustWrite(t, filepath.Join(dir, "ca.crt"), leafPEM)
			mustWrite(t, filepath.Join(dir, "ca.key"), leafKey)
		}, ward.CodeInvalidArgument, "not a CA"},
		{"garbage ca-trusted.crt", func(t *testing.T, dir, _ string) { mustWrite(t, filepath.Join(dir, "ca-trusted.crt"), []byte("junk")) }, ward.CodeInvalidArgument, "ca-trusted.crt"},
		{"leaf in ca-trusted.crt", func(t *testing.T, dir, _ string) { mustWrite(t, filepath.Join(dir, "ca-trusted.crt"), leafPEM) }, ward.CodeInvalidArgument, "not a CA"},
		{"ca-next.crt without its key", func(t *testing.T, dir, foreign string) {
			mustWrite(t, filepath.Join(dir, "ca-next.crt"), mustRead(t, filepath.Join(foreign, "ca.crt")))
		}, "", ""},
		{"mismatched ca-next.key", func(t *testing.T, dir, foreign string) {
			mustWrite(t, filepath.Join(dir, "ca-next.crt"), mustRead(t, filepath.Join(foreign, "ca.crt")))
			mustWrite(t, filepath.Join(dir, "ca-next.key"), mustRead(t, filepath.Join(dir, "ca.key")))
		}, ward.CodeInvalidArgument, "does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, _ := newCA(t, fixed)
			foreign, _ := newCA(t, fixed)
			tc.mutate(t, dir, foreign)
			_, err := pki.LoadCA(dir)
			if tc.code == "" {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("err = %v, want fs.ErrNotExist", err)
				}
				return
			}
			wantCode(t, err, tc.code)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "BEGIN") {
				t.Errorf("err quotes file contents: %q", err)
			}
		})
	}
	if _, err := pki.LoadCA(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadCA on a missing dir: %v", err)
	}
}

// TestRotation walks the documented rotation over real handshakes.
func TestRotation(t *testing.T) {
	t.Parallel()
	now := time.Now()
	dir, ca1 := newCA(t, now)
	old := newRunner(t, ca1, "old", now, time.Hour)
	oldBundle := ca1.Bundle()

	// 1. Stage: the successor is trusted, the signer unchanged.
	if err := pki.StageCA(dir, now); err != nil {
		t.Fatalf("StageCA: %v", err)
	}
	wantMode(t, filepath.Join(dir, "ca-next.key"), 0o600)
	wantMode(t, filepath.Join(dir, "ca-next.crt"), 0o644)
	wantCode(t, pki.StageCA(dir, now), ward.CodeAlreadyExists)
	staged := loadCA(t, dir)
	if !staged.Cert().Equal(ca1.Cert()) || staged.Next() == nil || staged.Next().Equal(ca1.Cert()) {
		t.Fatal("StageCA changed the signer or staged nothing")
	}
	if countCerts(staged.Bundle()) != 2 {
		t.Fatalf("bundle after stage holds %d certificates, want 2", countCerts(staged.Bundle()))
	}
	// A certificate of the successor: sign with a copy of it as a signer.
	nextDir := t.TempDir()
	mustWrite(t, filepath.Join(nextDir, "ca.crt"), mustRead(t, filepath.Join(dir, "ca-next.crt")))
	mustWrite(t, filepath.Join(nextDir, "ca.key"), mustRead(t, filepath.Join(dir, "ca-next.key")))
	early := newRunner(t, loadCA(t, nextDir), "early", now, time.Hour)
	srv := pki.ServerTLS(staged, serverCert(t, staged, now))
	handshake(t, srv, old.clientTLS(t, "old", oldBundle)).wantAccepted(t)
	handshake(t, srv, early.clientTLS(t, "early", staged.Bundle())).wantAccepted(t)
	// Before staging, the successor's certificates were unknown.
	handshake(t, pki.ServerTLS(ca1, serverCert(t, ca1, now)), early.clientTLS(t, "early", staged.Bundle())).wantRefused(t)

	// 2. The runner refreshes its bundle.
	refreshed := staged.Bundle()

	// 3. Promote: the successor signs; the old CA is still trusted.
	if err := pki.PromoteCA(dir, now); err != nil {
		t.Fatalf("PromoteCA: %v", err)
	}
	wantCode(t, pki.PromoteCA(dir, now), ward.CodeInvalidState)
	for _, f := range []string{"ca-next.crt", "ca-next.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left after promotion: %v", f, err)
		}
	}
	wantMode(t, filepath.Join(dir, "ca.key"), 0o600)
	wantMode(t, filepath.Join(dir, "ca.crt"), 0o644)
	wantMode(t, filepath.Join(dir, "ca-trusted.crt"), 0o644)
	promoted := loadCA(t, dir)
	if !promoted.Cert().Equal(staged.Next()) || promoted.Next() != nil {
		t.Fatal("PromoteCA did not make the successor the signer")
	}
	if trusted := mustRead(t, filepath.Join(dir, "ca-trusted.crt")); !bytes.Equal(trusted, oldBundle) {
		t.Fatalf("ca-trusted.crt = %q, want the old signer", trusted)
	}
	fresh := newRunner(t, promoted, "fresh", now, time.Hour)
	fc := parseCert(t, fresh.certPEM)
	if fc.CheckSignatureFrom(staged.Next()) != nil || fc.CheckSignatureFrom(ca1.Cert()) == nil {
		t.Fatal("a runner certificate after promotion is not from the new CA")
	}
	srv = pki.ServerTLS(promoted, serverCert(t, promoted, now))
	handshake(t, srv, old.clientTLS(t, "old", refreshed)).wantAccepted(t)
	handshake(t, srv, fresh.clientTLS(t, "fresh", promoted.Bundle())).wantAccepted(t)
	// A runner that skipped step 2 does not trust the new server.
	if o := handshake(t, srv, old.clientTLS(t, "old", oldBundle)); o.clientErr == nil {
		t.Fatal("a runner without the successor in its bundle trusted the promoted server")
	}

	// 5. Retire: the old CA's certificates are refused.
	if err := pki.RetireCAs(dir); err != nil {
		t.Fatalf("RetireCAs: %v", err)
	}
	retired := loadCA(t, dir)
	if countCerts(retired.Bundle()) != 1 || !retired.Cert().Equal(promoted.Cert()) {
		t.Fatalf("bundle after retire holds %d certificates, want the signer only", countCerts(retired.Bundle()))
	}
	srv = pki.ServerTLS(retired, serverCert(t, retired, now))
	handshake(t, srv, old.clientTLS(t, "old", refreshed)).wantRefused(t)
	handshake(t, srv, fresh.clientTLS(t, "fresh", retired.Bundle())).wantAccepted(t)
}

// TestPromoteInterrupted: a promotion cut between its renames leaves a
// directory LoadCA refuses with a hint, and PromoteCA finishes it.
func TestPromoteInterrupted(t *testing.T) {
	t.Parallel()
	dir, ca1 := newCA(t, fixed)
	if err := pki.StageCA(dir, fixed); err != nil {
		t.Fatal(err)
	}
	next := loadCA(t, dir).Next()
	if err := os.Rename(filepath.Join(dir, "ca-next.key"), filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	_, err := pki.LoadCA(dir)
	wantCode(t, err, ward.CodeInvalidState)
	if !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("err = %q, want a hint at the interrupted promotion", err)
	}
	if err := pki.PromoteCA(dir, fixed); err != nil {
		t.Fatalf("PromoteCA to finish: %v", err)
	}
	ca := loadCA(t, dir)
	if !ca.Cert().Equal(next) || countCerts(ca.Bundle()) != 2 || !bytes.Contains(ca.Bundle(), ca1.Bundle()) {
		t.Fatal("the finished promotion is not the successor signing with the old CA trusted")
	}
}

// TestPromoteDropsExpired: retired CAs that have expired leave the bundle,
// and promoting twice keeps each retired CA once.
func TestPromoteDropsExpired(t *testing.T) {
	t.Parallel()
	dir, _ := newCA(t, fixed.AddDate(-11, 0, 0)) // expired at fixed
	if err := pki.StageCA(dir, fixed); err != nil {
		t.Fatal(err)
	}
	if err := pki.PromoteCA(dir, fixed); err != nil {
		t.Fatal(err)
	}
	if n := countCerts(loadCA(t, dir).Bundle()); n != 1 {
		t.Fatalf("bundle holds %d certificates, want the new signer only", n)
	}
	second := loadCA(t, dir)
	if err := pki.StageCA(dir, fixed); err != nil {
		t.Fatal(err)
	}
	if err := pki.PromoteCA(dir, fixed); err != nil {
		t.Fatal(err)
	}
	third := loadCA(t, dir)
	if n := countCerts(third.Bundle()); n != 2 || !bytes.Contains(third.Bundle(), second.Bundle()) {
		t.Fatalf("bundle holds %d certificates, want the signer and the previous one", n)
	}
	// A staged CA that is not valid yet is not promoted.
	if err := pki.StageCA(dir, fixed.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, pki.PromoteCA(dir, fixed), ward.CodeInvalidState)
}

func TestRotationNeedsCA(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	if err := pki.StageCA(empty, fixed); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("StageCA without a CA: %v", err)
	}
	wantCode(t, pki.PromoteCA(empty, fixed), ward.CodeInvalidState)
	if err := pki.RetireCAs(empty); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RetireCAs without a CA: %v", err)
	}
}
