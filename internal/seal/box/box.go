// Package box is the byte format of ward's sealed payloads: a client seals a
// payload to a function's public key before it leaves the client, the server
// stores and delivers the envelope as it is, and only the function's tasks,
// which receive the private key as a secret file, can open it.
//
// Sealing is HPKE (RFC 9180, base mode, one message per envelope) from the
// standard library's crypto/hpke with one fixed suite: the hybrid
// post-quantum KEM MLKEM768-X25519 (X-Wing), HKDF-SHA256 and AES-256-GCM.
// A private key is the KEM's 32-byte seed; a public key is the KEM's
// 1216-byte encapsulation key. Owners keep private keys as PEM blocks of type
// "WARD SEALING PRIVATE KEY" whose bytes are the seed.
//
// # Envelope format, version 1
//
//	[0:4]      magic 0xFF 'W' 'S' 'E'
//	[4]        version, 1
//	[5:7]      KEM id, uint16 big-endian (0x647A, MLKEM768-X25519)
//	[7:9]      KDF id, uint16 big-endian (0x0001, HKDF-SHA256)
//	[9:11]     AEAD id, uint16 big-endian (0x0002, AES-256-GCM)
//	[11:19]    key id: the first 8 bytes of SHA-256 of the recipient public key
//	[19:1139]  the encapsulated key (1120 bytes for MLKEM768-X25519)
//	[1139:]    the AEAD ciphertext of the payload, ending in a 16-byte tag
//
// The magic starts with 0xFF, a byte that never occurs in UTF-8 text, so no
// JSON or text payload is ever mistaken for an envelope. The whole header
// (bytes 0 to 1139) is the AEAD's associated data. The HPKE info string binds
// the recipient: the domain label "ward sealed payload", a zero byte, then
// the project name and the function name, each preceded by its length as a
// uint32 big-endian, so distinct (project, function) pairs never encode
// alike. An envelope sealed for function A of project P therefore does not
// open as function B or in project Q, and a change to any byte of an
// envelope makes it fail to open rather than yield other bytes.
//
// A server holding no key can still Parse an envelope and compare its key id
// with the function's, to refuse at submit time a payload sealed to another
// key.
//
// Errors are *ward.Error with the codes below; their messages never contain
// key material or plaintext.
package box

import (
	"bytes"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"

	"github.com/wardhq/ward"
)

// Error codes of this package (declared in package ward, so that task code
// can tell them without linking the sealing code).
const (
	// CodeMalformed: the bytes are not an envelope, are truncated, or have an
	// unknown version or suite.
	CodeMalformed = ward.CodeSealedMalformed
	// CodeKeyMismatch: the envelope was sealed to another public key (for
	// another function, or before a key rotation).
	CodeKeyMismatch = ward.CodeSealedKeyMismatch
	// CodeOpenFailed: the envelope does not authenticate: it was altered, or
	// sealed for another project or function.
	CodeOpenFailed = ward.CodeSealedOpenFailed
	// CodeInvalidKey: private or public key bytes, or a private key PEM, are
	// not valid.
	CodeInvalidKey = ward.CodeInvalidSealingKey
)

// Sentinels for errors.Is, one per code.
var (
	ErrMalformed   = &ward.Error{Code: CodeMalformed}
	ErrKeyMismatch = &ward.Error{Code: CodeKeyMismatch}
	ErrOpenFailed  = &ward.Error{Code: CodeOpenFailed}
	ErrInvalidKey  = &ward.Error{Code: CodeInvalidKey}
)

// Names of the one suite, as the API spells them (ward.SealingKey).
const (
	KEMName  = "MLKEM768-X25519"
	KDFName  = "HKDF-SHA256"
	AEADName = "AES-256-GCM"
)

// PEMType is the PEM block type of a sealing private key.
const PEMType = "WARD SEALING PRIVATE KEY"

// Version is the envelope format version Seal writes.
const Version = 1

// Sizes, in bytes.
const (
	PrivateKeySize = 32                   // the KEM seed
	PublicKeySize  = 1184 + 32            // ML-KEM-768 encapsulation key, then the X25519 point
	EncSize        = 1088 + 32            // ML-KEM-768 ciphertext, then the ephemeral X25519 point
	HeaderSize     = 19 + EncSize         // everything before the ciphertext
	Overhead       = HeaderSize + tagSize // envelope size minus plaintext size
	keyIDSize      = 8
	tagSize        = 16
)

// Suite identifiers (RFC 9180 and draft-ietf-hpke-pq).
const (
	kemID  = 0x647A
	kdfID  = 0x0001
	aeadID = 0x0002
)

// magic opens every envelope.
var magic = [4]byte{0xFF, 'W', 'S', 'E'}

// infoLabel is the domain label at the start of the HPKE info string.
const infoLabel = "ward sealed payload"

