package box

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/wardhq/ward"
)

var (
	testKeyOnce       sync.Once
	testPriv, testPub []byte
)

// testKey returns one key pair shared by the tests (key generation is the
// slow part).
func testKey(t testing.TB) (private, public []byte) {
	t.Helper()
	testKeyOnce.Do(func() {
		var err error
		testPriv, testPub, err = GenerateKey()
		if err != nil {
			panic(err)
		}
	})
	return testPriv, testPub
}

var to = Recipient{Project: "acme", Function: "resize"}

func wantCode(t *testing.T, err error, code ward.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s", code)
	}
	var we *ward.Error
	if !errors.As(err, &we) {
		t.Fatalf("err = %T %v, want *ward.Error", err, err)
	}
	if we.Code != code {
		t.Fatalf("code = %s (%v), want %s", we.Code, err, code)
	}
}

func seal(t testing.TB, public []byte, r Recipient, pt []byte) []byte {
	t.Helper()
	env, err := Seal(public, r, pt)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return env
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(priv) != PrivateKeySize || len(pub) != PublicKeySize {
		t.Fatalf("sizes = %d, %d", len(priv), len(pub))
	}
	derived, err := PublicKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(derived, pub) {
		t.Fatal("PublicKey(private) differs from the generated public key")
	}
	if err := CheckPublicKey(pub); err != nil {
		t.Fatalf("CheckPublicKey: %v", err)
	}
	priv2, pub2, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(priv, priv2) || bytes.Equal(pub, pub2) {
		t.Fatal("two generated keys are equal")
	}
}

func TestKeyID(t *testing.T) {
	t.Parallel()
	_, pub := testKey(t)
	sum := sha256.Sum256(pub)
	if got, want := KeyID(pub), hex.EncodeToString(sum[:8]); got != want {
		t.Fatalf("KeyID = %s, want %s", got, want)
	}
	if got := KeyID(nil); got != "e3b0c44298fc1c14" {
		t.Fatalf("KeyID(nil) = %s", got)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	priv, pub := testKey(t)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, pt := range [][]byte{nil, {}, []byte(`{"card":"4111 1111 1111 1111"}`), big} {
		env := seal(t, pub, to, pt)
		if len(env) != Overhead+len(pt) {
			t.Errorf("len(envelope) = %d, want %d", len(env), Overhead+len(pt))
		}
		if !IsSealed(env) {
			t.Error("IsSealed(envelope) = false")
		}
		if len(pt) > 16 && bytes.Contains(env, pt[:16]) {
			t.Error("envelope contains the plaintext")
		}
		got, err := Open(priv, to, env)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if got == nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open = %d bytes, want %d", len(got), len(pt))
		}
	}
	// Two seals of the same plaintext differ (fresh encapsulation each time).
	a, b := seal(t, pub, to, []byte("x")), seal(t, pub, to, []byte("x"))
	if bytes.Equal(a, b) {
		t.Fatal("two envelopes of the same plaintext are equal")
	}
}

func TestWrongRecipient(t *testing.T) {
	t.Parallel()
	priv, pub := testKey(t)
	env := seal(t, pub, to, []byte("secret"))
	for _, r := range []Recipient{
		{Project: "acme", Function: "resize2"},
		{Project: "acme2", Function: "resize"},
		{Project: "resize", Function: "acme"},
		{Project: "acmer", Function: "esize"}, // same concatenation
	} {
		pt, err := Open(priv, r, env)
		wantCode(t, err, CodeOpenFailed)
		if pt != nil {
			t.Errorf("%+v: plaintext returned with an error", r)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks plaintext: %v", err)
		}
	}
}

func TestWrongKey(t *testing.T) {
	t.Parallel()
	_, pub := testKey(t)
	other, _, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	env := seal(t, pub, to, []byte("secret"))
	_, err = Open(other, to, env)
	wantCode(t, err, CodeKeyMismatch)
	if !errors.Is(err, ErrKeyMismatch) {
		t.Error("errors.Is(err, ErrKeyMismatch) = false")
	}
	if strings.Contains(err.Error(), hex.EncodeToString(other)) {
		t.Error("error leaks the private key")
	}
}

func TestInvalidRecipient(t *testing.T) {
	t.Parallel()
	priv, pub := testKey(t)
	env := seal(t, pub, to, nil)
	for _, r := range []Recipient{{}, {Project: "acme"}, {Function: "f"}, {Project: "A", Function: "f"}, {Project: "p", Function: "a/b"}} {
		_, err := Seal(pub, r, nil)
		wantCode(t, err, ward.CodeInvalidArgument)
		_, err = Open(priv, r, env)
		wantCode(t, err, ward.CodeInvalidArgument)
	}
}

