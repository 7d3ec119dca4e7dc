// Package unseal lets task.Payload and task.Decode open sealed payloads.
// Import it for its effect in a function that receives sealed payloads:
//
//	import _ "github.com/wardhq/ward/task/unseal"
//
// It is apart from package task because the sealing code (HPKE with the
// hybrid ML-KEM-768 + X25519 KEM) adds about 1 MiB to a WebAssembly module
// and slows the start of every task that links it. Without it, a sealed
// payload fails the task with sealed_open_failed and a message naming this
// package.
package unseal

import (
	"github.com/wardhq/ward/internal/seal/box"
	"github.com/wardhq/ward/task/internal/sealhook"
)

func init() { sealhook.Open = open }

// open parses the private key and opens the envelope; the key bytes are
// wiped afterwards.
func open(keyPEM []byte, project, function string, envelope []byte) ([]byte, error) {
	key, err := box.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return box.Open(key, box.Recipient{Project: project, Function: function}, envelope)
}
