package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/wardhq/ward"
)

const (
	tokA = "tok_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	tokB = "tok_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestResultDetokenized(t *testing.T) {
	t.Parallel()
	f := newFake(t, fixed(200, `{"customer":"cust-42"}`))
	c := newTestClient(t, f)
	got, err := c.ResultDetokenized(context.Background(), "p", "t_1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"customer":"cust-42"}` {
		t.Errorf("result = %s", got)
	}
	req := f.requests()[0]
	if req.Method != "GET" || req.RawPath != "/v1/projects/p/tasks/t_1/result" || req.Query != "detokenize=1" {
		t.Errorf("request = %s %s?%s", req.Method, req.RawPath, req.Query)
	}
	if req.Header.Get("Authorization") != "Bearer "+testToken {
		t.Errorf("no bearer token sent")
	}

	// An empty result is empty, not nil.
	f = newFake(t, fixed(200, ""))
	got, err = newTestClient(t, f).ResultDetokenized(context.Background(), "p", "t_1")
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty result = %q, %v", got, err)
	}
}

func TestResultDetokenizedErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t, fixed(409, `{"error":{"code":"invalid_state","message":"task t_1 is running"}}`))
	_, err := newTestClient(t, f).ResultDetokenized(context.Background(), "p", "t_1")
	if !errors.Is(err, ward.ErrInvalidState) {
		t.Errorf("err = %v, want invalid_state", err)
	}
	// A bad id never reaches the server as a path.
	_, err = newTestClient(t, f).ResultDetokenized(context.Background(), "p", "..")
	if ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Errorf("err = %v, want invalid_argument", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestInvokeDetokenized(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(int, *http.Request) reply {
		return reply{header: map[string]string{"Ward-Task-Id": "t_5"}, body: `{"score":3}`}
	})
	c := newTestClient(t, f)
	for _, tt := range []struct {
		payload []byte
		ctype   string
	}{
		{[]byte(`{"order":{}}`), "application/json"},
		{[]byte{0xff, 0x00}, "application/octet-stream"},
		{nil, "application/octet-stream"},
	} {
		got, err := c.InvokeDetokenized(context.Background(), "p", "fraud", tt.payload)
		if err != nil {
			t.Fatal(err)
		}
		if got.TaskID != "t_5" || string(got.Body) != `{"score":3}` {
			t.Errorf("invoke = %+v", got)
		}
		reqs := f.requests()
		req := reqs[len(reqs)-1]
		if req.Method != "POST" || req.RawPath != "/v1/projects/p/functions/fraud/invoke" || req.Query != "detokenize=1" {
			t.Errorf("request = %s %s?%s", req.Method, req.RawPath, req.Query)
		}
		if req.Header.Get("Content-Type") != tt.ctype || string(req.Body) != string(tt.payload) {
			t.Errorf("payload %q sent as %s %q", tt.payload, req.Header.Get("Content-Type"), req.Body)
		}
	}
}

func TestInvokeDetokenizedErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFake(t, fixed(502, `{"error":{"code":"exit_status","message":"exit status 1"},"task_id":"t_7"}`))
	_, err := newTestClient(t, f).InvokeDetokenized(ctx, "p", "fraud", []byte(`{}`))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != ward.CodeExitStatus || ae.TaskID != "t_7" {
		t.Errorf("err = %#v, want exit_status for task t_7", err)
	}
	for _, hdr := range []map[string]string{nil, {"Ward-Task-Id": "../t_1"}} {
		f := newFake(t, func(int, *http.Request) reply { return reply{header: hdr, body: "ok"} })
		_, err := newTestClient(t, f).InvokeDetokenized(ctx, "p", "fraud", nil)
		if !errors.Is(err, ErrBadResponse) {
			t.Errorf("header %v: err = %v, want ErrBadResponse", hdr, err)
		}
	}
}

func TestDetokenize(t *testing.T) {
	t.Parallel()
	f := newFake(t, fixed(200, `{"values":{"`+tokA+`":"cust-42","`+tokB+`":{"n":1}}}`))
	got, err := newTestClient(t, f).Detokenize(context.Background(), "p", []string{tokA, tokB})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]json.RawMessage{tokA: json.RawMessage(`"cust-42"`), tokB: json.RawMessage(`{"n":1}`)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("values = %s, want %s", got, want)
	}
	req := f.requests()[0]
	if req.Method != "POST" || req.RawPath != "/v1/projects/p/detokenize" || req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request = %s %s %s", req.Method, req.RawPath, req.Header.Get("Content-Type"))
	}
	jsonEqual(t, req.Body, `{"tokens":["`+tokA+`","`+tokB+`"]}`)

	// An answer without "values" is not an empty answer.
	f = newFake(t, fixed(200, `{}`))
	if _, err := newTestClient(t, f).Detokenize(context.Background(), "p", []string{tokA}); !errors.Is(err, ErrBadResponse) {
		t.Errorf("err = %v, want ErrBadResponse", err)
	}
	f = newFake(t, fixed(403, `{"error":{"code":"forbidden","message":"needs scope detokenize"}}`))
	if _, err := newTestClient(t, f).Detokenize(context.Background(), "p", []string{tokA}); ward.CodeOf(err) != ward.CodeForbidden {
		t.Errorf("err = %v, want forbidden", err)
	}
}

func TestFanout(t *testing.T) {
	t.Parallel()
	body := `{"tasks":[` + taskJSON + `,` + taskJSON + `]}`
	f := newFake(t, fixed(202, body))
	tasks, err := newTestClient(t, f).Fanout(context.Background(), "p", ward.FanoutRequest{
		Functions: []string{"a", "b"}, Payload: json.RawMessage(`{"x":1}`), Priority: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 2 || tasks[0].ID != "t_1" {
		t.Errorf("tasks = %+v", tasks)
	}
	req := f.requests()[0]
	if req.Method != "POST" || req.RawPath != "/v1/projects/p/tasks/fanout" {
		t.Errorf("request = %s %s", req.Method, req.RawPath)
	}
	jsonEqual(t, req.Body, `{"functions":["a","b"],"payload":{"x":1},"priority":1}`)

	// 200 is not the fan-out's answer; a task without an id is refused.
	for _, rep := range []reply{{status: 200, body: body}, {status: 202, body: `{"tasks":[{"status":"queued"}]}`}} {
		f := newFake(t, fixed(rep.status, rep.body))
		if _, err := newTestClient(t, f).Fanout(context.Background(), "p", ward.FanoutRequest{Functions: []string{"a"}}); !errors.Is(err, ErrBadResponse) {
			t.Errorf("%d %s: err = %v, want ErrBadResponse", rep.status, rep.body, err)
		}
	}
}
