package pki_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/pki"
)

var tokenRE = regexp.MustCompile(`^wardjoin_[0-9a-f]{32}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$`)

func newToken(t *testing.T, ca *pki.CA) pki.JoinToken {
	t.Helper()
	tok, err := pki.NewJoinToken(ca)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestJoinToken(t *testing.T) {
	t.Parallel()
	_, ca := newCA(t, fixed)
	tok := newToken(t, ca)
	s := tok.String()
	if !tokenRE.MatchString(s) {
		t.Fatalf("token %q is not of the documented form", s)
	}
	if len(tok.ID) != 32 || len(tok.Secret) != 32 || tok.Pin != sha256.Sum256(ca.Cert().Raw) {
		t.Fatalf("ID %d chars, secret %d bytes, pin matches CA %v", len(tok.ID), len(tok.Secret), tok.Pin == sha256.Sum256(ca.Cert().Raw))
	}
	parts := strings.Split(strings.TrimPrefix(s, "wardjoin_"), ".")
	if parts[0] != tok.ID || parts[1] != base64.RawURLEncoding.EncodeToString(tok.Secret) || parts[2] != base64.RawURLEncoding.EncodeToString(tok.Pin[:]) {
		t.Fatal("String does not encode the fields")
	}
	got, err := pki.ParseJoinToken(s)
	if err != nil {
		t.Fatalf("ParseJoinToken: %v", err)
	}
	if got.ID != tok.ID || !bytes.Equal(got.Secret, tok.Secret) || got.Pin != tok.Pin {
		t.Fatal("parsed token differs")
	}
	h := sha256.Sum256(tok.Secret)
	if !bytes.Equal(tok.Hash(), h[:]) || !got.Matches(tok.Hash()) {
		t.Fatal("Hash is not SHA-256 of the secret")
	}
	other := newToken(t, ca)
	if other.ID == tok.ID || bytes.Equal(other.Secret, tok.Secret) || other.Matches(tok.Hash()) || other.Matches(nil) {
		t.Fatal("two tokens collide")
	}
	if other.Pin != tok.Pin {
		t.Fatal("two tokens of one CA pin different certificates")
	}

	// slog shows the ID only.
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("made", "token", tok)
	if strings.Contains(buf.String(), parts[1]) || !strings.Contains(buf.String(), tok.ID) {
		t.Fatalf("log line = %s", buf.String())
	}
}

func TestParseJoinTokenRejects(t *testing.T) {
	t.Parallel()
	tok := pki.JoinToken{ID: "0123456789abcdef0123456789abcdef", Secret: bytes.Repeat([]byte{0xa7}, 32), Pin: sha256.Sum256([]byte("ca"))}
	good := tok.String()
	if _, err := pki.ParseJoinToken(good); err != nil {
		t.Fatalf("the base token does not parse: %v", err)
	}
	id, secret, pin := good[9:41], good[42:85], good[86:]
	// The last of 43 characters carries 4 bits and 2 unused ones, which must
	// be zero: it is one of A, E, I, …; the next letter sets an unused bit.
	lastBitsSet := secret[:42] + string(secret[42]+1)
	cases := map[string]string{
		"empty":                  "",
		"prefix only":            "wardjoin_",
		"no prefix":              id + "." + secret + "." + pin,
		"other prefix":           "wardjoim_" + id + "." + secret + "." + pin,
		"upper-case prefix":      "WARDJOIN_" + id + "." + secret + "." + pin,
		"upper-case ID":          "wardjoin_" + strings.ToUpper(id) + "." + secret + "." + pin,
		"non-hex ID":             "wardjoin_g" + id[1:] + "." + secret + "." + pin,
		"short ID":               "wardjoin_" + id[1:] + "." + secret + "." + pin,
		"long ID":                "wardjoin_0" + id + "." + secret + "." + pin,
		"ID shifted into secret": "wardjoin_" + id + "0." + secret[1:] + "." + pin,
		"padding":                "wardjoin_" + id + "." + secret[:42] + "=." + pin,
		"standard alphabet":      "wardjoin_" + id + "." + secret[:42] + "+." + pin,
		"line break":             "wardjoin_" + id + "." + secret[:20] + "\n" + secret[21:] + "." + pin,
		"unused bits set":        "wardjoin_" + id + "." + lastBitsSet + "." + pin,
		"comma":                  "wardjoin_" + id + "," + secret + "." + pin,
		"four parts":             "wardjoin_" + id + "." + secret + "." + pin[:42] + ".",
		"trailing space":         good + " ",
		"leading space":          " " + good,
		"doubled":                good + good,
		"truncated":              good[:len(good)-1],
	}
	for name, s := range cases {
		_, err := pki.ParseJoinToken(s)
		if err == nil {
			t.Errorf("%s: parsed", name)
			continue
		}
		if ward.CodeOf(err) != ward.CodeJoinTokenInvalid {
			t.Errorf("%s: code %s", name, ward.CodeOf(err))
		}
		for _, part := range []string{id, secret, secret[:16], pin} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("%s: error %q quotes the token", name, err)
			}
		}
	}
}

