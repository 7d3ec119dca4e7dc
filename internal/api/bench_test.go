package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

// BenchmarkSubmit measures one task submission through the whole stack:
// HTTP, authentication, strict decoding, the queue and SQLite.
func BenchmarkSubmit(b *testing.B) {
	e := newEnv(b)
	e.function("alpha", "f", ward.DefaultSpec())
	token := e.token(ward.RoleSubmitter, "alpha")
	body := `{"function":"f","payload":{"order":{"id":42,"items":[1,2,3]}},"priority":1}`
	h := e.server.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/projects/alpha/tasks", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkReadResult measures an audited body read.
func BenchmarkReadResult(b *testing.B) {
	e := newEnv(b)
	e.function("alpha", "f", ward.DefaultSpec())
	token := e.token(ward.RoleOwner, "alpha")
	task := e.submit("alpha", token, ward.SubmitRequest{Function: "f", Payload: []byte(`{"k":"v"}`)})
	e.runAll(echo)
	h := e.server.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/v1/projects/alpha/tasks/"+task.ID+"/result", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkDecodeBatch measures strict decoding of a 1000-task batch.
func BenchmarkDecodeBatch(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"tasks":[`)
	for i := range ward.MaxBatch {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"function":"resize","payload":{"w":640,"h":480,"src":"s3://bucket/key"},"labels":{"team":"img"}}`)
	}
	sb.WriteString(`]}`)
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeBatch(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
