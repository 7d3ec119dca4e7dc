package sandbox

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wardhq/ward"
)

// redacted replaces every secret value in a log.
const redacted = "[REDACTED]"

// ErrOutputLimit is what a task's write to stdout fails with once the
// result is over its cap.
var ErrOutputLimit = errors.New("stdout limit exceeded")

// ResultWriter collects a run's stdout up to Limit bytes. The first write
// past the limit keeps what fits, marks the run as over its output limit
// and calls OnOverflow (when set), which should end the run. It is not safe
// for concurrent writes.
type ResultWriter struct {
	Limit      int
	OnOverflow func()
	buf        []byte
	overflow   bool
}

// Bytes returns what was collected.
func (w *ResultWriter) Bytes() []byte { return w.buf }

// Overflowed reports whether a write went past the limit.
func (w *ResultWriter) Overflowed() bool { return w.overflow }

// Write implements io.Writer.
func (w *ResultWriter) Write(p []byte) (int, error) {
	if w.overflow {
		return 0, ErrOutputLimit
	}
	if room := w.Limit - len(w.buf); len(p) > room {
		w.buf = append(w.buf, p[:room]...)
		w.overflow = true
		if w.OnOverflow != nil {
			w.OnOverflow()
		}
		return room, ErrOutputLimit
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// LogWriter collects a run's stderr: the first Limit bytes are kept, the
// rest is dropped, and every Secrets value is replaced by [REDACTED].
// Writing never fails, so a chatty task is not a failed task. It is not
// safe for concurrent writes.
//
// With Sink set, the log is also handed over live, as it is written: each
// complete line (a line longer than MaxLiveLine in pieces), redacted. What
// Sink receives is a prefix of what Finish returns, so a reader can take
// the rest from the finished log by byte offset. Sink stops at Limit, as
// the kept log does; it is never called for a run given a secret that
// spans lines (redacting line by line could not catch it), nor after
// Finish.
type LogWriter struct {
	Limit int
	// Sink, when set, receives the redacted log as it is written. It runs
	// on the writer's goroutine, so it must return quickly, and must not
	// keep the slice it is given past the call.
	Sink func(chunk []byte)
	// Secrets are the values redacted from the log.
	Secrets []string

	buf       []byte
	truncated bool

	ready    bool              // secrets, replacer and live are set
	secrets  []string          // usable Secrets
	replacer *strings.Replacer // for secrets, nil when there are none
	live     bool              // Sink is in use
	sent     int               // bytes of buf handed to Sink (before redaction)
	sentOut  int               // bytes handed to Sink (after redaction)
}

// MaxLiveLine is the longest piece of a line a LogWriter holds back from
// its Sink waiting for the line's end; a longer line is handed over in
// pieces.
const MaxLiveLine = 16 << 10

// Write implements io.Writer.
func (w *LogWriter) Write(p []byte) (int, error) {
	room := w.Limit - len(w.buf)
	if len(p) > room {
		w.truncated = true
		w.buf = append(w.buf, p[:room]...)
	} else {
		w.buf = append(w.buf, p...)
	}
	if w.Sink != nil {
		w.feed()
	}
	return len(p), nil
}

// setup prepares the redaction of Secrets, once.
func (w *LogWriter) setup() {
	if w.ready {
		return
	}
	w.ready = true
	w.secrets = usable(w.Secrets)
	if len(w.secrets) > 0 {
		w.replacer = replacer(w.secrets)
	}
	w.live = w.Sink != nil && !slices.ContainsFunc(w.secrets, func(s string) bool { return strings.ContainsRune(s, '\n') })
}

// feed hands the complete lines written since the last call to Sink.
func (w *LogWriter) feed() {
	w.setup()
	if !w.live {
		return
	}
	pending := w.buf[w.sent:]
	n := bytes.LastIndexByte(pending, '\n') + 1
	if n == 0 && len(pending) >= MaxLiveLine {
		// A long line: hand over what cannot be the start of a secret.
		n = len(pending) - secretPrefixSuffix(pending, w.secrets)
	}
	if n == 0 {
		return
	}
	out := pending[:n]
	if w.replacer != nil {
		out = []byte(w.replacer.Replace(string(out)))
	}
	if w.sentOut+len(out) > w.Limit {
		// Redaction made it longer than the kept log can be: the rest
		// comes only with the finished log.
		w.live = false
		return
	}
	w.sent += n
	w.sentOut += len(out)
	w.Sink(out)
}

// Finish returns the log with every secret replaced by [REDACTED], cut to
// the limit and, when anything was dropped, ending with
// TruncatedMarker. Redacting the whole collected log, not each
// write, catches values split across writes. Where the log was cut, a tail
// that could be the start of a secret is dropped as well.
func (w *LogWriter) Finish() []byte {
	w.setup()
	out := w.buf
	truncated := w.truncated
	if w.replacer != nil {
		out = redact(out, w.replacer)
	}
	if len(out) > w.Limit { // redaction made it longer
		out = out[:w.Limit]
		truncated = true
	}
	if !truncated {
		return out
	}
	out = out[:len(out)-secretPrefixSuffix(out, w.secrets)]
	return append(out[:len(out):len(out)], TruncatedMarker...)
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

// redact replaces every occurrence of a secret in b, using r.
func redact(b []byte, r *strings.Replacer) []byte {
	var out bytes.Buffer
	out.Grow(len(b))
	_, _ = r.WriteString(&out, string(b)) // writing to a bytes.Buffer does not fail
	return out.Bytes()
}

// replacer returns a Replacer of every secret by [REDACTED].
func replacer(secrets []string) *strings.Replacer {
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, redacted)
	}
	return strings.NewReplacer(pairs...)
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

// ContextOutcome tells why a run whose context is done ended: the caller
// cancelled it (parent's error), or its timeout ran out.
func ContextOutcome(parent context.Context, timeout time.Duration) Outcome {
	if errors.Is(parent.Err(), context.Canceled) {
		return Outcome{Code: ward.CodeCancelled, Message: "the run was cancelled"}
	}
	return Outcome{Code: ward.CodeTimeout, Message: fmt.Sprintf("the run exceeded its timeout of %s", timeout)}
}

// OutputLimitOutcome is the outcome of a run whose result went past the
// stdout limit of limit bytes.
func OutputLimitOutcome(limit int) Outcome {
	return Outcome{Code: ward.CodeOutputLimit, Message: fmt.Sprintf("the result exceeded the stdout limit of %d bytes", limit)}
}
