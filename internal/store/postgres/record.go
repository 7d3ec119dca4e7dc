package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// taskCols are the columns scanned into a store.TaskRecord by scanTask, in
// order; use them in SELECT and RETURNING clauses (unqualified, or through
// taskColsOf for a qualified list).
const taskCols = `id, project, function, code_digest, status, priority, attempts, max_attempts,
	timeout_s, memory_mb, backoff_s, platform_tries, created_at, run_at, started_at, finished_at,
	error_code, error_message, exit_code, usage_peak_memory, usage_cpu_ms, usage_duration_ms,
	labels, parent_id, payload_size, submitted_by, lease_id, runner_id, lease_expires_at, sealed,
	input_info, runtime`

// Body kinds: a task body's row in task_bodies has (seq, kind).
const (
	kindPayload = 0
	kindResult  = 1
	kindLog     = 2
)

// taskRow holds the scanned columns of one task row.
type taskRow struct {
	id, project, function, codeDigest, status           string
	priority, attempts, maxAttempts, timeoutS, memoryMB int
	backoffS, platformTries                             int
	created, runAt                                      int64
	started, finished                                   *int64
	errCode, errMsg                                     *string
	exitCode                                            *int
	peak, cpu, dur                                      *int64
	labels                                              *string
	parentID                                            string
	payloadSize                                         int
	submittedBy                                         string
	leaseID, runnerID                                   *string
	leaseExpires                                        *int64
	sealed                                              bool
	input                                               *string
	runtime                                             string
}

// dest returns the scan destinations of taskCols followed by extra.
func (r *taskRow) dest(extra ...any) []any {
	return append([]any{&r.id, &r.project, &r.function, &r.codeDigest, &r.status, &r.priority, &r.attempts, &r.maxAttempts,
		&r.timeoutS, &r.memoryMB, &r.backoffS, &r.platformTries, &r.created, &r.runAt, &r.started, &r.finished,
		&r.errCode, &r.errMsg, &r.exitCode, &r.peak, &r.cpu, &r.dur,
		&r.labels, &r.parentID, &r.payloadSize, &r.submittedBy, &r.leaseID, &r.runnerID, &r.leaseExpires, &r.sealed,
		&r.input, &r.runtime}, extra...)
}

// scanTask scans one row of taskCols followed by extra destinations.
func scanTask(sc scanner, extra ...any) (store.TaskRecord, error) {
	var r taskRow
	if err := sc.Scan(r.dest(extra...)...); err != nil {
		return store.TaskRecord{}, err
	}
	return r.record()
}

// scanTaskRow scans one row of taskCols (for collect).
func scanTaskRow(sc scanner) (store.TaskRecord, error) { return scanTask(sc) }

func (r *taskRow) record() (store.TaskRecord, error) {
	rec := store.TaskRecord{
		Task: ward.Task{
			ID:          r.id,
			Project:     r.project,
			Function:    r.function,
			CodeDigest:  r.codeDigest,
			Status:      ward.Status(r.status),
			Priority:    r.priority,
			Attempts:    r.attempts,
			MaxAttempts: r.maxAttempts,
			TimeoutS:    r.timeoutS,
			CreatedAt:   fromMicros(r.created),
			RunAt:       fromMicros(r.runAt),
			StartedAt:   optTime(r.started),
			FinishedAt:  optTime(r.finished),
			ParentID:    r.parentID,
			PayloadSize: r.payloadSize,
			Sealed:      r.sealed,
		},
		Runtime:       ward.Runtime(r.runtime),
		MemoryMB:      r.memoryMB,
		BackoffS:      r.backoffS,
		PlatformTries: r.platformTries,
		SubmittedBy:   r.submittedBy,
	}
	if r.leaseID != nil {
		rec.LeaseID = *r.leaseID
	}
	if r.runnerID != nil {
		rec.RunnerID = *r.runnerID
	}
	if r.errCode != nil {
		rec.Error = &ward.TaskError{Code: ward.Code(*r.errCode)}
		if r.errMsg != nil {
			rec.Error.Message = *r.errMsg
		}
	}
	if r.exitCode != nil {
		c := *r.exitCode
		rec.ExitCode = &c
	}
	if r.peak != nil {
		rec.Usage = &ward.Usage{PeakMemoryBytes: *r.peak}
		if r.cpu != nil {
			rec.Usage.CPUMs = *r.cpu
		}
		if r.dur != nil {
			rec.Usage.DurationMs = *r.dur
		}
	}
	if r.labels != nil {
		if err := json.Unmarshal([]byte(*r.labels), &rec.Labels); err != nil {
			return store.TaskRecord{}, fmt.Errorf("task %s: decode labels: %w", rec.ID, err)
		}
	}
	if r.leaseExpires != nil {
		rec.LeaseExpiresAt = fromMicros(*r.leaseExpires)
	}
	if r.input != nil {
		rec.Input = new(ward.PayloadInfo)
		if err := json.Unmarshal([]byte(*r.input), rec.Input); err != nil {
			return store.TaskRecord{}, fmt.Errorf("task %s: decode input info: %w", rec.ID, err)
		}
	}
	return rec, nil
}

// taskErrorArgs returns the stored form of a task error: code and message.
func taskErrorArgs(e *ward.TaskError) (code, msg *string) {
	if e == nil {
		return nil, nil
	}
	c := string(e.Code)
	return &c, &e.Message
}

// usageArgs returns the stored form of a usage: peak memory, cpu, duration.
func usageArgs(u *ward.Usage) (peak, cpu, dur *int64) {
	if u == nil {
		return nil, nil, nil
	}
	return &u.PeakMemoryBytes, &u.CPUMs, &u.DurationMs
}

// labelsArg returns the stored form of labels: JSON, or nil when empty.
func labelsArg(l map[string]string) (*string, error) {
	if len(l) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encode labels: %w", err)
	}
	s := string(b)
	return &s, nil
}

// inputArg returns the stored form of a task's input info: JSON, or nil
// when there is none.
func inputArg(in *ward.PayloadInfo) (*string, error) {
	if in == nil {
		return nil, nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode input info: %w", err)
	}
	s := string(b)
	return &s, nil
}
