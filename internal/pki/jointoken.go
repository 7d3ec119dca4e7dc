package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/wardhq/ward"
)

// Join token layout: wardjoin_<id>.<secret>.<pin>.
const (
	joinPrefix    = "wardjoin_"
	joinIDBytes   = 16
	joinSecretLen = 32
	joinIDLen     = 2 * joinIDBytes // lowercase hex
	joinB64Len    = 43              // base64url, no padding, of 32 bytes
	joinTokenLen  = len(joinPrefix) + joinIDLen + 1 + joinB64Len + 1 + joinB64Len
)

// b64 returns the encoding of the secret and the pin: base64url without
// padding, strict about the unused bits of the last character.
func b64() *base64.Encoding { return base64.RawURLEncoding.Strict() }

// JoinToken is a one-time token with which a runner gets its certificate.
// ID finds it in the store, which keeps only Hash; Secret proves it; Pin is
// the SHA-256 of the signer's certificate (DER) when it was made, so the
// runner can check the server before it trusts anything.
//
// String gives the whole token, secret included; show it once, to the
// admin who asked for it. Logged with slog, a JoinToken shows its ID only.
type JoinToken struct {
	ID     string
	Secret []byte
	Pin    [32]byte
}

// NewJoinToken makes a token pinned to ca's signer.
func NewJoinToken(ca *CA) (JoinToken, error) {
	if ca == nil || ca.cert == nil {
		return JoinToken{}, errors.New("pki: NewJoinToken needs a CA")
	}
	var id [joinIDBytes]byte
	secret := make([]byte, joinSecretLen)
	if _, err := rand.Read(id[:]); err != nil {
		return JoinToken{}, fmt.Errorf("pki: join token: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return JoinToken{}, fmt.Errorf("pki: join token: %w", err)
	}
	return JoinToken{ID: hex.EncodeToString(id[:]), Secret: secret, Pin: sha256.Sum256(ca.cert.Raw)}, nil
}

// String returns the token as the runner is given it:
// wardjoin_<id>.<secret>.<pin>.
func (t JoinToken) String() string {
	return joinPrefix + t.ID + "." + b64().EncodeToString(t.Secret) + "." + b64().EncodeToString(t.Pin[:])
}

// LogValue keeps the secret out of logs: only the ID is shown.
func (t JoinToken) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", t.ID))
}

// Hash returns the SHA-256 of the secret, what the store keeps.
func (t JoinToken) Hash() []byte {
	h := sha256.Sum256(t.Secret)
	return h[:]
}

// Matches reports, in constant time, whether the token's secret is the one
// whose hash the store kept.
func (t JoinToken) Matches(hash []byte) bool {
	return subtle.ConstantTimeCompare(t.Hash(), hash) == 1
}

// errJoinToken is the error of a token that does not parse; it says what is
// wrong with the form and never quotes the token.
func errJoinToken(what string) error {
	return ward.Errorf(ward.CodeJoinTokenInvalid, "join token: %s", what)
}

// ParseJoinToken parses wardjoin_<id>.<secret>.<pin>: the exact prefix, the
// ID as 32 lowercase hex digits, secret and pin as 43 characters of
// base64url without padding (32 bytes each). Anything else is a
// join_token_invalid error; an accepted string is exactly what String
// gives back.
func ParseJoinToken(s string) (JoinToken, error) {
	if len(s) != joinTokenLen {
		return JoinToken{}, errJoinToken("wrong length")
	}
	rest, ok := strings.CutPrefix(s, joinPrefix)
	if !ok {
		return JoinToken{}, errJoinToken("missing the wardjoin_ prefix")
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 || len(parts[0]) != joinIDLen || len(parts[1]) != joinB64Len || len(parts[2]) != joinB64Len {
		return JoinToken{}, errJoinToken("not of the form wardjoin_<id>.<secret>.<pin>")
	}
	for i := range len(parts[0]) {
		if c := parts[0][i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return JoinToken{}, errJoinToken("the ID is not lowercase hex")
		}
	}
	secret, err := decodeB64(parts[1])
	if err != nil {
		return JoinToken{}, errJoinToken("the secret is not base64url")
	}
	pin, err := decodeB64(parts[2])
	if err != nil {
		return JoinToken{}, errJoinToken("the pin is not base64url")
	}
	t := JoinToken{ID: parts[0], Secret: secret}
	copy(t.Pin[:], pin)
	return t, nil
}

// decodeB64 decodes 43 characters of unpadded base64url to 32 bytes,
// refusing any character outside the alphabet (the decoder would skip line
// breaks) and non-zero unused bits.
func decodeB64(s string) ([]byte, error) {
	for i := range len(s) {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, errors.New("bad character")
		}
	}
	b, err := b64().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, errors.New("bad length")
	}
	return b, nil
}

// PinnedTLS returns the TLS configuration of the join call, made when the
// runner trusts nothing yet. Usual verification is off; instead the
// handshake succeeds only if a certificate of the server's chain has the
// token's pin as its SHA-256, is a CA, and the leaf verifies against it
// alone, now, for server authentication. The pin names the cluster, so any
// server of it will do: the host name is not checked. TLS 1.3.
func (t JoinToken) PinnedTLS() *tls.Config {
	pin := t.Pin
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by VerifyConnection, which checks the pin
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs, pin)
		},
	}
}

// verifyPinned checks a server's chain against a CA pin.
func verifyPinned(cs tls.ConnectionState, pin [32]byte) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("pki: the server presented no certificate")
	}
	var ca *x509.Certificate
	for _, c := range cs.PeerCertificates {
		if sum := sha256.Sum256(c.Raw); subtle.ConstantTimeCompare(sum[:], pin[:]) == 1 {
			ca = c
			break
		}
	}
	if ca == nil {
		return errors.New("pki: the server's certificate chain does not hold the CA the join token pins")
	}
	if !ca.BasicConstraintsValid || !ca.IsCA {
		return errors.New("pki: the certificate the join token pins is not a CA")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("pki: the server's certificate is not signed by the pinned CA: %w", err)
	}
	return nil
}
