// Package task is for Go code running inside a ward task. It reads the task
// contract (DESIGN §4) so a task's main function can be a few lines:
//
//	var req Request
//	if err := task.Decode(&req); err != nil {
//		task.Fail(err)
//	}
//	if err := task.Result(handle(req)); err != nil {
//		task.Fail(err)
//	}
//
// The payload is read from the file named by WARD_PAYLOAD_FILE (normally
// /ward/payload) or, when no payload file exists, from standard input. The
// merged config is a JSON object of strings at WARD_CONFIG_FILE
// (/ward/config.json); secrets are files under WARD_SECRETS_DIR
// (/ward/secrets). The result goes to standard output, the log to standard
// error, and exit status 0 means success.
//
// # Sealed payloads
//
// A client can seal a payload to the function's public key (client.Seal);
// the platform stores and delivers the envelope as it is, sets
// WARD_PAYLOAD_SEALED=1, and gives the task the function's private key as the
// secret file ward-sealing-key. With package task/unseal imported
// (import _ "github.com/wardhq/ward/task/unseal"), Payload and Decode then
// unseal transparently:
// they open the envelope as this project and function (WARD_PROJECT,
// WARD_FUNCTION) and return the plaintext. An envelope that does not open
// (altered, sealed for another function or project, or to another key), or a
// missing or bad key, is an error, so the task fails rather than see the
// envelope as its payload. Sealed tells whether the payload arrived sealed.
// Without WARD_PAYLOAD_SEALED the payload is returned as it is. Without
// task/unseal a sealed payload is an error naming that package: the sealing
// code stays out of tasks that do not need it.
//
// The package uses the standard library and ward's own sealing format only,
// and builds for GOOS=wasip1 GOARCH=wasm as well as for native targets, so
// task code can be unit-tested natively.
package task

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/task/internal/sealhook"
)

// Environment variables set by ward for every task.
const (
	EnvTaskID      = "WARD_TASK_ID"
	EnvProject     = "WARD_PROJECT"
	EnvFunction    = "WARD_FUNCTION"
	EnvAttempt     = "WARD_ATTEMPT"
	EnvPayloadFile = "WARD_PAYLOAD_FILE"
	EnvConfigFile  = "WARD_CONFIG_FILE"
	EnvSecretsDir  = "WARD_SECRETS_DIR"
	// EnvPayloadSealed is "1" when the payload is a sealed envelope that
	// Payload and Decode open with the SealingKeySecret.
	EnvPayloadSealed = "WARD_PAYLOAD_SEALED"
)

// SealingKeySecret is the name of the secret file holding the function's
// sealing private key (PEM), delivered when the payload is sealed.
const SealingKeySecret = ward.SealingKeySecret

// Default locations of the read-only task files, used when the matching
// environment variable is unset.
const (
	DefaultPayloadFile = "/ward/payload"
	DefaultConfigFile  = "/ward/config.json"
	DefaultSecretsDir  = "/ward/secrets"
)

// ErrInvalidSecretName is returned by Secret for a name that is empty or
// could escape the secrets directory.
var ErrInvalidSecretName = errors.New("task: invalid secret name")

// env is the task's view of its surroundings. The exported functions use the
// process's real environment; tests build one pointing at a temporary
// directory.
type env struct {
	lookup         func(string) (string, bool)
	payloadFile    string // fallback when EnvPayloadFile is unset
	configFile     string // fallback when EnvConfigFile is unset
	secretsDir     string // fallback when EnvSecretsDir is unset
	stdin          io.Reader
	stdout, stderr io.Writer
	exit           func(code int)
}

// processEnv returns the env of the running process.
func processEnv() *env {
	return &env{
		lookup:      os.LookupEnv,
		payloadFile: DefaultPayloadFile,
		configFile:  DefaultConfigFile,
		secretsDir:  DefaultSecretsDir,
		stdin:       os.Stdin,
		stdout:      os.Stdout,
		stderr:      os.Stderr,
		exit:        os.Exit,
	}
}

// Payload returns the task's payload: the contents of the file named by
// WARD_PAYLOAD_FILE, else of /ward/payload, else all of standard input. When it
// falls back to standard input it consumes it, so call Payload once. A sealed
// payload (Sealed) is returned opened; one that does not open is an error
// that wraps the sealing error (its ward code, e.g. sealed_open_failed, is
// kept for ward.CodeOf).
func Payload() ([]byte, error) { return processEnv().payload() }

// Sealed reports whether the payload arrived sealed (WARD_PAYLOAD_SEALED=1),
// in which case Payload and Decode unseal it.
func Sealed() bool { return processEnv().sealed() }

// Decode unmarshals the JSON payload into v, unsealing it first when it is
// sealed. Unknown fields are ignored; data
// after the JSON value is an error. An empty (or all-whitespace) payload
// leaves v unchanged and is not an error, so a task submitted without a
// payload sees its zero request.
func Decode(v any) error { return processEnv().decode(v) }

// Config returns the task's merged config (project config overlaid with the
// function's). A missing config file means an empty config.
func Config() (map[string]string, error) { return processEnv().config() }

// Secret returns the value of the named secret. A secret that does not exist
// gives an error wrapping fs.ErrNotExist; a name containing a path separator,
// a NUL byte, or equal to "." or ".." gives one wrapping ErrInvalidSecretName.
func Secret(name string) ([]byte, error) { return processEnv().secret(name) }

// ID returns the task's ID ("" outside ward).
func ID() string { return processEnv().get(EnvTaskID) }

