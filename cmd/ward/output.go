package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/wardhq/ward"
)

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// table writes tab-separated rows as aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table {
	return &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

// row writes one row; every cell is made safe for a terminal.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = safe(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// safe replaces control and format characters (escape sequences, tabs,
// bidi overrides) in server-provided text, so a table cannot be forged or
// the terminal driven by data.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '?'
		}
		return r
	}, s)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortDigest keeps "sha256:" and the first 12 hex digits.
func shortDigest(d string) string {
	if d == "" {
		return "-"
	}
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}

func fmtKV(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return orDash(strings.Join(parts, ","))
}

func writeProjects(w io.Writer, ps []ward.Project) error {
	t := newTable(w)
	t.row("NAME", "RETENTION_DAYS", "MAX_QUEUED", "MAX_FUNCTIONS", "MAX_RUNNING", "MAX_STORED_MB", "STORED_BYTES", "CREATED")
	for _, p := range ps {
		q := p.Quotas
		t.row(p.Name, strconv.Itoa(p.RetentionDays), quota(q.MaxQueued), quota(q.MaxFunctions), quota(q.MaxRunning), quota(q.MaxStoredMB),
			strconv.FormatInt(p.Usage.StoredBytes, 10), fmtTime(p.CreatedAt))
	}
	return t.flush()
}

