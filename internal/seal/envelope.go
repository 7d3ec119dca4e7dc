package seal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/wardhq/ward"
)

// AD is the associated data a field is sealed under: the ciphertext opens
// only under the same project, record (e.g. a task id) and field name.
type AD struct {
	Project string
	Record  string
	Field   string
}

// appendLP appends s with a 4-byte length prefix, so distinct sequences of
// strings never encode alike.
func appendLP(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// Envelope format, version 2:
//
//	[0]      version (2)
//	[1:5]    epoch day, uint32 big-endian (days since 1970-01-01 UTC;
//	         0xFFFFFFFF for the project's lasting key)
//	[5:9]    epoch key id, uint32 big-endian
//	[9:21]   AES-GCM nonce
//	[21:]    AES-256-GCM ciphertext and 16-byte tag
//
// The data key is not stored: it is derived from the epoch key and the
// record (see dataKey), so each record (a task, a config object, a secret
// version, a code artifact) has its own key, 37 bytes of overhead per field,
// and destroying the epoch key destroys every data key derived from it. The
// GCM associated data is the header's first 9 bytes followed by the AD.
const (
	envelopeV2 = 2
	headerLen  = 9
	nonceLen   = 12
	tagLen     = 16
	dataKeyLen = 32
	// Overhead is the number of bytes an envelope adds to its plaintext.
	Overhead = headerLen + nonceLen + tagLen
)

// LastingDay is the epoch day of a project's lasting key: the key for
// records that live until they are replaced or the project is deleted
// (config, secrets, code), which retention never destroys.
const LastingDay int64 = 1<<32 - 1

func (k *Keystore) checkAD(project string, ad AD) error {
	if err := checkProject(project); err != nil {
		return err
	}
	if ad.Project != project {
		return ward.FieldError("ad.project", "does not match the project")
	}
	if ad.Record == "" {
		return ward.FieldError("ad.record", "is empty")
	}
	if ad.Field == "" {
		return ward.FieldError("ad.field", "is empty")
	}
	return nil
}

// dataKey derives the record's data key from the epoch key: one
// HMAC-SHA256 invocation in the counter-mode KDF of NIST SP 800-108 (one
// block, so the counter is 1), labelled and bound to project and record.
func dataKey(e Epoch, ad AD) (cipher.AEAD, error) {
	in := make([]byte, 0, 1+len(dekLabel)+1+8+len(ad.Project)+len(ad.Record)+2)
	in = append(in, 1)
	in = append(in, dekLabel...)
	in = append(in, 0)
	in = appendLP(in, ad.Project)
	in = appendLP(in, ad.Record)
	in = binary.BigEndian.AppendUint16(in, dataKeyLen*8)
	key, err := e.prf.ComputePrimaryPRF(in, dataKeyLen)
	if err != nil {
		return nil, fmt.Errorf("seal: derive data key: %w", err)
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("seal: data key: %w", err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: data key: %w", err)
	}
	return g, nil
}

// gcmAD returns the GCM associated data: the envelope header and the AD.
func gcmAD(header []byte, ad AD) []byte {
	b := make([]byte, 0, headerLen+12+len(ad.Project)+len(ad.Record)+len(ad.Field))
	b = append(b, header[:headerLen]...)
	b = appendLP(b, ad.Project)
	b = appendLP(b, ad.Record)
	return appendLP(b, ad.Field)
}

// Seal encrypts plaintext for the project under ad, with the data key of
// ad's record under the project's epoch key for the UTC day of now, and
// returns the envelope. Retention destroys that epoch key: use it for task
// bodies and other data that expires.
func (k *Keystore) Seal(ctx context.Context, project string, now time.Time, ad AD, plaintext []byte) ([]byte, error) {
	if err := k.checkAD(project, ad); err != nil {
		return nil, err
	}
	e, err := k.EpochKey(ctx, project, now)
	if err != nil {
		return nil, err
	}
	return sealWith(e, ad, plaintext)
}

// SealLasting is Seal under the project's lasting key, which only project
// deletion destroys: for config, secrets and code.
func (k *Keystore) SealLasting(ctx context.Context, project string, ad AD, plaintext []byte) ([]byte, error) {
	if err := k.checkAD(project, ad); err != nil {
		return nil, err
	}
	e, err := k.epoch(ctx, epochRef{project, LastingDay})
	if err != nil {
		return nil, err
	}
	return sealWith(e, ad, plaintext)
}

func sealWith(e Epoch, ad AD, plaintext []byte) ([]byte, error) {
	g, err := dataKey(e, ad)
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerLen+nonceLen, Overhead+len(plaintext))
	out[0] = envelopeV2
	binary.BigEndian.PutUint32(out[1:5], uint32(e.Day))
	binary.BigEndian.PutUint32(out[5:9], e.KeyID)
	if _, err := rand.Read(out[headerLen:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return g.Seal(out, out[headerLen:], plaintext, gcmAD(out, ad)), nil
}

func integrityError(what string) error {
	return &ward.Error{Code: CodeIntegrity, Message: "seal: " + what}
}

// Open decrypts an envelope made by Seal or SealLasting for the same project
// and ad. A malformed or altered envelope, or one sealed under another AD,
// fails with CodeIntegrity; one whose epoch key was destroyed with
// CodeKeyDestroyed.
func (k *Keystore) Open(ctx context.Context, project string, ad AD, envelope []byte) ([]byte, error) {
	if err := k.checkAD(project, ad); err != nil {
		return nil, err
	}
	if len(envelope) < headerLen {
		return nil, integrityError("envelope too short")
	}
	if envelope[0] != envelopeV2 {
		return nil, integrityError(fmt.Sprintf("unknown envelope version %d", envelope[0]))
	}
	if len(envelope) < Overhead {
		return nil, integrityError("envelope truncated")
	}
	day := int64(binary.BigEndian.Uint32(envelope[1:5]))
	keyID := binary.BigEndian.Uint32(envelope[5:9])
	e, err := k.epochFor(ctx, project, day, keyID)
	if err != nil {
		return nil, err
	}
	g, err := dataKey(e, ad)
	if err != nil {
		return nil, err
	}
	pt, err := g.Open(nil, envelope[headerLen:headerLen+nonceLen], envelope[headerLen+nonceLen:], gcmAD(envelope, ad))
	if err != nil {
		return nil, integrityError("ciphertext does not authenticate: envelope altered or sealed for other associated data")
	}
	return pt, nil
}

// tokenLabel separates token MACs from every other use of the lasting key.
const tokenLabel = "ward/seal/token/v1"

// TokenMAC returns the MAC from which the project's token for value under
// the field pattern is made: HMAC-SHA256 under the project's lasting key of
// a labelled, length-prefixed (project, pattern, value). The same value
// under the same pattern gives the same MAC for the life of the project;
// another project, pattern or value gives an unrelated one, and without the
// key a MAC reveals nothing of the value.
func (k *Keystore) TokenMAC(ctx context.Context, project, pattern string, value []byte) ([]byte, error) {
	if err := checkProject(project); err != nil {
		return nil, err
	}
	e, err := k.epoch(ctx, epochRef{project, LastingDay})
	if err != nil {
		return nil, err
	}
	in := make([]byte, 0, len(tokenLabel)+12+len(project)+len(pattern)+len(value))
	in = append(in, tokenLabel...)
	in = appendLP(in, project)
	in = appendLP(in, pattern)
	in = appendLP(in, string(value))
	mac, err := e.prf.ComputePrimaryPRF(in, 32)
	if err != nil {
		return nil, fmt.Errorf("seal: token: %w", err)
	}
	return mac, nil
}