func FuzzParseJoinToken(f *testing.F) {
	f.Add("wardjoin_00112233445566778899aabbccddeeff.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("wardjoin_00112233445566778899aabbccddeeff.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("wardjoin_00112233445566778899AABBCCDDEEFF.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("wardjoin_00112233445566778899aabbccddeeff.AAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("wardjoin_")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := pki.ParseJoinToken(s)
		if err != nil {
			if ward.CodeOf(err) != ward.CodeJoinTokenInvalid {
				t.Fatalf("code %s", ward.CodeOf(err))
			}
			if len(s) > 64 && strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes the input")
			}
			return
		}
		if got := tok.String(); got != s {
			t.Fatalf("round trip: %q → %q", s, got)
		}
		if _, err := hex.DecodeString(tok.ID); err != nil || len(tok.ID) != 32 || len(tok.Secret) != 32 {
			t.Fatalf("parsed fields: ID %q, secret %d bytes", tok.ID, len(tok.Secret))
		}
	})
}

// TestPinnedTLS: the join configuration accepts a server whose chain holds
// the pinned CA and whose leaf that CA signed for server auth, and nothing
// else.
func TestPinnedTLS(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, ca := newCA(t, now)
	_, foreign := newCA(t, now)
	tok := newToken(t, ca)

	good := serverCert(t, ca, now)
	leafOnly := serverCert(t, ca, now)
	leafOnly.Certificate = leafOnly.Certificate[:1]
	// A foreign leaf with the pinned CA appended to its chain.
	borrowed := serverCert(t, foreign, now)
	borrowed.Certificate = [][]byte{borrowed.Certificate[0], ca.Cert().Raw}
	// A runner certificate of the pinned CA, presented as a server's.
	runnerAsServer := newRunner(t, ca, "r1", now, time.Hour).pair(t)
	runnerAsServer.Certificate = append(runnerAsServer.Certificate, ca.Cert().Raw)
	expired, err := ca.ServerCert([]string{"127.0.0.1"}, now.Add(-3*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The pin matching a leaf that is not a CA: a token pinning a leaf.
	leafPin := newToken(t, ca)
	leafPin.Pin = sha256.Sum256(good.Certificate[0])

	cases := []struct {
		name   string
		cert   tls.Certificate
		tok    pki.JoinToken
		accept bool
	}{
		{"server of the pinned CA", good, tok, true},
		{"server of another CA", serverCert(t, foreign, now), tok, false},
		{"foreign leaf with the pinned CA appended", borrowed, tok, false},
		{"chain without the CA", leafOnly, tok, false},
		{"runner certificate", runnerAsServer, tok, false},
		{"expired server certificate", expired, tok, false},
		{"pin of a leaf", good, leafPin, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cli := tc.tok.PinnedTLS()
			cli.ServerName = "127.0.0.1"
			o := handshake(t, pki.ServerTLS(ca, tc.cert), cli)
			if tc.accept {
				o.wantAccepted(t)
				if _, ok := pki.RunnerID(&o.server); ok {
					t.Fatal("a joining runner has a runner ID")
				}
			} else if o.clientErr == nil {
				t.Fatal("the joining runner accepted the server")
			}
		})
	}

	cfg := tok.PinnedTLS()
	if cfg.MinVersion != tls.VersionTLS13 || !cfg.InsecureSkipVerify || cfg.VerifyConnection == nil {
		t.Fatalf("PinnedTLS = %+v", cfg)
	}
	if err := cfg.VerifyConnection(tls.ConnectionState{}); err == nil {
		t.Fatal("VerifyConnection accepted a server without certificates")
	}
	if err := cfg.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{ca.Cert()}}); err != nil {
		t.Fatalf("the pinned CA alone: %v", err)
	}
}

func TestNewJoinTokenNeedsCA(t *testing.T) {
	t.Parallel()
	if _, err := pki.NewJoinToken(nil); err == nil {
		t.Fatal("NewJoinToken(nil) succeeded")
	}
}