// Project returns the name of the task's project ("" outside ward).
func Project() string { return processEnv().get(EnvProject) }

// Function returns the name of the task's function ("" outside ward).
func Function() string { return processEnv().get(EnvFunction) }

// Attempt returns which attempt this run is, counting from 1, or 0 when
// unknown.
func Attempt() int { return processEnv().attempt() }

// Result writes v as JSON to standard output, the task's result. It writes
// no trailing newline and does not escape <, > and &. Call it once.
func Result(v any) error { return processEnv().result(v) }

// Logf writes a formatted line to standard error, the task's log. A newline
// is added when the format does not end with one.
func Logf(format string, args ...any) { processEnv().logf(format, args...) }

// Fail logs err and exits, failing the task: with status 1, or with
// ward.ExitUnsealFailed when err is a failure to open a sealed payload, so
// that ward reports the run as sealed_open_failed.
func Fail(err error) { processEnv().fail(err) }

func (e *env) get(key string) string {
	v, _ := e.lookup(key)
	return v
}

// path returns the value of the environment variable key, or def when it is
// unset or empty.
func (e *env) path(key, def string) string {
	if v, ok := e.lookup(key); ok && v != "" {
		return v
	}
	return def
}

func (e *env) sealed() bool { return e.get(EnvPayloadSealed) == "1" }

func (e *env) payload() ([]byte, error) {
	b, err := e.rawPayload()
	if err != nil || !e.sealed() {
		return b, err
	}
	return e.unseal(b)
}

// unseal opens a sealed payload with the function's sealing key as this
// task's project and function.
func (e *env) unseal(envelope []byte) ([]byte, error) {
	pemKey, err := e.secret(SealingKeySecret)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("task: unseal payload: the sealing key (secret %q) was not delivered: %w", SealingKeySecret, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("task: unseal payload: %w", err)
	}
	defer clear(pemKey)
	if sealhook.Open == nil {
		return nil, fmt.Errorf("task: unseal payload: %w", &ward.Error{Code: ward.CodeSealedOpenFailed,
			Message: `the payload is sealed, but this program cannot open it: import _ "github.com/wardhq/ward/task/unseal"`})
	}
	b, err := sealhook.Open(pemKey, e.get(EnvProject), e.get(EnvFunction), envelope)
	if err != nil {
		return nil, fmt.Errorf("task: unseal payload: %w", err)
	}
	return b, nil
}

// rawPayload reads the payload bytes as delivered.
func (e *env) rawPayload() ([]byte, error) {
	candidates := []string{e.path(EnvPayloadFile, e.payloadFile)}
	if candidates[0] != e.payloadFile {
		candidates = append(candidates, e.payloadFile)
	}
	for _, name := range candidates {
		b, err := os.ReadFile(name)
		if err == nil {
			return b, nil
		}
		if !missing(err) {
			return nil, fmt.Errorf("task: read payload: %w", err)
		}
	}
	b, err := io.ReadAll(e.stdin)
	if err != nil {
		return nil, fmt.Errorf("task: read payload from stdin: %w", err)
	}
	return b, nil
}

func (e *env) decode(v any) error {
	b, err := e.payload()
	if err != nil {
		return err
	}
	return unmarshal(b, v)
}

// unmarshal decodes one JSON value from b into v; empty input is a no-op.
func unmarshal(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("task: decode payload: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("task: decode payload: unexpected data after the JSON value")
	}
	return nil
}

func (e *env) config() (map[string]string, error) {
	name := e.path(EnvConfigFile, e.configFile)
	b, err := os.ReadFile(name)
	if missing(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("task: read config: %w", err)
	}
	cfg := map[string]string{}
	if len(bytes.TrimSpace(b)) == 0 {
		return cfg, nil
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("task: decode config %s: %w", name, err)
	}
	if cfg == nil { // the file held JSON null
		cfg = map[string]string{}
	}
	return cfg, nil
}

// missing reports whether err from opening a file means it is absent. Under
// WASI, a path outside every directory the runtime mounted fails with EBADF
// rather than ENOENT: /ward itself is absent, so the file is too.
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EBADF)
}

// validSecretName reports whether name names a file directly inside the
// secrets directory.
func validSecretName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}

func (e *env) secret(name string) ([]byte, error) {
	if !validSecretName(name) {
		return nil, fmt.Errorf("%w %q", ErrInvalidSecretName, name)
	}
	dir := e.path(EnvSecretsDir, e.secretsDir)
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		if missing(err) {
			return nil, fmt.Errorf("task: secret %q is not set: %w", name, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("task: read secret %q: %w", name, err)
	}
	return b, nil
}

func (e *env) attempt() int {
	n, err := strconv.Atoi(e.get(EnvAttempt))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func (e *env) result(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("task: encode result: %w", err)
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if _, err := e.stdout.Write(out); err != nil {
		return fmt.Errorf("task: write result: %w", err)
	}
	return nil
}

func (e *env) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	// The log is best effort: there is nowhere to report a failed write.
	_, _ = io.WriteString(e.stderr, msg)
}

func (e *env) fail(err error) {
	if err == nil {
		err = errors.New("task failed")
	}
	e.logf("error: %v", err)
	switch ward.CodeOf(err) {
	case ward.CodeSealedOpenFailed, ward.CodeSealedKeyMismatch, ward.CodeSealedMalformed, ward.CodeInvalidSealingKey:
		e.exit(ward.ExitUnsealFailed)
	default:
		e.exit(1)
	}
}
