package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// taskCols are the columns scanned into a store.TaskRecord by scanTask, in
// order; use them in SELECT and RETURNING clauses.
const taskCols = `id, project, function, code_digest, status, priority, attempts, max_attempts,
	timeout_s, memory_mb, backoff_s, platform_tries, created_at, run_at, started_at, finished_at,
	error_code, error_message, exit_code, usage_peak_memory, usage_cpu_ms, usage_duration_ms,
	labels, parent_id, payload_size, submitted_by, lease_id, runner_id, lease_expires_at`

// Body kinds: a task body's row in task_bodies has id seq*4 + kind.
const (
	kindPayload = 0
	kindResult  = 1
	kindLog     = 2
)

// bodyID is the task_bodies row ID of one body of the task with seq.
func bodyID(seq int64, kind int) int64 { return seq*4 + int64(kind) }

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanTask scans the taskCols of one row, followed by extra destinations.
func scanTask(sc scanner, extra ...any) (store.TaskRecord, error) {
	var (
		r                              store.TaskRecord
		status                         string
		createdAt, runAt               int64
		startedAt, finishedAt, expires sql.NullInt64
		errCode, errMsg                sql.NullString
		exitCode, peak, cpu, dur       sql.NullInt64
		labels                         sql.NullString
		leaseID, runnerID              sql.NullString
	)
	dest := []any{
		&r.ID, &r.Project, &r.Function, &r.CodeDigest, &status, &r.Priority, &r.Attempts, &r.MaxAttempts,
		&r.TimeoutS, &r.MemoryMB, &r.BackoffS, &r.PlatformTries, &createdAt, &runAt, &startedAt, &finishedAt,
		&errCode, &errMsg, &exitCode, &peak, &cpu, &dur,
		&labels, &r.ParentID, &r.PayloadSize, &r.SubmittedBy, &leaseID, &runnerID, &expires,
	}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return store.TaskRecord{}, err
	}
	r.Status = ward.Status(status)
	r.CreatedAt = fromMicros(createdAt)
	r.RunAt = fromMicros(runAt)
	r.StartedAt = optTime(startedAt)
	r.FinishedAt = optTime(finishedAt)
	if errCode.Valid {
		r.Error = &ward.TaskError{Code: ward.Code(errCode.String), Message: errMsg.String}
	}
	if exitCode.Valid {
		c := int(exitCode.Int64)
		r.ExitCode = &c
	}
	if peak.Valid {
		r.Usage = &ward.Usage{PeakMemoryBytes: peak.Int64, CPUMs: cpu.Int64, DurationMs: dur.Int64}
	}
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &r.Labels); err != nil {
			return store.TaskRecord{}, fmt.Errorf("task %s: decode labels: %w", r.ID, err)
		}
	}
	r.LeaseID = leaseID.String
	r.RunnerID = runnerID.String
	if expires.Valid {
		r.LeaseExpiresAt = fromMicros(expires.Int64)
	}
	return r, nil
}

// taskErrorArgs returns the stored form of a task error: code and message.
func taskErrorArgs(e *ward.TaskError) (code, msg sql.NullString) {
	if e == nil {
		return
	}
	return sql.NullString{String: string(e.Code), Valid: true}, sql.NullString{String: e.Message, Valid: true}
}

// usageArgs returns the stored form of a usage: peak memory, cpu, duration.
func usageArgs(u *ward.Usage) (peak, cpu, dur sql.NullInt64) {
	if u == nil {
		return
	}
	return sql.NullInt64{Int64: u.PeakMemoryBytes, Valid: true},
		sql.NullInt64{Int64: u.CPUMs, Valid: true},
		sql.NullInt64{Int64: u.DurationMs, Valid: true}
}

// exitArg returns the stored form of an exit code.
func exitArg(c *int) sql.NullInt64 {
	if c == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*c), Valid: true}
}

// labelsArg returns the stored form of labels: JSON, or NULL when empty.
func labelsArg(l map[string]string) (sql.NullString, error) {
	if len(l) == 0 {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("encode labels: %w", err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}
