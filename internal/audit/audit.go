// Package audit keeps ward's append-only, hash-chained audit log: one JSON
// line per event, each line carrying the hash of the line before it, so an
// edited, removed, inserted or reordered line breaks the chain and Verify
// reports it.
//
// Each line is the JSON object
//
//	{"seq":1,"time":"…","actor":"tok_…","role":"owner","action":"…","project":"…",
//	 "resource":"…","outcome":"ok","prev":"","hash":"…"}
//
// with the keys in exactly that order. hash is the lowercase hex SHA-256 of
// prev (as its hex text) followed by the line's canonical JSON without the
// hash key; prev is the previous line's hash, "" for the first line. seq
// counts from 1 without gaps.
//
// Durability: Record writes each line with one write(2) on a file opened for
// appending, and does not fsync it; a line reaches the disk when the kernel
// flushes it, at Sync, or at Close. A machine crash can therefore lose the
// last lines (never corrupt earlier ones). A line torn by a crash, one
// without its final newline, is cut off by the next Open, since it never
// became part of the chain. Losing trailing lines cannot be detected from the
// file alone; compare the file against a Head recorded elsewhere with
// VerifyHead when that matters.
package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// maxLine bounds the length of one audit line, for reading. Events come from
// the API with short fields, so real lines are a few hundred bytes.
const maxLine = 64 << 10

// maxField bounds each string field of an event; longer values are cut, so
// a line always stays well under maxLine.
const maxField = 1024

// OutcomeOK is the outcome of an event that succeeded; a failed one carries
// its error code instead.
const OutcomeOK = "ok"

// Event is what happened: who (Actor, the token ID, and its Role), what
// (Action, Project, Resource) and how it ended (Outcome: "ok" or an error
// code). Fields must not contain secret or payload values.
type Event struct {
	Actor    string
	Role     string
	Action   string
	Project  string
	Resource string
	Outcome  string
}

// body is an entry without its hash: the part the hash covers. The field
// order is the canonical key order.
type body struct {
	Seq      uint64 `json:"seq"`
	Time     string `json:"time"`
	Actor    string `json:"actor"`
	Role     string `json:"role"`
	Action   string `json:"action"`
	Project  string `json:"project"`
	Resource string `json:"resource"`
	Outcome  string `json:"outcome"`
	Prev     string `json:"prev"`
}

// entry is one line of the log: the body, then its hash.
type entry struct {
	body
	Hash string `json:"hash"`
}

// Head names the last line of a log: its sequence number and hash. The zero
// Head is an empty log.
type Head struct {
	Seq  uint64
	Hash string
}

// Log is an open audit log. It is safe for concurrent use.
type Log struct {
	now func() time.Time

	mu     sync.Mutex
	f      *os.File
	head   Head
	broken error // set when a write failed part-way; every later Record fails
}

// Open opens the audit log at path, creating it with mode 0600, and continues
// the chain from its last line. It refuses a file whose last line does not
// verify or that group or others may access.
func Open(path string, now func() time.Time) (*Log, error) {
	if now == nil {
		now = time.Now
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l, err := open(f, now)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	return l, nil
}

func open(f *os.File, now func() time.Time) (*Log, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("accessible by group or others (mode %04o); restrict it with chmod 600", perm)
	}
	last, end, err := lastLine(f, fi.Size())
	if err != nil {
		return nil, err
	}
	if end < fi.Size() {
		// A torn final line: it was never acknowledged as part of the chain.
		if err := f.Truncate(end); err != nil {
			return nil, fmt.Errorf("cut torn last line: %w", err)
		}
	}
	var head Head
	if last != nil {
		e, err := parseLine(last)
		if err != nil {
			return nil, fmt.Errorf("last line: %w", err)
		}
		head = Head{Seq: e.Seq, Hash: e.Hash}
	}
	return &Log{now: now, f: f, head: head}, nil
}

// lastLine returns the last newline-terminated line of f (without the
// newline), or nil for none, and the offset just past it.
func lastLine(f *os.File, size int64) ([]byte, int64, error) {
	const chunk = 4096
	var buf []byte // the tail of the file read so far
	pos := size
	end := int64(-1) // offset just past the last '\n'
	for pos > 0 {
		n := int64(chunk)
		if n > pos {
			n = pos
		}
		pos -= n
		b := make([]byte, n)
		if _, err := f.ReadAt(b, pos); err != nil {
			return nil, 0, fmt.Errorf("read: %w", err)
		}
		buf = append(b, buf...)
		if end < 0 {
			i := bytes.LastIndexByte(buf, '\n')
			if i < 0 {
				if int64(len(buf)) > maxLine {
					return nil, 0, errors.New("last line is too long")
				}
				continue
			}
			end = pos + int64(i) + 1
			buf = buf[:i]
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			return buf[i+1:], end, nil
		}
		if int64(len(buf)) > maxLine {
			return nil, 0, errors.New("last line is too long")
		}
	}
	if end < 0 {
		return nil, 0, nil
	}
	return buf, end, nil
}

