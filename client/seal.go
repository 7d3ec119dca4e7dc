package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/seal/box"
)

// SealingKey returns the public sealing key of a function, to seal payloads
// to with Seal. The answer is checked: a key of another suite, whose key id
// does not match its public key, or whose public key is not well-formed is
// refused with an error wrapping ErrBadResponse.
//
// The key comes from the server; a caller that does not trust the server to
// hand out the right key can compare KeyID with one it learned out of band
// (the function owner sees it when setting the key).
func (c *Client) SealingKey(ctx context.Context, project, fn string) (ward.SealingKey, error) {
	var k sealingKey
	err := c.callJSON(ctx, http.MethodGet, []string{"v1", "projects", project, "functions", fn, "sealing-key"},
		nil, &k, http.StatusOK)
	if err != nil {
		return ward.SealingKey{}, err
	}
	return ward.SealingKey(k), nil
}

// Seal seals payload to a function's sealing key (from Client.SealingKey) for
// the function fn of project, and returns the envelope to submit as
// ward.SubmitRequest.Sealed. Only that function's tasks can open it: not the
// server, and not another function even with the same key. A key of another
// suite, or whose key id does not match its public key, is refused with an
// invalid_sealing_key *ward.Error; invalid names give invalid_argument.
func Seal(key ward.SealingKey, project, fn string, payload []byte) ([]byte, error) {
	if err := checkSealingKey(key); err != nil {
		return nil, ward.Errorf(box.CodeInvalidKey, "sealing key: %v", err)
	}
	return box.Seal(key.PublicKey, box.Recipient{Project: project, Function: fn}, payload)
}

type sealingKey ward.SealingKey

func (k *sealingKey) requiredKeys() []string {
	return []string{"kem", "kdf", "aead", "key_id", "public_key"}
}

func (k *sealingKey) validate() error { return checkSealingKey(ward.SealingKey(*k)) }

// checkSealingKey checks the suite, the public key and its id.
func checkSealingKey(k ward.SealingKey) error {
	if k.KEM != box.KEMName || k.KDF != box.KDFName || k.AEAD != box.AEADName {
		return fmt.Errorf("unsupported suite %.40q/%.40q/%.40q, want %s/%s/%s",
			k.KEM, k.KDF, k.AEAD, box.KEMName, box.KDFName, box.AEADName)
	}
	if err := box.CheckPublicKey(k.PublicKey); err != nil {
		return err
	}
	if id := box.KeyID(k.PublicKey); k.KeyID != id {
		return fmt.Errorf("key id %.40q does not match the public key, whose id is %s", k.KeyID, id)
	}
	return nil
}
