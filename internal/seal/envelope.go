package seal

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead/aesgcm"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/secretdata"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/wardhq/ward"
)

// AD is the associated data a field is sealed under: the ciphertext opens
// only under the same project, record (e.g. a task id) and field name.
type AD struct {
	Project string
	Record  string
	Field   string
}

// encode returns the AD, length-prefixed, so distinct ADs never encode alike.
func (a AD) encode(dst []byte) []byte {
	for _, s := range [...]string{a.Project, a.Record, a.Field} {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// Envelope format, version 1:
//
//	[0]      version (1)
//	[1:5]    epoch day, uint32 big-endian (days since 1970-01-01 UTC)
//	[5:9]    epoch key id, uint32 big-endian
//	[9:11]   length n of the wrapped data key, uint16 big-endian
//	[11:11+n] data key wrapped by the epoch key
//	[11+n:]  AES-256-GCM ciphertext of the data (12-byte IV, ciphertext, 16-byte tag)
//
// The header and the AD are the associated data of both the wrapped key and
// the data ciphertext.
const (
	envelopeV1  = 1
	headerLen   = 11
	dataKeyLen  = 32
	gcmOverhead = 12 + 16
)

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

// associatedData returns the AD for the wrapped key (withLabel) or the data.
func associatedData(header []byte, ad AD, withLabel bool) []byte {
	b := make([]byte, 0, len(dekLabel)+len(header)+12+len(ad.Project)+len(ad.Record)+len(ad.Field))
	if withLabel {
		b = append(b, dekLabel...)
	}
	b = append(b, header[:9]...)
	return ad.encode(b)
}

// Seal encrypts plaintext for the project under ad with a fresh data key,
// wraps that key with the project's epoch key for the UTC day of now, and
// returns the envelope.
func (k *Keystore) Seal(ctx context.Context, project string, now time.Time, ad AD, plaintext []byte) ([]byte, error) {
	if err := k.checkAD(project, ad); err != nil {
		return nil, err
	}
	e, err := k.EpochKey(ctx, project, now)
	if err != nil {
		return nil, err
	}
	dek, err := secretdata.NewBytesFromRand(dataKeyLen)
	if err != nil {
		return nil, fmt.Errorf("seal: data key: %w", err)
	}
	data, err := k.dataAEAD(dek)
	if err != nil {
		return nil, err
	}
	var header [headerLen]byte
	header[0] = envelopeV1
	binary.BigEndian.PutUint32(header[1:5], uint32(e.Day))
	binary.BigEndian.PutUint32(header[5:9], e.KeyID)
	wrapped, err := e.aead.Encrypt(dek.Data(insecuresecretdataaccess.Token{}), associatedData(header[:], ad, true))
	if err != nil {
		return nil, fmt.Errorf("seal: wrap data key: %w", err)
	}
	if len(wrapped) > 0xffff {
		return nil, fmt.Errorf("seal: wrapped data key too long (%d bytes)", len(wrapped))
	}
	binary.BigEndian.PutUint16(header[9:11], uint16(len(wrapped)))
	ct, err := data.Encrypt(plaintext, associatedData(header[:], ad, false))
	if err != nil {
		return nil, fmt.Errorf("seal: encrypt: %w", err)
	}
	out := make([]byte, 0, headerLen+len(wrapped)+len(ct))
	out = append(out, header[:]...)
	out = append(out, wrapped...)
	return append(out, ct...), nil
}

// dataAEAD makes the AES-256-GCM primitive of one data key.
func (k *Keystore) dataAEAD(dek secretdata.Bytes) (tink.AEAD, error) {
	key, err := aesgcm.NewKey(dek, 0, k.params)
	if err != nil {
		return nil, fmt.Errorf("seal: data key: %w", err)
	}
	p, err := aesgcm.NewAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("seal: data key: %w", err)
	}
	return p, nil
}

func integrityError(what string) error {
	return &ward.Error{Code: CodeIntegrity, Message: "seal: " + what}
}

// Open decrypts an envelope made by Seal for the same project and ad. A
// malformed or altered envelope, or one sealed under another AD, fails with
// CodeIntegrity; one whose epoch key was destroyed with CodeKeyDestroyed.
func (k *Keystore) Open(ctx context.Context, project string, ad AD, envelope []byte) ([]byte, error) {
	if err := k.checkAD(project, ad); err != nil {
		return nil, err
	}
	if len(envelope) < headerLen {
		return nil, integrityError("envelope too short")
	}
	if envelope[0] != envelopeV1 {
		return nil, integrityError(fmt.Sprintf("unknown envelope version %d", envelope[0]))
	}
	day := int64(binary.BigEndian.Uint32(envelope[1:5]))
	keyID := binary.BigEndian.Uint32(envelope[5:9])
	n := int(binary.BigEndian.Uint16(envelope[9:11]))
	if len(envelope) < headerLen+n+gcmOverhead {
		return nil, integrityError("envelope truncated")
	}
	header := envelope[:headerLen]
	wrapped := envelope[headerLen : headerLen+n]
	ct := envelope[headerLen+n:]
	e, err := k.epochFor(ctx, project, day, keyID)
	if err != nil {
		return nil, err
	}
	dek, err := e.aead.Decrypt(wrapped, associatedData(header, ad, true))
	if err != nil || len(dek) != dataKeyLen {
		return nil, integrityError("data key does not unwrap: envelope altered or sealed for other associated data")
	}
	data, err := k.dataAEAD(secretdata.NewBytesFromData(dek, insecuresecretdataaccess.Token{}))
	if err != nil {
		return nil, err
	}
	pt, err := data.Decrypt(ct, associatedData(header, ad, false))
	if err != nil {
		return nil, integrityError("ciphertext does not authenticate: envelope altered or sealed for other associated data")
	}
	return pt, nil
}
