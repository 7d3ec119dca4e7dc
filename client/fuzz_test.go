package client

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wardhq/ward"
)

func FuzzDecodeError(f *testing.F) {
	f.Add(404, "", []byte(`{"error":{"code":"not_found","message":"task t_1 not found"}}`))
	f.Add(400, "", []byte(`{"error":{"code":"invalid_argument","message":"bad","field":"tasks[3].priority"}}`))
	f.Add(429, "3", []byte(`{"error":{"code":"function_concurrency","message":"busy"}}`))
	f.Add(502, "", []byte(`{"error":{"code":"exit_status","message":"exit 1"},"task_id":"t_01"}`))
	f.Add(504, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(`{"error":{"code":"timeout"},"task_id":"t_2"}`))
	f.Add(500, "", []byte(`<html>oops</html>`))
	f.Add(503, "-1", []byte(`{"error":null}`))
	f.Add(418, "x", []byte(`{"error":{"code":"\u001b[1m","message":"\u202eevil\x7f"},"task_id":"../../x"}`))
	f.Add(401, "", []byte{})
	now := time.Date(2015, 10, 21, 7, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		e := decodeError(status, retryAfter, body, now)
		if e.Status != status {
			t.Fatalf("Status = %d, want %d", e.Status, status)
		}
		if !validCode(string(e.Code)) {
			t.Fatalf("Code %q is not a valid code", e.Code)
		}
		if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
			t.Fatalf("RetryAfter = %v out of range", e.RetryAfter)
		}
		if e.TaskID != "" && !validID(e.TaskID) {
			t.Fatalf("TaskID %q is not a valid ID", e.TaskID)
		}
		for name, s := range map[string]string{"Message": e.Message, "Field": e.Field} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s %q is not UTF-8", name, s)
			}
			if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0 {
				t.Fatalf("%s %q has control characters", name, s)
			}
		}
		if len(e.Message) > maxMessageLen || len(e.Field) > maxFieldLen {
			t.Fatalf("message or field over the cap")
		}
		if !e.Is(&ward.Error{Code: e.Code}) {
			t.Fatal("Is does not match its own code")
		}
		if e.Error() == "" {
			t.Fatal("empty Error()")
		}
	})
}

func FuzzDecodeTask(f *testing.F) {
	f.Add([]byte(taskJSON))
	f.Add([]byte(`{"id":"t_1","status":"running"} `))
	f.Add([]byte(`{"id":"t_1","status":"running"}{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"id":"","status":"queued"}`))
	f.Add([]byte(`{"id":"t_1","status":"queued","usage":{"cpu_ms":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tk task
		if err := decodeStrict(data, &tk); err != nil {
			return
		}
		if !validID(tk.ID) || !tk.Status.Valid() {
			t.Fatalf("accepted an invalid task: %+v", tk)
		}
	})
}

func FuzzDecodeTaskList(f *testing.F) {
	f.Add([]byte(`{"tasks":[` + taskJSON + `],"next_cursor":"c"}`))
	f.Add([]byte(`{"tasks":null}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"tasks":[{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var l taskList
		if err := decodeStrict(data, &l); err != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil || m["tasks"] == nil {
			t.Fatalf("accepted a list without a tasks key: %q", data)
		}
		for _, tk := range l.Tasks {
			if !validID(tk.ID) || !tk.Status.Valid() {
				t.Fatalf("accepted an invalid task: %+v", tk)
			}
		}
	})
}

func FuzzDecodeStats(f *testing.F) {
	f.Add([]byte(statsJSON))
	f.Add([]byte(`{"window_s":60,"at":"2026-01-02T03:04:05Z","functions":[],"total":{}}`))
	f.Add([]byte(`{"window_s":60,"at":"2026-01-02T03:04:05Z","functions":[{}],"total":{}}`))
	f.Add([]byte(`{"window_s":-1,"functions":null,"total":null,"at":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s statsView
		if err := decodeStrict(data, &s); err != nil {
			return
		}
		if s.WindowS <= 0 {
			t.Fatalf("accepted stats without a window: %q", data)
		}
		for _, fs := range append(s.Functions, s.Total) {
			if min(fs.Queued, fs.Delayed, fs.Running, fs.Submitted, fs.Finished, fs.Failed) < 0 || fs.Failed > fs.Finished {
				t.Fatalf("accepted implausible figures: %+v", fs)
			}
		}
		for _, fs := range s.Functions {
			if fs.Function == "" {
				t.Fatalf("accepted a row without a name: %q", data)
			}
		}
	})
}
