package ward

import "time"

// Secret describes a stored secret. Its value is write-only: no API answer
// and no list view carries it; tasks read it from /ward/secrets/<name>.
type Secret struct {
	Name      string    `json:"name"`
	Function  string    `json:"function,omitempty"` // "" = the project's global secret
	Version   int       `json:"version"`            // 1 on first write, +1 on each replacement
	Size      int       `json:"size"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SecretList is the answer of GET …/secrets.
type SecretList struct {
	Secrets []Secret `json:"secrets"`
}

// Bounds on secrets.
const (
	MaxSecretBytes   = 64 << 10 // one secret's value
	MaxSecretsPerSet = 100      // secrets per scope (project or function)
	// SealingKeySecret is the function-local secret holding the private half
	// of the function's sealing key (a PEM block); ward creates it on first
	// use, or an owner supplies one. Other names starting with "ward-" are
	// reserved.
	SealingKeySecret = "ward-sealing-key"
)

// ValidSecretName reports whether s can name a secret (and so a file under
// /ward/secrets): 1–128 of ASCII letters, digits, '.', '_' and '-', not
// starting with '.' or '-'.
func ValidSecretName(s string) bool {
	if len(s) == 0 || len(s) > 128 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Codes of sealed payloads (see internal/seal/box).
const (
	CodeSealedMalformed   Code = "sealed_malformed"    // not an envelope, truncated, unknown version or suite
	CodeSealedKeyMismatch Code = "sealed_key_mismatch" // sealed to another key than the function's
	CodeSealedOpenFailed  Code = "sealed_open_failed"  // does not open: altered, or for another project or function
	CodeInvalidSealingKey Code = "invalid_sealing_key" // a sealing key that is not valid
)

// ExitUnsealFailed is the exit status with which task.Fail ends a task that
// could not open its sealed payload; ward records such a run of a sealed
// task as failed with code sealed_open_failed rather than exit_status.
const ExitUnsealFailed = 65