// Record appends an event. Its time is the Log's clock in UTC.
func (l *Log) Record(ctx context.Context, ev Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: record: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("audit: record: log is closed")
	}
	if l.broken != nil {
		return fmt.Errorf("audit: record: log unusable after failed write: %w", l.broken)
	}
	b := body{
		Seq:      l.head.Seq + 1,
		Time:     l.now().UTC().Format(time.RFC3339Nano),
		Actor:    clip(ev.Actor),
		Role:     clip(ev.Role),
		Action:   clip(ev.Action),
		Project:  clip(ev.Project),
		Resource: clip(ev.Resource),
		Outcome:  clip(ev.Outcome),
		Prev:     l.head.Hash,
	}
	line, hash, err := encode(b)
	if err != nil {
		return fmt.Errorf("audit: record: %w", err)
	}
	n, err := l.f.Write(line)
	if err != nil {
		if n > 0 {
			l.broken = err
		}
		return fmt.Errorf("audit: record: %w", err)
	}
	l.head = Head{Seq: b.Seq, Hash: hash}
	return nil
}

// Head returns the last line's sequence number and hash; store it elsewhere
// to detect a later truncation with VerifyHead.
func (l *Log) Head() Head {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head
}

// Sync flushes written lines to stable storage.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("audit: sync: log is closed")
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit: sync: %w", err)
	}
	return nil
}

// Close syncs and closes the log.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	serr := l.f.Sync()
	cerr := l.f.Close()
	l.f = nil
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	return nil
}

// clip cuts s to maxField bytes, on a rune boundary.
func clip(s string) string {
	if len(s) <= maxField {
		return s
	}
	i := maxField
	for i > 0 && !isRuneStart(s[i]) {
		i--
	}
	return s[:i]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// hashOf returns the chain hash of a body.
func hashOf(b body) (string, error) {
	c, err := json.Marshal(b)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(b.Prev))
	h.Write(c)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// encode returns the full line (with its newline) for b and its hash.
func encode(b body) ([]byte, string, error) {
	hash, err := hashOf(b)
	if err != nil {
		return nil, "", err
	}
	line, err := json.Marshal(entry{body: b, Hash: hash})
	if err != nil {
		return nil, "", err
	}
	return append(line, '\n'), hash, nil
}

// parseLine decodes one line and checks that it is canonical and that its
// hash matches its content. It does not check the link to the line before.
func parseLine(line []byte) (entry, error) {
	var e entry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return entry{}, fmt.Errorf("not an audit entry: %w", err)
	}
	want, _, err := encode(e.body)
	if err != nil {
		return entry{}, err
	}
	// Byte-exact comparison: any edit, even one JSON would read the same
	// (spacing, key order, escapes), is reported.
	if !bytes.Equal(want[:len(want)-1], line) {
		return entry{}, errors.New("entry is edited: hash or encoding does not match its content")
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
		return entry{}, errors.New("entry has an invalid time")
	}
	return e, nil
}

// VerifyError reports where a log fails verification.
type VerifyError struct {
	Line   int // 1-based line number; 0 when the whole log is at fault
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Line == 0 {
		return "audit: verify: " + e.Reason
	}
	return fmt.Sprintf("audit: verify: line %d: %s", e.Line, e.Reason)
}

// Verify reads a whole log and checks every line: canonical encoding, its
// hash, its sequence number and its link to the line before. It returns a
// *VerifyError naming the first bad line, or a read error. An empty log
// verifies.
func Verify(r io.Reader) error {
	_, err := verify(r)
	return err
}

// VerifyHead verifies a log like Verify and also checks that its last line is
// want, which detects lines removed from the end.
func VerifyHead(r io.Reader, want Head) error {
	got, err := verify(r)
	if err != nil {
		return err
	}
	if got != want {
		return &VerifyError{Reason: fmt.Sprintf("log ends at seq %d, want seq %d with the recorded hash", got.Seq, want.Seq)}
	}
	return nil
}

func verify(r io.Reader) (Head, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var head Head
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err == io.EOF {
			return head, nil
		}
		if err != nil {
			var ve *VerifyError
			if errors.As(err, &ve) {
				ve.Line = n
			}
			return head, err
		}
		e, err := parseLine(line)
		if err != nil {
			return head, &VerifyError{Line: n, Reason: err.Error()}
		}
		switch {
		case e.Seq != head.Seq+1:
			return head, &VerifyError{Line: n, Reason: fmt.Sprintf("seq %d follows seq %d: a line is missing or out of order", e.Seq, head.Seq)}
		case e.Prev != head.Hash:
			return head, &VerifyError{Line: n, Reason: "prev does not match the previous line's hash: a line is missing, edited or out of order"}
		}
		head = Head{Seq: e.Seq, Hash: e.Hash}
	}
}

// readLine returns the next newline-terminated line without its newline, or
// io.EOF at the end. A final line without a newline is an error, as is a line
// longer than maxLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxLine+1 {
			return nil, &VerifyError{Reason: "line is too long"}
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(line) == 0 {
				return nil, io.EOF
			}
			return nil, &VerifyError{Reason: "last line is incomplete (no newline)"}
		default:
			return nil, fmt.Errorf("audit: verify: read: %w", err)
		}
	}
}
