package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/seal/box"
)

// keyIDLen is the length of a sealing key id: hex of 8 bytes.
const keyIDLen = 16

// validKeyID reports whether s looks like a sealing key id (lowercase hex).
func validKeyID(s string) bool {
	if len(s) != keyIDLen {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// createdSealingKey is the JSON answer of `sealing-key --create`: the public
// key, where the private key was written, and the secret's version.
type createdSealingKey struct {
	ward.SealingKey
	Function       string `json:"function"`
	PrivateKeyFile string `json:"private_key_file"`
	SecretVersion  int    `json:"secret_version"`
}

func newSealingKeyCmd(g *globals) *cobra.Command {
	var create bool
	var out string
	cmd := &cobra.Command{
		Use:   "sealing-key FUNCTION [--create --out FILE]",
		Short: "Show a function's public sealing key, or create a key pair and keep the private key",
		Long: `Sealed payloads are encrypted on the client to FUNCTION's public sealing key
('ward task submit --seal'), so that ward stores and delivers them without
being able to read them: only FUNCTION's tasks, which receive the private key
as the secret ward-sealing-key, can open them (in Go, task.Payload and
task.Decode do it). An envelope is bound to the project and the function; it
does not open for any other.

Without --create, print the function's public sealing key: its key id and
suite (-o json: the whole key, public key bytes in base64). The first request
for a function's key makes ward create the key pair; ward then holds the only
copy of the private key.

With --create, generate a new key pair here, write the private key (PEM) to
--out with mode 0600 (an existing file is never overwritten), upload it as
the function's secret ward-sealing-key, and print the new key id. Keeping
that file lets the owner read sealed payloads back with
'ward task payload ID --unseal-key FILE'; guard it like any private key.

Replacing a function's key has a cost: tasks already queued that were sealed
to the previous key fail with sealed_key_mismatch when they run, since the
previous private key is gone. Create the key before submitting sealed tasks,
or let the queue drain first.`,
		Example: `  ward sealing-key resize
  ward sealing-key resize -o json
  ward sealing-key resize --create --out resize-sealing.pem`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fn := args[0]
			if !ward.ValidName(fn) {
				return usagef("function %q is not a valid name (lowercase letters, digits and '-', 1-63 characters)", fn)
			}
			switch {
			case create && out == "":
				return usagef("--create needs --out FILE, where the private key is kept")
			case !create && out != "":
				return usagef("--out is only for --create")
			case out == "-":
				return usagef("--out must be a file: the private key is not printed")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if create {
				return g.createSealingKey(cmd.Context(), c, fn, out)
			}
			k, err := c.SealingKey(cmd.Context(), g.cfg.Project, fn)
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, k)
			}
			return writeSealingKey(g.stdout, fn, k)
		},
	}
	cmd.Flags().BoolVar(&create, "create", false, "generate a new key pair, keep its private key in --out, and make it the function's key")
	cmd.Flags().StringVar(&out, "out", "", "with --create: the new file to write the private key to (mode 0600)")
	return cmd
}

// createSealingKey generates a key pair, writes the private key to out,
// uploads it as fn's sealing key and checks the server now answers its
// public half.
func (g *globals) createSealingKey(ctx context.Context, c *client.Client, fn, out string) error {
	// Also checks the function exists and the token may write its secrets,
	// before a file is written.
	existing, err := c.ListSecrets(ctx, g.cfg.Project, fn)
	if err != nil {
		return err
	}
	replacing := false
	for _, s := range existing {
		replacing = replacing || s.Name == ward.SealingKeySecret
	}
	priv, pub, err := box.GenerateKey()
	if err != nil {
		return err
	}
	defer clear(priv)
	pemKey := box.MarshalPrivateKey(priv)
	defer clear(pemKey)
	id := box.KeyID(pub)
	if err := writeNewFile(out, pemKey); err != nil {
		return err
	}
	s, err := c.PutSecret(ctx, g.cfg.Project, fn, ward.SealingKeySecret, pemKey)
	if err != nil {
		var ae *client.APIError
		if errors.As(err, &ae) {
			// The server refused it: the key is not in use anywhere.
			if rmErr := os.Remove(out); rmErr != nil {
				return fmt.Errorf("uploading the sealing key: %w (and removing %s: %v)", err, out, rmErr)
			}
			return fmt.Errorf("uploading the sealing key (%s removed): %w", out, err)
		}
		return fmt.Errorf("uploading the sealing key, kept in %s, may have failed (check 'ward sealing-key %s' for key id %s): %w", out, fn, id, err)
	}
	k, err := c.SealingKey(ctx, g.cfg.Project, fn)
	if err != nil {
		return fmt.Errorf("the sealing key %s was uploaded, but reading it back failed: %w", id, err)
	}
	if k.KeyID != id {
		return ward.Errorf(box.CodeKeyMismatch, "uploaded sealing key %s, but the server answers key %s (another write at the same time?)", id, k.KeyID)
	}
	if replacing {
		fmt.Fprintf(g.stderr, "Replaced %s's sealing key: queued tasks sealed to the previous key will fail with %s.\n", fn, box.CodeKeyMismatch)
	}
	if g.cfg.Output == outputJSON {
		return writeJSON(g.stdout, createdSealingKey{SealingKey: k, Function: fn, PrivateKeyFile: out, SecretVersion: s.Version})
	}
	t := newTable(g.stdout)
	t.row("Function:", fn)
	t.row("Key ID:", id)
	t.row("Private key:", out+" (mode 0600; keep it safe)")
	t.row("Secret:", fmt.Sprintf("%s version %d", ward.SealingKeySecret, s.Version))
	return t.flush()
}

