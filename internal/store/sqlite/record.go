package sqlite

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// taskCols are the columns scanned into a store.TaskRecord by scanTask, in
// order; use them in SELECT and RETURNING clauses.
const taskCols = `id, project, function, code_digest, status, priority, attempts, max_attempts,
	timeout_s, memory_mb, backoff_s, platform_tries, created_at, run_at, started_at, finished_at,
	error_code, error_message, exit_code, usage_peak_memory, usage_cpu_ms, usage_duration_ms,
	labels, parent_id, payload_size, submitted_by, lease_id, runner_id, lease_expires_at, sealed,
	input_info, runtime`

// Body kinds: a task body's row in task_bodies has id seq*4 + kind.
const (
	kindPayload = 0
	kindResult  = 1
	kindLog     = 2
)

// bodyID is the task_bodies row ID of one body of the task with seq.
func bodyID(seq int64, kind int) int64 { return seq*4 + int64(kind) }

// scanner is one row of a query.
type scanner = store.Scanner

// numTaskCols is the number of columns in taskCols.
const numTaskCols = 32

// taskScanner scans rows of taskCols, followed by extra destinations, into
// records. It scans into plain interface values and converts them itself,
// which avoids database/sql's reflection; it can be reused row after row.
type taskScanner struct {
	vals [numTaskCols]any
	dest []any
}

func newTaskScanner(extra ...any) *taskScanner {
	s := &taskScanner{dest: make([]any, 0, numTaskCols+len(extra))}
	for i := range s.vals {
		s.dest = append(s.dest, &s.vals[i])
	}
	s.dest = append(s.dest, extra...)
	return s
}

// scanTask scans one row of taskCols followed by extra destinations.
func scanTask(sc scanner, extra ...any) (store.TaskRecord, error) {
	return newTaskScanner(extra...).scan(sc)
}

func (s *taskScanner) scan(sc scanner) (store.TaskRecord, error) {
	if err := sc.Scan(s.dest...); err != nil {
		return store.TaskRecord{}, err
	}
	v := &s.vals
	r := store.TaskRecord{
		Task: ward.Task{
			ID:          text(v[0]),
			Project:     text(v[1]),
			Function:    text(v[2]),
			CodeDigest:  text(v[3]),
			Status:      ward.Status(text(v[4])),
			Priority:    int(integer(v[5])),
			Attempts:    int(integer(v[6])),
			MaxAttempts: int(integer(v[7])),
			TimeoutS:    int(integer(v[8])),
			CreatedAt:   fromMicros(integer(v[12])),
			RunAt:       fromMicros(integer(v[13])),
			StartedAt:   optMicros(v[14]),
			FinishedAt:  optMicros(v[15]),
			ParentID:    text(v[23]),
			PayloadSize: int(integer(v[24])),
			Sealed:      integer(v[29]) != 0,
		},
		Runtime:       ward.Runtime(text(v[31])),
		MemoryMB:      int(integer(v[9])),
		BackoffS:      int(integer(v[10])),
		PlatformTries: int(integer(v[11])),
		SubmittedBy:   text(v[25]),
		LeaseID:       text(v[26]),
		RunnerID:      text(v[27]),
	}
	if v[16] != nil {
		r.Error = &ward.TaskError{Code: ward.Code(text(v[16])), Message: text(v[17])}
	}
	if v[18] != nil {
		c := int(integer(v[18]))
		r.ExitCode = &c
	}
	if v[19] != nil {
		r.Usage = &ward.Usage{PeakMemoryBytes: integer(v[19]), CPUMs: integer(v[20]), DurationMs: integer(v[21])}
	}
	if v[22] != nil {
		if err := json.Unmarshal([]byte(text(v[22])), &r.Labels); err != nil {
			return store.TaskRecord{}, fmt.Errorf("task %s: decode labels: %w", r.ID, err)
		}
	}
	if v[28] != nil {
		r.LeaseExpiresAt = fromMicros(integer(v[28]))
	}
	if v[30] != nil {
		r.Input = new(ward.PayloadInfo)
		if err := json.Unmarshal([]byte(text(v[30])), r.Input); err != nil {
			return store.TaskRecord{}, fmt.Errorf("task %s: decode input info: %w", r.ID, err)
		}
	}
	return r, nil
}

// text returns a TEXT column's value; NULL is "".
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

// integer returns an INTEGER column's value; NULL is 0.
func integer(v any) int64 {
	x, _ := v.(int64)
	return x
}

// optMicros returns a nullable time column as *time.Time.
func optMicros(v any) *time.Time {
	if v == nil {
		return nil
	}
	t := fromMicros(integer(v))
	return &t
}

// The helpers below return the stored form of optional fields as plain
// values, nil for NULL (cheaper to bind than the sql.Null types).

// taskErrorArgs returns the stored form of a task error: code and message.
func taskErrorArgs(e *ward.TaskError) (code, msg any) {
	if e == nil {
		return nil, nil
	}
	return string(e.Code), e.Message
}

// usageArgs returns the stored form of a usage: peak memory, cpu, duration.
func usageArgs(u *ward.Usage) (peak, cpu, dur any) {
	if u == nil {
		return nil, nil, nil
	}
	return u.PeakMemoryBytes, u.CPUMs, u.DurationMs
}

// exitArg returns the stored form of an exit code.
func exitArg(c *int) any {
	if c == nil {
		return nil
	}
	return int64(*c)
}

// labelsArg returns the stored form of labels: JSON, or nil when empty.
func labelsArg(l map[string]string) (any, error) {
	if len(l) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encode labels: %w", err)
	}
	return string(b), nil
}

// inputArg returns the stored form of a task's input info: JSON, or nil
// when there is none.
func inputArg(in *ward.PayloadInfo) (any, error) {
	if in == nil {
		return nil, nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode input info: %w", err)
	}
	return string(b), nil
}
