package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestHandle(t *testing.T) {
	t.Parallel()
	key := []byte("sk_live_7Hq2")
	tests := []struct {
		payload string
		sealed  bool
		want    response
	}{
		{`{"card":"4111 1111 1111 1111","amount":42}`, true, response{OK: true, Fields: 2, KeyLen: 12, Sealed: true}},
		{`{"a":1}`, false, response{OK: true, Fields: 1, KeyLen: 12}},
		{`{}`, false, response{OK: true, Fields: 0, KeyLen: 12}},
		{`{"nested":{"x":1,"y":2},"list":[1,2,3],"s":"t"}`, false, response{OK: true, Fields: 3, KeyLen: 12}},
		{`{"a":1,"a":2}`, false, response{OK: true, Fields: 1, KeyLen: 12}}, // a repeated key is one field
	}
	for _, tt := range tests {
		got, err := handle([]byte(tt.payload), key, tt.sealed)
		if err != nil {
			t.Errorf("handle(%s): %v", tt.payload, err)
			continue
		}
		if got != tt.want {
			t.Errorf("handle(%s) = %+v, want %+v", tt.payload, got, tt.want)
		}
	}
}

func TestHandleInvalid(t *testing.T) {
	t.Parallel()
	for _, payload := range []string{``, `null`, `[1,2]`, `"text"`, `42`, `{"a":`, `not json`} {
		if got, err := handle([]byte(payload), []byte("k"), false); err == nil {
			t.Errorf("handle(%q) = %+v, want an error", payload, got)
		}
	}
	if _, err := handle([]byte(`{"a":1}`), nil, false); !errors.Is(err, errNoKey) {
		t.Errorf("handle without a key: %v, want errNoKey", err)
	}
	if _, err := handle([]byte(`{"a":1}`), []byte{}, false); !errors.Is(err, errNoKey) {
		t.Errorf("handle with an empty key: %v, want errNoKey", err)
	}
}

// TestResultHidesKeyLogShowsIt checks the result never carries the key,
// while the log line does, whole, so that ward's exact-match redaction
// removes every byte of it.
func TestResultHidesKeyLogShowsIt(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"sk_live_7Hq2", "with space and\nnewline\n", "ключ-🔑"} {
		resp, err := handle([]byte(`{"card":"4111"}`), []byte(key), true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), key) {
			t.Errorf("result %s contains the key", b)
		}
		want := `{"ok":true,"fields":1,"key_len":` + strconv.Itoa(len(key)) + `,"sealed":true}`
		if string(b) != want {
			t.Errorf("result = %s, want %s", b, want)
		}
		line := logLine([]byte(key), resp)
		if !strings.Contains(line, key) {
			t.Errorf("log line %q does not hold the key whole", line)
		}
		masked := strings.ReplaceAll(line, key, "[REDACTED]")
		if want := "calling upstream with api key [REDACTED] for 1 field(s), sealed=true"; masked != want {
			t.Errorf("redacted log line = %q, want %q", masked, want)
		}
	}
}

// TestReadKey reads the secret from WARD_SECRETS_DIR, as a task does; it
// sets the environment, so it does not run in parallel.
func TestReadKey(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WARD_SECRETS_DIR", dir)
	if _, err := readKey(); !errors.Is(err, errNoKey) {
		t.Fatalf("readKey without the secret: %v, want errNoKey", err)
	}
	if err := os.WriteFile(filepath.Join(dir, secretName), []byte("sk_test_1"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := readKey()
	if err != nil || string(key) != "sk_test_1" {
		t.Fatalf("readKey = %q, %v; want sk_test_1", key, err)
	}
}