// writeNewFile writes b to a file that must not exist yet, mode 0600; on a
// failed write the partial file is removed.
func writeNewFile(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return ward.Errorf(ward.CodeAlreadyExists, "%s exists; it is not overwritten (choose another --out)", name)
	}
	if err != nil {
		return ward.Errorf(ward.CodeInvalidArgument, "--out: %v", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// maxKeyFileBytes bounds what is read from a private key file; a PEM of a
// 32-byte seed is about 100 bytes.
const maxKeyFileBytes = 16 << 10

// readPrivateKeyFile reads a sealing private key (PEM) from a file. Errors
// never contain the file's content.
func readPrivateKeyFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "--unseal-key: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	defer clear(b)
	if len(b) > maxKeyFileBytes {
		return nil, ward.Errorf(box.CodeInvalidKey, "%s is too large to be a sealing private key", name)
	}
	key, err := box.ParsePrivateKey(b)
	if err != nil {
		// box's messages never hold key bytes.
		return nil, ward.Errorf(box.CodeInvalidKey, "%s: %v", name, err)
	}
	return key, nil
}

// sealRequest replaces req's payload by an envelope sealed to fn's sealing
// key; a non-empty keyID must be the key's id.
func (g *globals) sealRequest(ctx context.Context, c *client.Client, req ward.SubmitRequest, keyID string) (ward.SubmitRequest, error) {
	plain := []byte(req.Payload)
	if req.PayloadB64 != nil {
		plain = req.PayloadB64
	}
	k, err := c.SealingKey(ctx, g.cfg.Project, req.Function)
	if err != nil {
		return req, err
	}
	if keyID != "" && k.KeyID != keyID {
		return req, ward.Errorf(box.CodeKeyMismatch, "function %s's sealing key is %s, not %s (--key-id); not sealing to it", req.Function, k.KeyID, keyID)
	}
	sealed, err := client.Seal(k, g.cfg.Project, req.Function, plain)
	if err != nil {
		return req, err
	}
	req.Payload, req.PayloadB64, req.Sealed = nil, nil, sealed
	return req, nil
}

func newTaskPayloadCmd(g *globals) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "payload ID [--unseal-key FILE]",
		Short: "Print a task's payload bytes (needs payload:read)",
		Long: `Print the payload of task ID as it is stored. A sealed payload is stored as
an envelope that the server cannot open, so without --unseal-key its bytes
are printed as they are. With --unseal-key FILE (the private key that
'ward sealing-key FUNCTION --create --out FILE' kept), a sealed payload is
opened here, as the task's project and function, and the plaintext printed.`,
		Example: `  ward task payload t_01J…
  ward task payload t_01J… --unseal-key vault-sealing.pem`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var key []byte
			if keyFile != "" {
				var err error
				if key, err = readPrivateKeyFile(keyFile); err != nil {
					return err
				}
				defer clear(key)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if key == nil {
				b, err := c.Payload(ctx, g.cfg.Project, args[0])
				if err != nil {
					return err
				}
				if box.IsSealed(b) {
					fmt.Fprintln(g.stderr, "The payload is sealed: printed as the stored envelope; --unseal-key FILE opens it.")
				}
				_, err = g.stdout.Write(b)
				return err
			}
			tk, err := c.GetTask(ctx, g.cfg.Project, args[0])
			if err != nil {
				return err
			}
			b, err := c.Payload(ctx, g.cfg.Project, args[0])
			if err != nil {
				return err
			}
			if !box.IsSealed(b) {
				fmt.Fprintf(g.stderr, "Task %s's payload is not sealed; printed as stored.\n", safe(tk.ID))
				_, err = g.stdout.Write(b)
				return err
			}
			project := tk.Project
			if project == "" {
				project = g.cfg.Project
			}
			plain, err := box.Open(key, box.Recipient{Project: project, Function: tk.Function}, b)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(plain)
			return err
		},
	}
	cmd.Flags().StringVar(&keyFile, "unseal-key", "", "open a sealed payload with this private key file (PEM)")
	return cmd
}

// normalizeKeyID lowercases a --key-id and checks its form.
func normalizeKeyID(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	s = strings.ToLower(s)
	if !validKeyID(s) {
		return "", usagef("--key-id %q is not a key id (16 hex digits, as 'ward sealing-key FUNCTION' shows)", s)
	}
	return s, nil
}
