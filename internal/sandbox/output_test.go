package sandbox

import (
	"slices"
	"strings"
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
		w := &LogWriter{Limit: tc.limit, Secrets: tc.secrets}
		for _, s := range tc.writes {
			if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
				t.Fatalf("%s: Write = %d, %v; a log write never fails", tc.name, n, err)
			}
		}
		if got := string(w.Finish()); got != tc.want {
			t.Errorf("%s: log = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// liveLog writes writes to a LogWriter with a Sink and returns the chunks
// the Sink received and the finished log.
func liveLog(limit int, secrets []string, writes ...string) ([]string, string) {
	var chunks []string
	w := &LogWriter{Limit: limit, Sink: func(b []byte) { chunks = append(chunks, string(b)) }, Secrets: secrets}
	for _, s := range writes {
		_, _ = w.Write([]byte(s))
	}
	return chunks, string(w.Finish())
}

func TestLogWriterSink(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxLiveLine+10)
	cases := []struct {
		name    string
		writes  []string
		limit   int
		secrets []string
		want    []string
	}{
		{"lines as they end", []string{"a\nb", "c\n", "d"}, 100, nil, []string{"a\n", "bc\n"}},
		{"several lines in one write", []string{"a\nb\nc"}, 100, nil, []string{"a\nb\n"}},
		{"no line end yet", []string{"abc"}, 100, nil, nil},
		{"redacted", []string{"pw=hun", "ter2\n"}, 100, []string{"hunter2"}, []string{"pw=[REDACTED]\n"}},
		{"stops at the limit", []string{"1234\n", "5678\n", "90ab\n"}, 12, nil, []string{"1234\n", "5678\n"}},
		{"redaction past the limit stops it", []string{"a\n", "b b\n"}, 12, []string{"b"}, []string{"a\n"}},
		{"multi-line secret turns it off", []string{"a\n", "b\n"}, 100, []string{"x\ny"}, nil},
		{"long line in pieces", []string{long, "\n"}, 2 * MaxLiveLine, nil, []string{long, "\n"}},
		{"long line holds back a secret's start", []string{long + "hun", "ter2\n"}, 2 * MaxLiveLine, []string{"hunter2"},
			[]string{long, "[REDACTED]\n"}},
	}
	for _, tc := range cases {
		chunks, finished := liveLog(tc.limit, tc.secrets, tc.writes...)
		if !slices.Equal(chunks, tc.want) {
			t.Errorf("%s: chunks = %.80q, want %.80q", tc.name, chunks, tc.want)
		}
		if live := strings.Join(chunks, ""); !strings.HasPrefix(finished, live) {
			t.Errorf("%s: the live log %.80q is not a prefix of the finished log %.80q", tc.name, live, finished)
		}
	}
}

func FuzzLogWriterSink(f *testing.F) {
	f.Add([]byte("pw=hunter2\nok\n"), "hunter2", "", 64, 3)
	f.Add([]byte("a b c d\n"), "a", "b", 12, 2)
	f.Add([]byte("x\nhun\nter2"), "hun", "hunter2", 9, 1)
	f.Fuzz(func(t *testing.T, data []byte, s1, s2 string, limit, step int) {
		if limit < 0 || limit > 1<<12 || step <= 0 {
			t.Skip()
		}
		var writes []string
		for len(data) > 0 {
			n := min(step, len(data))
			writes = append(writes, string(data[:n]))
			data = data[n:]
		}
		secrets := []string{s1, s2}
		chunks, finished := liveLog(limit, secrets, writes...)
		live := strings.Join(chunks, "")
		if !strings.HasPrefix(finished, live) {
			t.Fatalf("live log %q is not a prefix of the finished log %q", live, finished)
		}
		if len(live) > limit {
			t.Fatalf("live log of %d bytes is over the limit of %d", len(live), limit)
		}
		for _, c := range chunks {
			for _, s := range usable(secrets) {
				if strings.Contains(c, s) && !strings.Contains(redacted, s) {
					t.Fatalf("chunk %q holds the secret %q", c, s)
				}
			}
		}
	})
}