// Recipient names the function an envelope is sealed for.
type Recipient struct {
	Project  string
	Function string
}

// check reports an invalid_argument error when a name is not a valid ward
// name (the names are not secret, so they may appear in the message).
func (r Recipient) check() error {
	if !ward.ValidName(r.Project) {
		return ward.FieldError("project", "%q is not a valid project name", r.Project)
	}
	if !ward.ValidName(r.Function) {
		return ward.FieldError("function", "%q is not a valid function name", r.Function)
	}
	return nil
}

// info returns the HPKE info string binding r.
func (r Recipient) info() []byte {
	b := make([]byte, 0, len(infoLabel)+1+8+len(r.Project)+len(r.Function))
	b = append(b, infoLabel...)
	b = append(b, 0)
	for _, s := range [...]string{r.Project, r.Function} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

func suite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.MLKEM768X25519(), hpke.HKDFSHA256(), hpke.AES256GCM()
}

func errorf(code ward.Code, format string, args ...any) error {
	return ward.Errorf(code, "sealed payload: "+format, args...)
}

// GenerateKey returns a new key pair: the 32-byte private seed and the
// public key.
func GenerateKey() (private, public []byte, err error) {
	kem, _, _ := suite()
	k, err := kem.GenerateKey()
	if err != nil {
		return nil, nil, errorf(ward.CodeInternal, "generating a key pair failed")
	}
	private, err = k.Bytes()
	if err != nil {
		return nil, nil, errorf(ward.CodeInternal, "generating a key pair failed")
	}
	return bytes.Clone(private), k.PublicKey().Bytes(), nil
}

// privateKey parses a private seed.
func privateKey(private []byte) (hpke.PrivateKey, error) {
	if len(private) != PrivateKeySize {
		return nil, errorf(CodeInvalidKey, "a private key is %d bytes, got %d", PrivateKeySize, len(private))
	}
	kem, _, _ := suite()
	k, err := kem.NewPrivateKey(private)
	if err != nil {
		return nil, errorf(CodeInvalidKey, "invalid private key")
	}
	return k, nil
}

// publicKey parses public key bytes.
func publicKey(public []byte) (hpke.PublicKey, error) {
	if len(public) != PublicKeySize {
		return nil, errorf(CodeInvalidKey, "a public key is %d bytes, got %d", PublicKeySize, len(public))
	}
	kem, _, _ := suite()
	k, err := kem.NewPublicKey(public)
	if err != nil {
		return nil, errorf(CodeInvalidKey, "invalid public key")
	}
	return k, nil
}

// PublicKey returns the public key of a private seed.
func PublicKey(private []byte) ([]byte, error) {
	k, err := privateKey(private)
	if err != nil {
		return nil, err
	}
	return k.PublicKey().Bytes(), nil
}

// CheckPublicKey reports an invalid_sealing_key error unless public is a
// well-formed public key of the suite.
func CheckPublicKey(public []byte) error {
	_, err := publicKey(public)
	return err
}

// KeyID returns the id of a public key: the lowercase hex of the first 8
// bytes of its SHA-256.
func KeyID(public []byte) string {
	sum := sha256.Sum256(public)
	return hex.EncodeToString(sum[:keyIDSize])
}

// MarshalPrivateKey returns a private seed as a PEM block of type PEMType,
// the form an owner keeps in a file and ward stores as the function's secret.
func MarshalPrivateKey(private []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: PEMType, Bytes: private})
}

// ParsePrivateKey returns the private seed in a PEM block made by
// MarshalPrivateKey. Anything else (other text around the block, another
// block type, PEM headers, a seed of the wrong size) is an
// invalid_sealing_key error.
func ParsePrivateKey(b []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(b)
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return nil, errorf(CodeInvalidKey, "not a PEM-encoded sealing private key")
	}
	block, rest := pem.Decode(trimmed)
	switch {
	case block == nil:
		return nil, errorf(CodeInvalidKey, "not a PEM-encoded sealing private key")
	case block.Type != PEMType:
		return nil, errorf(CodeInvalidKey, "PEM block is not a %q", PEMType)
	case len(block.Headers) != 0:
		return nil, errorf(CodeInvalidKey, "unexpected PEM headers in a sealing private key")
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, errorf(CodeInvalidKey, "unexpected data after the sealing private key")
	}
	if _, err := privateKey(block.Bytes); err != nil {
		return nil, err
	}
	return block.Bytes, nil
}

// Header is the clear part of an envelope.
type Header struct {
	Version         int
	KEM, KDF, AEAD  string // suite names: KEMName, KDFName, AEADName
	KeyID           string // id of the public key the envelope is sealed to (see KeyID)
	EncapsulatedKey []byte // the KEM's encapsulated key (aliases the envelope)
	Size            int    // header length in bytes; the ciphertext follows
}

