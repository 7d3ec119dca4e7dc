package box

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/wardhq/ward"
)

// fuzzSeed is the fixed private key of the fuzzers, so inputs saved by one
// fuzzing run mean the same in the next.
var fuzzSeed = bytes.Repeat([]byte{0x5A}, PrivateKeySize)

func FuzzParse(f *testing.F) {
	_, pub := testKey(f)
	env := seal(f, pub, to, []byte("seed"))
	f.Add(env)
	f.Add(env[:Overhead])
	f.Add(env[:Overhead-1])
	f.Add(env[:19])
	f.Add(env[:5])
	f.Add([]byte{})
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte("\xffWSE\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if err != nil {
			if h.KeyID != "" || h.EncapsulatedKey != nil || h.Size != 0 {
				t.Fatal("a header returned with an error")
			}
			if ward.CodeOf(err) != CodeMalformed {
				t.Fatalf("code %s, want %s", ward.CodeOf(err), CodeMalformed)
			}
			return
		}
		if !IsSealed(b) || len(b) < Overhead || h.Size != HeaderSize {
			t.Fatalf("accepted %d bytes with header %v", len(b), h)
		}
		if h.KeyID != hex.EncodeToString(b[11:19]) || !bytes.Equal(h.EncapsulatedKey, b[19:HeaderSize]) {
			t.Fatalf("header %v does not match the bytes", h)
		}
		if h.Version != Version || h.KEM != KEMName || h.KDF != KDFName || h.AEAD != AEADName {
			t.Fatalf("header %v", h)
		}
	})
}

// FuzzOpen opens arbitrary bytes with a fixed key: it must never panic and
// never succeed unless the input is one of the golden envelopes (really
// sealed to that key), opened as the function it was sealed for. The golden
// envelopes are fixed bytes rather than sealed on the fly because fuzzing
// workers are separate processes and each would seal different ones.
func FuzzOpen(f *testing.F) {
	pub, err := PublicKey(fuzzSeed)
	if err != nil {
		f.Fatal(err)
	}
	genuine := map[string]string{} // envelope → plaintext
	for _, g := range goldenEnvelopes(f) {
		genuine[string(g.envelope)] = string(g.plaintext)
		f.Add(g.envelope, to.Function)
		f.Add(g.envelope, "other")
		flipped := bytes.Clone(g.envelope)
		flipped[len(flipped)-1] ^= 1
		f.Add(flipped, to.Function)
		f.Add(g.envelope[:len(g.envelope)-1], to.Function)
	}
	other := seal(f, pub, Recipient{Project: to.Project, Function: "other"}, []byte("x"))
	f.Add(other, to.Function)
	f.Add([]byte{}, to.Function)
	f.Add([]byte("\xffWSE"), to.Function)
	f.Add([]byte(`{"a":1}`), "")

	f.Fuzz(func(t *testing.T, env []byte, fn string) {
		r := Recipient{Project: to.Project, Function: fn}
		pt, err := Open(fuzzSeed, r, env)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			switch ward.CodeOf(err) {
			case CodeMalformed, CodeKeyMismatch, CodeOpenFailed, ward.CodeInvalidArgument:
			default:
				t.Fatalf("unexpected code %s: %v", ward.CodeOf(err), err)
			}
			return
		}
		want, ok := genuine[string(env)]
		if !ok || fn != to.Function {
			t.Fatalf("opened bytes that were not sealed for %+v", r)
		}
		if string(pt) != want {
			t.Fatal("opened to another plaintext")
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	priv, _ := testKey(f)
	p := MarshalPrivateKey(priv)
	f.Add(p)
	f.Add(MarshalPrivateKey(fuzzSeed))
	f.Add(MarshalPrivateKey(priv[:31]))
	f.Add(bytes.ReplaceAll(p, []byte("WARD SEALING "), nil))
	f.Add(p[:len(p)-5])
	f.Add(append(bytes.Clone(p), 'x'))
	f.Add([]byte("-----BEGIN "))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePrivateKey(b)
		if err != nil {
			if k != nil {
				t.Fatal("key returned with an error")
			}
			if ward.CodeOf(err) != CodeInvalidKey {
				t.Fatalf("code %s, want %s", ward.CodeOf(err), CodeInvalidKey)
			}
			return
		}
		if len(k) != PrivateKeySize {
			t.Fatalf("key of %d bytes", len(k))
		}
		again, err := ParsePrivateKey(MarshalPrivateKey(k))
		if err != nil || !bytes.Equal(again, k) {
			t.Fatalf("re-marshalled key does not parse back: %v", err)
		}
		if _, err := PublicKey(k); err != nil {
			t.Fatalf("PublicKey: %v", err)
		}
	})
}
