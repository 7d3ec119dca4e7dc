package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/wardhq/ward"
)

// NewRecord returns the record of a task just inserted at now: queued, no
// attempts yet. Adapters answer InsertTasks with it; it shares nothing with
// t. Times keep the microsecond precision the adapters store.
func NewRecord(t *NewTask, now time.Time) TaskRecord {
	var labels map[string]string
	if len(t.Labels) > 0 {
		labels = maps.Clone(t.Labels)
	}
	return TaskRecord{
		Task: ward.Task{
			ID:          t.ID,
			Project:     t.Project,
			Function:    t.Function,
			CodeDigest:  t.CodeDigest,
			Status:      ward.StatusQueued,
			Priority:    t.Priority,
			MaxAttempts: t.MaxAttempts,
			TimeoutS:    t.TimeoutS,
			CreatedAt:   now.Truncate(time.Microsecond).UTC(),
			RunAt:       t.RunAt.Truncate(time.Microsecond).UTC(),
			Labels:      labels,
			ParentID:    t.ParentID,
			PayloadSize: t.Size(),
			Sealed:      t.Sealed,
			Input:       CloneInput(t.Input),
		},
		Runtime:     t.TaskRuntime(),
		SubmittedBy: t.SubmittedBy,
		MemoryMB:    t.MemoryMB,
		BackoffS:    t.BackoffS,
	}
}

// TaskRuntime is the runtime the task runs in: Runtime, or
// ward.RuntimeWasm when it is "".
func (t *NewTask) TaskRuntime() ward.Runtime {
	if t.Runtime == "" {
		return ward.RuntimeWasm
	}
	return t.Runtime
}

// Size is the task's payload size as submitted: PayloadSize when the payload
// is held transformed, else len(Payload).
func (t *NewTask) Size() int {
	if t.PayloadSize > 0 {
		return t.PayloadSize
	}
	return len(t.Payload)
}

// CloneInput returns a deep copy of a task's input info.
func CloneInput(in *ward.PayloadInfo) *ward.PayloadInfo {
	if in == nil {
		return nil
	}
	return &ward.PayloadInfo{Fields: slices.Clone(in.Fields), Tokenized: slices.Clone(in.Tokenized), Truncated: in.Truncated}
}

// NewLeaseIDs returns n random lease IDs (128 bits, hex).
func NewLeaseIDs(n int) ([]string, error) {
	b := make([]byte, 16*n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("store: lease id: %w", err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = hex.EncodeToString(b[16*i : 16*(i+1)])
	}
	return ids, nil
}