// quota prints a quota, "-" when unlimited.
func quota(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// secretScope names where a secret lives: the project (fn "") or a function.
func secretScope(fn string) string {
	if fn == "" {
		return "global"
	}
	return "function " + fn
}

// writeSecrets writes secrets' metadata; a secret's value is never known
// to the CLI after it is sent, let alone printed.
func writeSecrets(w io.Writer, ss []ward.Secret) error {
	t := newTable(w)
	t.row("NAME", "SCOPE", "VERSION", "SIZE", "UPDATED")
	for _, s := range ss {
		t.row(s.Name, secretScope(s.Function), strconv.Itoa(s.Version), strconv.Itoa(s.Size), fmtTime(s.UpdatedAt))
	}
	return t.flush()
}

// writeSealingKey writes a function's public sealing key without the key
// bytes (-o json has them).
func writeSealingKey(w io.Writer, fn string, k ward.SealingKey) error {
	t := newTable(w)
	t.row("Function:", fn)
	t.row("Key ID:", k.KeyID)
	t.row("Suite:", k.KEM+" / "+k.KDF+" / "+k.AEAD)
	t.row("Public key:", strconv.Itoa(len(k.PublicKey))+" bytes")
	return t.flush()
}

func writeFunctions(w io.Writer, fs []ward.Function) error {
	t := newTable(w)
	t.row("NAME", "VERSION", "DIGEST", "MEMORY_MB", "TIMEOUT_S", "CONCURRENCY", "UPDATED")
	for _, f := range fs {
		t.row(f.Name, strconv.Itoa(f.CodeVersion), shortDigest(f.CodeDigest),
			strconv.Itoa(f.Spec.Limits.MemoryMB), strconv.Itoa(f.Spec.Limits.TimeoutS),
			strconv.Itoa(f.Spec.Limits.MaxConcurrency), fmtTime(f.UpdatedAt))
	}
	return t.flush()
}

func writeFunction(w io.Writer, f ward.Function) error {
	t := newTable(w)
	s := f.Spec
	t.row("Name:", f.Name)
	t.row("Project:", f.Project)
	t.row("Runtime:", string(s.Runtime))
	t.row("Code digest:", orDash(f.CodeDigest))
	t.row("Code version:", strconv.Itoa(f.CodeVersion))
	t.row("Code size:", strconv.FormatInt(f.CodeSize, 10))
	t.row("Memory (MB):", strconv.Itoa(s.Limits.MemoryMB))
	t.row("Timeout (s):", strconv.Itoa(s.Limits.TimeoutS))
	t.row("Max concurrency:", strconv.Itoa(s.Limits.MaxConcurrency))
	t.row("Max payload (KB):", strconv.Itoa(s.Limits.MaxPayloadKB))
	t.row("Submit rate (/s):", quota(s.Limits.SubmitRate))
	t.row("Max result (KB):", strconv.Itoa(s.Limits.MaxResultKB))
	t.row("Max log (KB):", strconv.Itoa(s.Limits.MaxLogKB))
	t.row("Max attempts:", strconv.Itoa(s.Retries.MaxAttempts))
	t.row("Backoff (s):", strconv.Itoa(s.Retries.BackoffS))
	t.row("Retention (days):", strconv.Itoa(s.RetentionDays))
	writeInputRules(t, s.Input)
	t.row("Created:", fmtTime(f.CreatedAt))
	t.row("Updated:", fmtTime(f.UpdatedAt))
	return t.flush()
}

// writeInputRules writes a function's input rules: which payload fields its
// tasks see, which only as tokens, and whether other fields are refused.
func writeInputRules(t *table, in ward.Input) {
	if len(in.Fields) == 0 {
		t.row("Input fields:", "all (no input.fields: payloads are kept whole)")
	} else {
		t.list("Input fields:", in.Fields)
	}
	if len(in.Tokenize) == 0 {
		t.row("Tokenized:", "-")
	} else {
		t.list("Tokenized:", in.Tokenize)
	}
	strict := "no (fields outside the list are dropped)"
	switch {
	case in.Strict:
		strict = "yes (payloads with other fields are refused)"
	case len(in.Fields) == 0:
		strict = "no"
	}
	t.row("Strict:", strict)
	if len(in.Schema) > 0 {
		t.row("Schema:", fmt.Sprintf("yes, %d bytes (-o json shows it)", len(in.Schema)))
	}
}

// list writes a label and a list, one item a row; an empty list is "-".
func (t *table) list(label string, items []string) {
	if len(items) == 0 {
		t.row(label, "-")
		return
	}
	for i, it := range items {
		if i > 0 {
			label = ""
		}
		t.row(label, it)
	}
}

func writeConfig(w io.Writer, c ward.Config) error {
	t := newTable(w)
	t.row("KEY", "VALUE")
	for _, k := range slices.Sorted(maps.Keys(c)) {
		t.row(k, c[k])
	}
	return t.flush()
}

func taskErrorText(tk ward.Task) string {
	if tk.Error == nil {
		return "-"
	}
	if tk.Error.Message == "" {
		return string(tk.Error.Code)
	}
	return string(tk.Error.Code) + ": " + tk.Error.Message
}

func writeTasks(w io.Writer, ts []ward.Task) error {
	t := newTable(w)
	t.row("ID", "FUNCTION", "STATUS", "PRIORITY", "ATTEMPTS", "CREATED", "ERROR")
	for _, tk := range ts {
		errText := "-"
		if tk.Error != nil {
			errText = string(tk.Error.Code)
		}
		t.row(tk.ID, tk.Function, string(tk.Status), strconv.Itoa(tk.Priority),
			fmt.Sprintf("%d/%d", tk.Attempts, tk.MaxAttempts), fmtTime(tk.CreatedAt), errText)
	}
	return t.flush()
}

func writeTask(w io.Writer, tk ward.Task) error {
	t := newTable(w)
	t.row("ID:", tk.ID)
	t.row("Function:", tk.Function)
	t.row("Status:", string(tk.Status))
	t.row("Priority:", strconv.Itoa(tk.Priority))
	t.row("Attempts:", fmt.Sprintf("%d/%d", tk.Attempts, tk.MaxAttempts))
	t.row("Timeout (s):", strconv.Itoa(tk.TimeoutS))
	t.row("Created:", fmtTime(tk.CreatedAt))
	t.row("Run at:", fmtTime(tk.RunAt))
	t.row("Started:", fmtTimePtr(tk.StartedAt))
	t.row("Finished:", fmtTimePtr(tk.FinishedAt))
	t.row("Error:", taskErrorText(tk))
	exit := "-"
	if tk.ExitCode != nil {
		exit = strconv.Itoa(*tk.ExitCode)
	}
	t.row("Exit code:", exit)
	if u := tk.Usage; u != nil {
		t.row("Duration:", (time.Duration(u.DurationMs) * time.Millisecond).String())
		t.row("CPU:", (time.Duration(u.CPUMs) * time.Millisecond).String())
		t.row("Peak memory:", fmt.Sprintf("%.1f MiB", float64(u.PeakMemoryBytes)/(1<<20)))
	}
	t.row("Payload size:", strconv.Itoa(tk.PayloadSize))
	if tk.Sealed {
		t.row("Sealed:", "yes (only the function's tasks, or the key's owner, can open it)")
	}
	if in := tk.Input; in != nil {
		t.row("Payload holds:", payloadSummary(in))
	}
	t.row("Labels:", fmtKV(tk.Labels))
	t.row("Code digest:", orDash(tk.CodeDigest))
	if tk.ParentID != "" {
		t.row("Parent:", tk.ParentID)
	}
	return t.flush()
}

// printTask prints one task in the chosen format.
func (g *globals) printTask(tk ward.Task) error {
	if g.cfg.Output == outputJSON {
		return writeJSON(g.stdout, tk)
	}
	return writeTask(g.stdout, tk)
}

// payloadSummary says in a few words what a projected payload holds.
func payloadSummary(in *ward.PayloadInfo) string {
	s := fmt.Sprintf("%d tokenized", len(in.Tokenized))
	if len(in.Fields) > 0 { // a read of one task; submissions and lists leave them out
		s = fmt.Sprintf("%d field(s), %s", len(in.Fields), s)
	}
	if in.Truncated {
		s += ", lists cut short"
	}
	return s + " (ward task inspect lists them)"
}

// writeInspect writes a task's metadata and what its stored payload holds:
// the pointers kept and tokenized by the function's input rules, never a
// value.
func writeInspect(w io.Writer, tk ward.Task) error {
	t := newTable(w)
	t.row("ID:", tk.ID)
	t.row("Function:", tk.Function)
	t.row("Status:", string(tk.Status))
	t.row("Created:", fmtTime(tk.CreatedAt))
	t.row("Finished:", fmtTimePtr(tk.FinishedAt))
	t.row("Error:", taskErrorText(tk))
	t.row("Labels:", fmtKV(tk.Labels))
	t.row("Code digest:", orDash(tk.CodeDigest))
	t.row("Payload size:", strconv.Itoa(tk.PayloadSize)+" bytes")
	in := tk.Input
	switch {
	case tk.Sealed:
		t.row("Sealed:", "yes: ward stores the envelope it cannot open; no input rules applied")
	default:
		t.row("Sealed:", "no")
	}
	switch {
	case in == nil && tk.Sealed:
	case in == nil:
		t.row("Input rules:", "none: the payload is stored as it was submitted")
	default:
		t.row("Input rules:", "applied at submit: the payload holds only the fields below")
		t.list("Fields:", in.Fields)
		t.list("Tokenized:", in.Tokenized)
		if in.Truncated {
			t.row("", "(the lists are cut short: the payload holds more fields)")
		}
	}
	return t.flush()
}
