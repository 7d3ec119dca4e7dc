package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Context is what `ward login` remembers: the server and the token for it.
// The file holding it is written with mode 0600.
type Context struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// maxContextFile bounds the size of a context file.
const maxContextFile = 1 << 20

// DefaultConfigPath returns where the CLI context file lives: wardConfigEnv
// (the value of WARD_CONFIG) when it is not empty, else
// $HOME/.config/ward/config.json.
func DefaultConfigPath(wardConfigEnv string) (string, error) {
	if wardConfigEnv != "" {
		return wardConfigEnv, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locating the ward config file: %w", err)
	}
	return filepath.Join(home, ".config", "ward", "config.json"), nil
}

// LoadContext reads a context file. A missing file gives an error that
// matches fs.ErrNotExist. Unknown fields and trailing data are errors; the
// token never appears in one.
func LoadContext(path string) (Context, error) {
	f, err := os.Open(path)
	if err != nil {
		return Context{}, fmt.Errorf("reading ward config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxContextFile+1))
	if err != nil {
		return Context{}, fmt.Errorf("reading ward config %s: %w", path, err)
	}
	if len(data) > maxContextFile {
		return Context{}, fmt.Errorf("reading ward config %s: larger than %d bytes", path, maxContextFile)
	}
	var c Context
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Context{}, fmt.Errorf("reading ward config %s: %w", path, redactJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Context{}, fmt.Errorf("reading ward config %s: data after the JSON object", path)
	}
	return c, nil
}

// redactJSONError keeps the kind and position of a JSON error but not the
// offending value, which could be part of a token.
func redactJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q has the wrong type", typ.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("empty or truncated JSON")
	}
	// Unknown-field errors name only the field.
	return err
}

// SaveContext writes c to path atomically (a temporary file in the same
// directory, renamed over path) with mode 0600, creating the parent directory
// with mode 0700 if needed.
func SaveContext(path string, c Context) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("saving ward config: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("saving ward config: %w", err)
	}
	data = append(data, '\n')
	tmp, err := os.CreateTemp(dir, ".config-*.tmp")
	if err != nil {
		return fmt.Errorf("saving ward config: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("saving ward config: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("saving ward config: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("saving ward config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving ward config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("saving ward config: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("saving ward config: %w", err)
	}
	return nil
}
