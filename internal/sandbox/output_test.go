package sandbox

import (
	"testing"
)

func TestResultWriter(t *testing.T) {
	t.Parallel()
	overflows := 0
	w := &ResultWriter{Limit: 10, OnOverflow: func() { overflows++ }}
	if n, err := w.Write([]byte("12345")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n, err := w.Write([]byte("67890")); n != 5 || err != nil || w.overflow {
		t.Fatalf("Write up to the limit = %d, %v, overflow %v", n, err, w.overflow)
	}
	if n, err := w.Write([]byte("x")); n != 0 || err != ErrOutputLimit || !w.overflow {
		t.Fatalf("Write past the limit = %d, %v, overflow %v", n, err, w.overflow)
	}
	if n, err := w.Write([]byte("y")); n != 0 || err != ErrOutputLimit {
		t.Fatalf("Write after overflow = %d, %v", n, err)
	}
	if overflows != 1 || string(w.buf) != "1234567890" {
		t.Errorf("overflows = %d, buf = %q; want 1, 1234567890", overflows, w.buf)
	}
	w = &ResultWriter{Limit: 4, OnOverflow: func() { overflows++ }}
	if n, err := w.Write([]byte("abcdef")); n != 4 || err != ErrOutputLimit || string(w.buf) != "abcd" {
		t.Errorf("straddling Write = %d, %v, buf %q; want 4, ErrOutputLimit, abcd", n, err, w.buf)
	}
}

func TestLogWriter(t *testing.T) {
	t.Parallel()
	const marker = TruncatedMarker
	cases := []struct {
		name    string
		writes  []string
		limit   int
		secrets []string
		want    string
	}{
		{"plain", []string{"a", "b"}, 10, nil, "ab"},
		{"exactly at the limit", []string{"12345", "67890"}, 10, nil, "1234567890"},
		{"truncated", []string{"12345", "67890", "abc"}, 10, nil, "1234567890" + marker},
		{"truncated inside a write", []string{"123456789012"}, 10, nil, "1234567890" + marker},
		{"redacted", []string{"pw=hunter2;"}, 100, []string{"hunter2"}, "pw=[REDACTED];"},
		{"split across writes", []string{"pw=hun", "ter", "2;"}, 100, []string{"hunter2"}, "pw=[REDACTED];"},
		{"every occurrence", []string{"x hunter2 hunter2hunter2"}, 100, []string{"hunter2"}, "x [REDACTED] [REDACTED][REDACTED]"},
		{"longest first", []string{"abcdef"}, 100, []string{"abc", "abcdef"}, "[REDACTED]"},
		{"empty secret ignored", []string{"abc"}, 100, []string{""}, "abc"},
		{"several secrets", []string{"u=alice p=s3cret"}, 100, []string{"alice", "s3cret"}, "u=[REDACTED] p=[REDACTED]"},
		{"cut inside a secret", []string{"0123 hunter2"}, 9, []string{"hunter2"}, "0123 " + marker},
		{"cut after a secret prefix letter", []string{"0123 hu"}, 6, []string{"hunter2", "xyz"}, "0123 " + marker},
		{"cut not inside a secret", []string{"0123 abcdef"}, 8, []string{"hunter2"}, "0123 abc" + marker},
		{"redaction grows past the limit", []string{"a b c d"}, 12, []string{"a", "b"}, "[REDACTED] [" + marker},
		{"nothing kept", []string{"abc"}, 0, nil, marker},
	}
	for _, tc := range cases {
		w := &LogWriter{Limit: tc.limit}
		for _, s := range tc.writes {
			if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
				t.Fatalf("%s: Write = %d, %v; a log write never fails", tc.name, n, err)
			}
		}
		if got := string(w.Finish(tc.secrets)); got != tc.want {
			t.Errorf("%s: log = %q, want %q", tc.name, got, tc.want)
		}
	}
}
