package postgres

import (
	"encoding/json"
	"testing"
)

// FuzzTaskRowRecord decodes arbitrary stored labels and input info: a
// record never panics, and decodes exactly when both are valid JSON of the
// right shape.
func FuzzTaskRowRecord(f *testing.F) {
	f.Add(`{"a":"b"}`, `{"fields":["x"],"tokenized":["y"],"truncated":true}`)
	f.Add(`null`, `null`)
	f.Add(`{"a":1}`, `[]`)
	f.Add(``, `{`)
	f.Fuzz(func(t *testing.T, labels, input string) {
		r := taskRow{id: "t", status: "queued", labels: &labels, input: &input}
		rec, err := r.record()
		var l map[string]string
		lerr := json.Unmarshal([]byte(labels), &l)
		if lerr != nil && err == nil {
			t.Fatalf("labels %q decoded without error", labels)
		}
		if err == nil && rec.ID != "t" {
			t.Fatalf("record ID %q", rec.ID)
		}
	})
}

func TestTaskRowRecordNulls(t *testing.T) {
	t.Parallel()
	r := taskRow{id: "t", status: "queued", created: 1, runAt: 2}
	rec, err := r.record()
	if err != nil {
		t.Fatal(err)
	}
	if rec.Labels != nil || rec.Input != nil || rec.Error != nil || rec.ExitCode != nil || rec.Usage != nil ||
		rec.StartedAt != nil || rec.FinishedAt != nil || !rec.LeaseExpiresAt.IsZero() || rec.LeaseID != "" {
		t.Errorf("NULL columns gave %+v", rec)
	}
	if rec.CreatedAt.UnixMicro() != 1 || rec.RunAt.UnixMicro() != 2 {
		t.Errorf("times %v %v", rec.CreatedAt, rec.RunAt)
	}
}
