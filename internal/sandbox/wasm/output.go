package wasm

import (
	"bytes"
	"cmp"
	"errors"
	"slices"
	"strings"

	"github.com/wardhq/ward/internal/sandbox"
)

// redacted replaces every secret value in a log.
const redacted = "[REDACTED]"

// errOutputLimit is what the guest's write to stdout fails with once the
// result is over its cap.
var errOutputLimit = errors.New("stdout limit exceeded")

// resultWriter collects stdout. The first write past the limit keeps what
// fits, marks the run as over its output limit and calls onOverflow, which
// ends the run.
type resultWriter struct {
	buf        []byte
	limit      int
	overflow   bool
	onOverflow func()
}

// Write implements io.Writer.
func (w *resultWriter) Write(p []byte) (int, error) {
	if w.overflow {
		return 0, errOutputLimit
	}
	if room := w.limit - len(w.buf); len(p) > room {
		w.buf = append(w.buf, p[:room]...)
		w.overflow = true
		w.onOverflow()
		return room, errOutputLimit
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// logWriter collects stderr: the first limit bytes are kept, the rest is
// dropped. Writing never fails, so a chatty task is not a failed task.
type logWriter struct {
	buf       []byte
	limit     int
	truncated bool
}

// Write implements io.Writer.
func (w *logWriter) Write(p []byte) (int, error) {
	room := w.limit - len(w.buf)
	if len(p) > room {
		w.truncated = true
		w.buf = append(w.buf, p[:room]...)
	} else {
		w.buf = append(w.buf, p...)
	}
	return len(p), nil
}

// finish returns the log with every secret replaced by [REDACTED], cut to
// the limit and, when anything was dropped, ending with
// sandbox.TruncatedMarker. Redacting the whole collected log, not each
// write, catches values split across writes. Where the log was cut, a tail
// that could be the start of a secret is dropped as well.
func (w *logWriter) finish(secrets []string) []byte {
	secrets = usable(secrets)
	out := w.buf
	truncated := w.truncated
	if len(secrets) > 0 {
		out = redact(out, secrets)
	}
	if len(out) > w.limit { // redaction made it longer
		out = out[:w.limit]
		truncated = true
	}
	if !truncated {
		return out
	}
	out = out[:len(out)-secretPrefixSuffix(out, secrets)]
	return append(out[:len(out):len(out)], sandbox.TruncatedMarker...)
}

// usable returns the non-empty secrets, longest first, so the longest
// value wins where several match at one place.
func usable(secrets []string) []string {
	out := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if s != "" {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out
}

// redact replaces every occurrence of a secret in b.
func redact(b []byte, secrets []string) []byte {
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, redacted)
	}
	r := strings.NewReplacer(pairs...)
	var out bytes.Buffer
	out.Grow(len(b))
	_, _ = r.WriteString(&out, string(b)) // writing to a bytes.Buffer does not fail
	return out.Bytes()
}

// secretPrefixSuffix returns the length of the longest suffix of b that is
// a proper prefix of a secret: what a cut may have left of a secret.
func secretPrefixSuffix(b []byte, secrets []string) int {
	longest := 0
	for _, s := range secrets {
		for k := min(len(s)-1, len(b)); k > longest; k-- {
			if bytes.HasSuffix(b, []byte(s[:k])) {
				longest = k
				break
			}
		}
	}
	return longest
}
