package ward

import (
	"errors"
	"testing"
)

func TestDigest(t *testing.T) {
	t.Parallel()
	// The SHA-256 of the empty input is a published constant.
	if got, want := Digest(nil), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Fatalf("Digest(nil) = %s, want %s", got, want)
	}
	if Digest([]byte("a")) == Digest([]byte("b")) {
		t.Fatal("different code, same digest")
	}
}

func TestSpecValidateNamesTheField(t *testing.T) {
	t.Parallel()
	for field, mutate := range map[string]func(*FunctionSpec){
		"runtime":                func(s *FunctionSpec) { s.Runtime = "docker" },
		"limits.memory_mb":       func(s *FunctionSpec) { s.Limits.MemoryMB = MaxMemoryMB + 1 },
		"limits.timeout_s":       func(s *FunctionSpec) { s.Limits.TimeoutS = -1 },
		"limits.max_concurrency": func(s *FunctionSpec) { s.Limits.MaxConcurrency = -1 },
		"limits.max_payload_kb":  func(s *FunctionSpec) { s.Limits.MaxPayloadKB = MaxPayloadKB + 1 },
		"limits.submit_rate":     func(s *FunctionSpec) { s.Limits.SubmitRate = -1 },
		"limits.max_result_kb":   func(s *FunctionSpec) { s.Limits.MaxResultKB = MaxOutputKB + 1 },
		"limits.max_log_kb":      func(s *FunctionSpec) { s.Limits.MaxLogKB = -1 },
		"retries.max_attempts":   func(s *FunctionSpec) { s.Retries.MaxAttempts = MaxAttempts + 1 },
		"retries.backoff_s":      func(s *FunctionSpec) { s.Retries.BackoffS = -1 },
		"retention_days":         func(s *FunctionSpec) { s.RetentionDays = -1 },
	} {
		spec := DefaultSpec()
		mutate(&spec)
		var e *Error
		if err := spec.Validate(); !errors.As(err, &e) || e.Code != CodeInvalidArgument || e.Field != field {
			t.Errorf("%s: Validate() = %v, want invalid_argument naming %s", field, err, field)
		}
	}
	if err := DefaultSpec().Validate(); err != nil {
		t.Fatalf("default spec: %v", err)
	}
	oci := DefaultSpec()
	oci.Runtime = RuntimeOCI
	if err := oci.Validate(); err != nil {
		t.Fatalf("oci spec: %v", err)
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"hello": true, "a": true, "a-1": true, "-a": false, "": false, "A": false,
		"a_b": false, "a/b": false, string(make([]byte, 64)): false,
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123": true,
	} {
		if ValidName(name) != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, !want, want)
		}
	}
}
