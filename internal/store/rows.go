package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/wardhq/ward"
)

// The rows below have the same columns and types in every adapter (times
// as Unix microseconds): each adapter selects the columns named here and
// hands its row to the Scan function.

// Scanner is one row of a query: *sql.Row, *sql.Rows, pgx.Row or pgx.Rows.
type Scanner interface {
	Scan(dest ...any) error
}

// ProjectCols are the columns ScanProject reads first, in order; the
// project's stored bytes follow them, as each adapter keeps that count its
// own way.
const ProjectCols = `name, created_at, retention_days, max_queued, max_functions, max_running, max_stored_mb`

// ScanProject reads a row of ProjectCols followed by the stored bytes.
func ScanProject(sc Scanner) (ward.Project, error) {
	var p ward.Project
	var created int64
	q := &p.Quotas
	if err := sc.Scan(&p.Name, &created, &p.RetentionDays, &q.MaxQueued, &q.MaxFunctions, &q.MaxRunning, &q.MaxStoredMB,
		&p.Usage.StoredBytes); err != nil {
		return ward.Project{}, err
	}
	p.CreatedAt = fromMicros(created)
	return p, nil
}

// FunctionCols are the columns ScanFunction reads, in order.
const FunctionCols = `project, name, spec, code_digest, code_version, code_size, created_at, updated_at`

// ScanFunction reads a row of FunctionCols.
func ScanFunction(sc Scanner) (ward.Function, error) {
	var (
		f                ward.Function
		spec             string
		created, updated int64
	)
	if err := sc.Scan(&f.Project, &f.Name, &spec, &f.CodeDigest, &f.CodeVersion, &f.CodeSize, &created, &updated); err != nil {
		return ward.Function{}, err
	}
	if err := json.Unmarshal([]byte(spec), &f.Spec); err != nil {
		return ward.Function{}, fmt.Errorf("function %s: decode spec: %w", f.Name, err)
	}
	f.CreatedAt = fromMicros(created)
	f.UpdatedAt = fromMicros(updated)
	return f, nil
}

// SecretCols are the columns ScanSecret reads, in order.
const SecretCols = `function, name, version, size, updated_at`

// ScanSecret reads a row of SecretCols followed by the columns of extra.
func ScanSecret(sc Scanner, extra ...any) (ward.Secret, error) {
	var sec ward.Secret
	var updated int64
	if err := sc.Scan(append([]any{&sec.Function, &sec.Name, &sec.Version, &sec.Size, &updated}, extra...)...); err != nil {
		return ward.Secret{}, err
	}
	sec.UpdatedAt = fromMicros(updated)
	return sec, nil
}

// ProjectNotFound is the error for a missing project.
func ProjectNotFound(name string) error {
	return ward.Errorf(ward.CodeNotFound, "project %s not found", name)
}

// SecretNotFound is the error for a missing secret; it names the secret,
// never its value.
func SecretNotFound(name string) error {
	return ward.Errorf(ward.CodeNotFound, "secret %s not found", name)
}

// fromMicros converts a stored time back to a UTC time.Time.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