// IsSealed reports whether b starts like an envelope (its magic). It does not
// check the rest; Parse does.
func IsSealed(b []byte) bool {
	return len(b) >= len(magic) && [4]byte(b[:4]) == magic
}

// Parse reads and checks an envelope's header without any key: the magic,
// version and suite, and that a ciphertext of at least the AEAD tag follows.
// Any failure is a sealed_malformed error.
func Parse(envelope []byte) (Header, error) {
	if !IsSealed(envelope) {
		return Header{}, errorf(CodeMalformed, "not a sealed envelope")
	}
	if len(envelope) < 5 {
		return Header{}, errorf(CodeMalformed, "envelope truncated")
	}
	if v := envelope[4]; v != Version {
		return Header{}, errorf(CodeMalformed, "unknown envelope version %d", v)
	}
	if len(envelope) < 19 {
		return Header{}, errorf(CodeMalformed, "envelope truncated")
	}
	kem := binary.BigEndian.Uint16(envelope[5:7])
	kdf := binary.BigEndian.Uint16(envelope[7:9])
	aead := binary.BigEndian.Uint16(envelope[9:11])
	if kem != kemID || kdf != kdfID || aead != aeadID {
		return Header{}, errorf(CodeMalformed, "unsupported suite kem=0x%04x kdf=0x%04x aead=0x%04x", kem, kdf, aead)
	}
	if len(envelope) < Overhead {
		return Header{}, errorf(CodeMalformed, "envelope truncated")
	}
	return Header{
		Version:         Version,
		KEM:             KEMName,
		KDF:             KDFName,
		AEAD:            AEADName,
		KeyID:           hex.EncodeToString(envelope[11:19]),
		EncapsulatedKey: envelope[19:HeaderSize:HeaderSize],
		Size:            HeaderSize,
	}, nil
}

// Seal seals plaintext to the public key for the recipient function and
// returns the envelope. Bad key bytes are an invalid_sealing_key error; a
// recipient whose names are not valid ward names, invalid_argument.
func Seal(public []byte, to Recipient, plaintext []byte) ([]byte, error) {
	if err := to.check(); err != nil {
		return nil, err
	}
	pk, err := publicKey(public)
	if err != nil {
		return nil, err
	}
	_, kdf, aead := suite()
	enc, sender, err := hpke.NewSender(pk, kdf, aead, to.info())
	if err != nil {
		// The only way encapsulation fails is a degenerate X25519 point.
		return nil, errorf(CodeInvalidKey, "invalid public key")
	}
	if len(enc) != EncSize {
		return nil, errorf(ward.CodeInternal, "unexpected encapsulated key size %d", len(enc))
	}
	env := make([]byte, 0, Overhead+len(plaintext))
	env = append(env, magic[:]...)
	env = append(env, Version)
	env = binary.BigEndian.AppendUint16(env, kemID)
	env = binary.BigEndian.AppendUint16(env, kdfID)
	env = binary.BigEndian.AppendUint16(env, aeadID)
	sum := sha256.Sum256(public)
	env = append(env, sum[:keyIDSize]...)
	env = append(env, enc...)
	ct, err := sender.Seal(env, plaintext)
	if err != nil {
		return nil, errorf(ward.CodeInternal, "sealing failed")
	}
	return append(env, ct...), nil
}

// Open opens an envelope with the private seed as the recipient function and
// returns the plaintext. Errors: invalid_sealing_key for bad key bytes,
// invalid_argument for an invalid recipient, sealed_malformed for bytes that
// are not an envelope, sealed_key_mismatch when the envelope was sealed to
// another key, and sealed_open_failed when it does not authenticate (altered,
// or sealed for another project or function). Open never returns plaintext
// from an envelope that fails.
func Open(private []byte, to Recipient, envelope []byte) ([]byte, error) {
	if err := to.check(); err != nil {
		return nil, err
	}
	sk, err := privateKey(private)
	if err != nil {
		return nil, err
	}
	h, err := Parse(envelope)
	if err != nil {
		return nil, err
	}
	if want := KeyID(sk.PublicKey().Bytes()); h.KeyID != want {
		return nil, errorf(CodeKeyMismatch, "envelope sealed to key %s, not to this key %s", h.KeyID, want)
	}
	_, kdf, aead := suite()
	r, err := hpke.NewRecipient(h.EncapsulatedKey, sk, kdf, aead, to.info())
	if err != nil {
		return nil, errorf(CodeOpenFailed, "envelope does not open for %s/%s", to.Project, to.Function)
	}
	pt, err := r.Open(envelope[:h.Size], envelope[h.Size:])
	if err != nil {
		return nil, errorf(CodeOpenFailed, "envelope does not open for %s/%s", to.Project, to.Function)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// String describes a header without its encapsulated key.
func (h Header) String() string {
	return fmt.Sprintf("sealed v%d %s/%s/%s key %s", h.Version, h.KEM, h.KDF, h.AEAD, h.KeyID)
}
