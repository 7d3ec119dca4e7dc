package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/seal/box"
)

var (
	sealKeyOnce       sync.Once
	sealPriv, sealPub []byte
)

// testSealingKey returns a function key pair shared by the tests: the
// private seed and the public key as the API serves it.
func testSealingKey(t testing.TB) ([]byte, ward.SealingKey) {
	t.Helper()
	sealKeyOnce.Do(func() {
		var err error
		sealPriv, sealPub, err = box.GenerateKey()
		if err != nil {
			panic(err)
		}
	})
	return sealPriv, ward.SealingKey{
		KEM: box.KEMName, KDF: box.KDFName, AEAD: box.AEADName,
		KeyID: box.KeyID(sealPub), PublicKey: bytes.Clone(sealPub),
	}
}

func keyJSON(t testing.TB, k ward.SealingKey) string {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSealingKey(t *testing.T) {
	t.Parallel()
	_, key := testSealingKey(t)
	f := newFake(t, fixed(http.StatusOK, keyJSON(t, key)))
	c := newTestClient(t, f)
	got, err := c.SealingKey(context.Background(), "acme", "resize")
	if err != nil {
		t.Fatalf("SealingKey: %v", err)
	}
	if got.KeyID != key.KeyID || !bytes.Equal(got.PublicKey, key.PublicKey) || got.KEM != box.KEMName {
		t.Fatalf("key = %+v", got)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodGet || r.RawPath != "/v1/projects/acme/functions/resize/sealing-key" {
		t.Errorf("request = %s %s", r.Method, r.RawPath)
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		t.Error("no bearer token sent")
	}
}

func TestSealingKeyRefusesBadAnswers(t *testing.T) {
	t.Parallel()
	_, key := testSealingKey(t)
	_, otherPub, err := box.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	mod := func(change func(k *ward.SealingKey)) string {
		k := key
		k.PublicKey = bytes.Clone(key.PublicKey)
		change(&k)
		return keyJSON(t, k)
	}
	bad := map[string]string{
		"key id of another key": mod(func(k *ward.SealingKey) { k.KeyID = box.KeyID(otherPub) }),
		"public key swapped":    mod(func(k *ward.SealingKey) { k.PublicKey = otherPub }),
		"uppercase key id":      mod(func(k *ward.SealingKey) { k.KeyID = strings.ToUpper(k.KeyID) }),
		"empty key id":          mod(func(k *ward.SealingKey) { k.KeyID = "" }),
		"other kem":             mod(func(k *ward.SealingKey) { k.KEM = "DHKEM(X25519, HKDF-SHA256)" }),
		"other kdf":             mod(func(k *ward.SealingKey) { k.KDF = "HKDF-SHA512" }),
		"other aead":            mod(func(k *ward.SealingKey) { k.AEAD = "ChaCha20Poly1305" }),
		"short public key":      mod(func(k *ward.SealingKey) { k.PublicKey = k.PublicKey[:32]; k.KeyID = box.KeyID(k.PublicKey) }),
		"no public key":         mod(func(k *ward.SealingKey) { k.PublicKey = nil; k.KeyID = box.KeyID(nil) }),
		"missing field":         `{"kem":"MLKEM768-X25519","kdf":"HKDF-SHA256","aead":"AES-256-GCM","key_id":"` + key.KeyID + `"}`,
		"not an object":         `[]`,
		"trailing data":         keyJSON(t, key) + `{}`,
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newTestClient(t, newFake(t, fixed(http.StatusOK, body)))
			k, err := c.SealingKey(context.Background(), "acme", "resize")
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("err = %v, want ErrBadResponse", err)
			}
			if k.PublicKey != nil || k.KeyID != "" {
				t.Fatalf("a key came back with the error: %+v", k)
			}
		})
	}
}

func TestSealingKeyAPIError(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, newFake(t, fixed(http.StatusNotFound,
		`{"error":{"code":"not_found","message":"function resize has no sealing key"}}`)))
	_, err := c.SealingKey(context.Background(), "acme", "resize")
	if !errors.Is(err, ward.ErrNotFound) {
		t.Fatalf("err = %v, want not_found", err)
	}
}

func TestSealRoundTrip(t *testing.T) {
	t.Parallel()
	priv, key := testSealingKey(t)
	payload := []byte(`{"card":"4111111111111111"}`)
	env, err := Seal(key, "acme", "resize", payload)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if !box.IsSealed(env) || bytes.Contains(env, payload) {
		t.Fatal("Seal did not return an envelope")
	}
	h, err := box.Parse(env)
	if err != nil || h.KeyID != key.KeyID {
		t.Fatalf("Parse = %v, %v", h, err)
	}
	got, err := box.Open(priv, box.Recipient{Project: "acme", Function: "resize"}, env)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("Open = %q", got)
	}
	if _, err := box.Open(priv, box.Recipient{Project: "acme", Function: "other"}, env); ward.CodeOf(err) != box.CodeOpenFailed {
		t.Fatalf("opened as another function: %v", err)
	}
	// The envelope travels as base64 in a submission and comes back intact.
	b, err := json.Marshal(ward.SubmitRequest{Function: "resize", Sealed: env})
	if err != nil {
		t.Fatal(err)
	}
	var req ward.SubmitRequest
	if err := json.Unmarshal(b, &req); err != nil || !bytes.Equal(req.Sealed, env) {
		t.Fatalf("submit JSON round trip: %v", err)
	}
}

func TestSealRefusesBadKeys(t *testing.T) {
	t.Parallel()
	_, key := testSealingKey(t)
	_, otherPub, err := box.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	withID := key
	withID.KeyID = box.KeyID(otherPub)
	otherSuite := key
	otherSuite.AEAD = "AES-128-GCM"
	truncated := key
	truncated.PublicKey = key.PublicKey[:100]
	truncated.KeyID = box.KeyID(truncated.PublicKey)
	for name, k := range map[string]ward.SealingKey{
		"mismatched key id": withID,
		"other suite":       otherSuite,
		"truncated key":     truncated,
		"zero key":          {},
	} {
		_, err := Seal(k, "acme", "resize", []byte("x"))
		if ward.CodeOf(err) != box.CodeInvalidKey {
			t.Errorf("%s: err = %v, want %s", name, err, box.CodeInvalidKey)
		}
	}
	for _, names := range [][2]string{{"", "resize"}, {"acme", ""}, {"Acme", "resize"}, {"acme", "../x"}} {
		_, err := Seal(key, names[0], names[1], []byte("x"))
		if ward.CodeOf(err) != ward.CodeInvalidArgument {
			t.Errorf("%q: err = %v, want invalid_argument", names, err)
		}
	}
}

func FuzzDecodeSealingKey(f *testing.F) {
	_, key := testSealingKey(f)
	f.Add([]byte(keyJSON(f, key)))
	f.Add([]byte(`{"kem":"MLKEM768-X25519","kdf":"HKDF-SHA256","aead":"AES-256-GCM","key_id":"e3b0c44298fc1c14","public_key":""}`))
	f.Add([]byte(`{"kem":1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var k sealingKey
		if err := decodeStrict(data, &k); err != nil {
			return
		}
		// Whatever decodes is a usable key.
		if _, err := Seal(ward.SealingKey(k), "acme", "resize", []byte("x")); err != nil {
			t.Fatalf("accepted key does not seal: %v", err)
		}
	})
}
