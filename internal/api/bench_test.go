package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

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

// readOrder returns the 4 KB order of testdata/order-4k.json; its
// customer id is "cust-1".
func readOrder(b *testing.B) string {
	raw, err := os.ReadFile("testdata/order-4k.json")
	if err != nil {
		b.Fatal(err)
	}
	return string(raw)
}

// BenchmarkSubmitInput measures the cost of input rules on the API's submit
// path (handler to SQLite, no encryption) with a 4 KB order: "plain" has no rules; "rules" keeps five pointers and
// tokenizes the customer id (the same customer each time, so its vault
// entry is already written today); "rules-new-customer" has a new customer
// id each time (a vault write per submission). Compare the three in one run.
func BenchmarkSubmitInput(b *testing.B) {
	rules := ward.DefaultSpec()
	rules.Input = ward.Input{
		Fields:   []string{"/order/total", "/order/currency", "/order/items/*/qty", "/order/items/*/price", "/customer/id"},
		Tokenize: []string{"/customer/id"},
	}
	for _, bc := range []struct {
		name    string
		spec    ward.FunctionSpec
		newCust bool
	}{{"plain", ward.DefaultSpec(), false}, {"rules", rules, false}, {"rules-new-customer", rules, true}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b)
			e.function("alpha", "f", bc.spec)
			token := e.token(ward.RoleSubmitter, "alpha")
			h := e.server.Handler()
			order := readOrder(b)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id := "cust-1"
				if bc.newCust {
					i++
					id = "cust-" + strconv.Itoa(i)
				}
				body := `{"function":"f","payload":` + strings.Replace(order, `"cust-1"`, strconv.Quote(id), 1) + `}`
				req := httptest.NewRequest("POST", "/v1/projects/alpha/tasks", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkStats measures GET /v1/projects/{p}/stats over a project of 20
// functions, each with 50 tasks finished in the window and 10 queued: one
// cached counts read and one grouped window read of SQLite per request.
func BenchmarkStats(b *testing.B) {
	e := newEnv(b)
	batch := func(fn string, n int) {
		req := ward.BatchSubmitRequest{}
		for range n {
			req.Tasks = append(req.Tasks, ward.SubmitRequest{Function: fn})
		}
		e.do("POST", "/v1/projects/alpha/tasks/batch", e.admin, req).wantStatus(b, http.StatusAccepted)
	}
	for i := range 20 {
		fn := "f" + strconv.Itoa(i)
		e.function("alpha", fn, ward.DefaultSpec())
		batch(fn, 50)
	}
	e.clock.Advance(time.Second)
	for e.runAll(echo) > 0 {
	}
	for i := range 20 {
		batch("f"+strconv.Itoa(i), 10)
	}
	e.clock.Advance(time.Second)
	token := e.token(ward.RoleViewer, "alpha")
	h := e.server.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/v1/projects/alpha/stats", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