func TestInvalidKeys(t *testing.T) {
	t.Parallel()
	priv, pub := testKey(t)
	env := seal(t, pub, to, nil)
	for _, k := range [][]byte{nil, {}, priv[:31], append(bytes.Clone(priv), 0), pub} {
		_, err := Open(k, to, env)
		wantCode(t, err, CodeInvalidKey)
		_, err = PublicKey(k)
		wantCode(t, err, CodeInvalidKey)
	}
	// An ML-KEM encapsulation key with a coefficient ≥ q is rejected.
	badPub := bytes.Clone(pub)
	badPub[0], badPub[1] = 0xFF, 0xFF
	// A degenerate (all-zero) X25519 point fails at encapsulation.
	zeroPoint := bytes.Clone(pub)
	clear(zeroPoint[1184:])
	for _, k := range [][]byte{nil, pub[:100], append(bytes.Clone(pub), 0), priv, badPub, zeroPoint} {
		_, err := Seal(k, to, []byte("x"))
		wantCode(t, err, CodeInvalidKey)
	}
	for _, k := range [][]byte{nil, pub[:100], priv, badPub} {
		wantCode(t, CheckPublicKey(k), CodeInvalidKey)
	}
}

// TestEveryByteFlip flips bits in every byte of a small envelope: each
// altered envelope must fail, with the code of the part that was changed.
func TestEveryByteFlip(t *testing.T) {
	t.Parallel()
	priv, pub := testKey(t)
	env := seal(t, pub, to, []byte("hello"))
	for i := range env {
		var want ward.Code
		switch {
		case i < 19 && i >= 11:
			want = CodeKeyMismatch
		case i < 11:
			want = CodeMalformed
		default:
			want = CodeOpenFailed
		}
		for _, mask := range []byte{0x01, 0x80, 0xFF} {
			bad := bytes.Clone(env)
			bad[i] ^= mask
			pt, err := Open(priv, to, bad)
			if err == nil {
				t.Fatalf("byte %d ^ %#x: opened to %q", i, mask, pt)
			}
			if pt != nil {
				t.Fatalf("byte %d ^ %#x: plaintext returned with an error", i, mask)
			}
			if c := ward.CodeOf(err); c != want {
				t.Fatalf("byte %d ^ %#x: code %s (%v), want %s", i, mask, c, err, want)
			}
		}
	}
}

func TestTruncationsAndExtensions(t *testing.T) {
	t.Parallel()
	priv, pub := testKey(t)
	env := seal(t, pub, to, []byte("hello, world"))
	for n := range len(env) {
		_, err := Open(priv, to, env[:n])
		want := CodeMalformed
		if n >= Overhead {
			want = CodeOpenFailed
		}
		if c := ward.CodeOf(err); c != want {
			t.Fatalf("truncated to %d: code %s (%v), want %s", n, c, err, want)
		}
	}
	for _, extra := range []string{"\x00", "x", strings.Repeat("y", 16)} {
		_, err := Open(priv, to, append(bytes.Clone(env), extra...))
		wantCode(t, err, CodeOpenFailed)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	_, pub := testKey(t)
	env := seal(t, pub, to, []byte("payload"))
	h, err := Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 1 || h.KEM != KEMName || h.KDF != KDFName || h.AEAD != AEADName {
		t.Errorf("header = %v", h)
	}
	if h.KeyID != KeyID(pub) {
		t.Errorf("KeyID = %s, want %s", h.KeyID, KeyID(pub))
	}
	if h.Size != HeaderSize || len(h.EncapsulatedKey) != EncSize || !bytes.Equal(h.EncapsulatedKey, env[19:HeaderSize]) {
		t.Errorf("size %d, enc %d bytes", h.Size, len(h.EncapsulatedKey))
	}
	if s := h.String(); !strings.Contains(s, h.KeyID) || !strings.Contains(s, KEMName) {
		t.Errorf("String = %q", s)
	}

	withByte := func(i int, b byte) []byte {
		c := bytes.Clone(env)
		c[i] = b
		return c
	}
	bad := map[string][]byte{
		"empty":           nil,
		"json":            []byte(`{"a":1}`),
		"magic only":      env[:4],
		"no suite":        env[:5],
		"no key id":       env[:15],
		"no enc":          env[:19],
		"no tag":          env[:HeaderSize+15],
		"version 0":       withByte(4, 0),
		"version 2":       withByte(4, 2),
		"other kem":       withByte(6, 0x41),
		"other kdf":       withByte(8, 0x02),
		"other aead":      withByte(10, 0x01),
		"lowercase magic": withByte(1, 'w'),
	}
	for name, b := range bad {
		_, err := Parse(b)
		if c := ward.CodeOf(err); c != CodeMalformed {
			t.Errorf("%s: code %s (%v), want %s", name, c, err, CodeMalformed)
		}
	}
	if _, err := Parse(env[:Overhead]); err != nil {
		t.Errorf("minimal envelope: %v", err)
	}
}

func TestIsSealed(t *testing.T) {
	t.Parallel()
	_, pub := testKey(t)
	env := seal(t, pub, to, nil)
	for b, want := range map[string]bool{
		string(env):       true,
		string(env[:4]):   true,
		string(env[:3]):   false,
		"":                false,
		`{"sealed":true}`: false,
		"WSE":             false,
		"\xffWSD":         false,
	} {
		if got := IsSealed([]byte(b)); got != want {
			t.Errorf("IsSealed(%q) = %v", b, got)
		}
	}
}

func TestPrivateKeyPEM(t *testing.T) {
	t.Parallel()
	priv, _ := testKey(t)
	p := MarshalPrivateKey(priv)
	if !bytes.HasPrefix(p, []byte("-----BEGIN WARD SEALING PRIVATE KEY-----\n")) {
		t.Fatalf("PEM = %q", p)
	}
	for _, in := range [][]byte{p, append([]byte("\n  "), p...), append(bytes.Clone(p), "\r\n\n"...)} {
		got, err := ParsePrivateKey(in)
		if err != nil {
			t.Fatalf("ParsePrivateKey: %v", err)
		}
		if !bytes.Equal(got, priv) {
			t.Fatal("PEM round trip changed the key")
		}
	}

	enc := func(typ string, headers map[string]string, b []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: b})
	}
	bad := map[string][]byte{
		"empty":       nil,
		"raw seed":    priv,
		"hex seed":    []byte(hex.EncodeToString(priv)),
		"other type":  enc("PRIVATE KEY", nil, priv),
		"headers":     enc(PEMType, map[string]string{"Proc-Type": "4,ENCRYPTED"}, priv),
		"short seed":  enc(PEMType, nil, priv[:31]),
		"long seed":   enc(PEMType, nil, append(bytes.Clone(priv), 1)),
		"two blocks":  append(bytes.Clone(p), p...),
		"text before": append([]byte("key:\n"), p...),
		"text after":  append(bytes.Clone(p), "trailer"...),
		"no end line": p[:len(p)-10],
		"bad base64":  []byte("-----BEGIN WARD SEALING PRIVATE KEY-----\n!!!!\n-----END WARD SEALING PRIVATE KEY-----\n"),
		"begin only":  []byte("-----BEGIN "),
		"public key":  enc(PEMType, nil, make([]byte, PublicKeySize)),
	}
	seedHex := hex.EncodeToString(priv)
	for name, b := range bad {
		_, err := ParsePrivateKey(b)
		if c := ward.CodeOf(err); c != CodeInvalidKey {
			t.Errorf("%s: code %s (%v), want %s", name, c, err, CodeInvalidKey)
			continue
		}
		if strings.Contains(err.Error(), seedHex) || strings.Contains(err.Error(), string(p)) {
			t.Errorf("%s: error leaks the key: %v", name, err)
		}
	}
}

func TestInfoEncodingIsInjective(t *testing.T) {
	t.Parallel()
	pairs := []Recipient{
		{"a", "bc"}, {"ab", "c"}, {"abc", ""}, {"", "abc"}, {"a-b", "c"}, {"a", "b-c"},
	}
	seen := map[string]Recipient{}
	for _, r := range pairs {
		k := string(r.info())
		if prev, ok := seen[k]; ok {
			t.Fatalf("%+v and %+v encode alike", prev, r)
		}
		seen[k] = r
	}
}

func BenchmarkSealOpen(b *testing.B) {
	priv, pub := testKey(b)
	pt := bytes.Repeat([]byte{'a'}, 1024)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		env, err := Seal(pub, to, pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Open(priv, to, env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	_, pub := testKey(b)
	pt := bytes.Repeat([]byte{'a'}, 1024)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := Seal(pub, to, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	priv, pub := testKey(b)
	pt := bytes.Repeat([]byte{'a'}, 1024)
	env, err := Seal(pub, to, pt)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := Open(priv, to, env); err != nil {
			b.Fatal(err)
		}
	}
}
