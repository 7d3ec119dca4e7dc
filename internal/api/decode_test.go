package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

// decodeCodes are the codes a request decoder may answer with.
var decodeCodes = []ward.Code{ward.CodeInvalidJSON, ward.CodeUnknownField, ward.CodeInvalidArgument}

// checkDecodeError fails unless err is a *ward.Error with a decoder code.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var we *ward.Error
	if !errors.As(err, &we) {
		t.Fatalf("error %T %v is not a *ward.Error", err, err)
	}
	for _, c := range decodeCodes {
		if we.Code == c {
			if we.Message == "" {
				t.Fatalf("%s error without a message", we.Code)
			}
			return
		}
	}
	t.Fatalf("unexpected code %q (%v)", we.Code, err)
}

// checkAgreesWithStdlib checks that a strict decode is never laxer than
// encoding/json with DisallowUnknownFields, and decodes the same value.
func checkAgreesWithStdlib[T any](t *testing.T, data []byte) {
	t.Helper()
	var strict T
	strictErr := decodeStrict(data, &strict)
	var std T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	stdErr := dec.Decode(&std)
	if stdErr == nil {
		if _, err := dec.Token(); err == nil {
			stdErr = errors.New("trailing data")
		}
	}
	if strictErr != nil {
		return
	}
	if stdErr != nil {
		t.Fatalf("strict decoding accepted what encoding/json rejects (%v): %q", stdErr, data)
	}
	if !reflect.DeepEqual(strict, std) {
		t.Fatalf("strict decoded %+v, encoding/json %+v", strict, std)
	}
}

func FuzzDecodeSubmit(f *testing.F) {
	for _, s := range []string{
		`{"function":"f"}`,
		`{"function":"resize","payload":{"w":10,"h":[1,2,{"x":null}]},"priority":2,"delay_s":5,"timeout_s":3,"max_attempts":2,"labels":{"a":"b"},"idempotency_key":"k"}`,
		`{"function":"f","payload_b64":"AAEC"}`,
		`{"function":"f","payload_b64":"!!"}`,
		`{"function":"f","Function":"g"}`,
		`{"function":"f","function":"g"}`,
		`{"function":"F"}`,
		`{"function":"f","priority":1e400}`,
		`{"function":"f","priority":1.5}`,
		`{"function":"f","labels":{"a":1}}`,
		`{"function":"f","labels":[]}`,
		`{"function":"f"} {}`,
		`{"function":"f"`,
		`null`, `[]`, `""`, ``, `{"payload":[[[[[[[[[[]]]]]]]]]]}`,
		"{\"function\":\"f\",\"payload\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeSubmit(bytes.NewReader(data))
		if err != nil {
			checkDecodeError(t, err)
		} else if !ward.ValidName(req.Function) {
			t.Fatalf("accepted function name %q", req.Function)
		}
		checkAgreesWithStdlib[ward.SubmitRequest](t, data)
	})
}

func FuzzDecodeFunctionSpec(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"runtime":"wasm","limits":{"memory_mb":128,"timeout_s":10,"max_concurrency":2,"max_payload_kb":16},"retries":{"max_attempts":3,"backoff_s":1},"retention_days":30}`,
		`{"runtime":"oci"}`,
		`{"limits":{"memory_mb":-1}}`,
		`{"limits":{"memory_mb":"64"}}`,
		`{"limits":{"gpu":1}}`,
		`{"input":{"fields":["/a"]}}`,
		`{"input":{"strict":"yes"}}`,
		`{"limits":null}`,
		`{"limits":{"memory_mb":99999999999999999999}}`,
		`{"Limits":{}}`,
		`{"retries":{"max_attempts":1,"max_attempts":2}}`,
		`[{}]`, `0`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := decodeFunctionSpec(bytes.NewReader(data))
		if err != nil {
			checkDecodeError(t, err)
		} else if err := spec.Validate(); err != nil {
			t.Fatalf("accepted an invalid spec %+v: %v", spec, err)
		}
		checkAgreesWithStdlib[ward.FunctionSpec](t, data)
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`{"tasks":[{"function":"f"},{"function":"g","priority":1}]}`,
		`{"tasks":[]}`,
		`{"tasks":null}`,
		`{}`,
		`{"tasks":[{"function":"f"},{"function":"g","x":1}]}`,
		`{"tasks":[{"function":"f"},{"function":"G"}]}`,
		`{"tasks":[1]}`,
		`{"tasks":{"function":"f"}}`,
		`{"tasks":[{"function":"f","payload":{"a":[1,{"b":2}]}}],"tasks":[]}`,
		`{"tasks":[{"function":"f"}]}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeBatch(bytes.NewReader(data))
		if err != nil {
			checkDecodeError(t, err)
		} else {
			if len(req.Tasks) < 1 || len(req.Tasks) > ward.MaxBatch {
				t.Fatalf("accepted %d tasks", len(req.Tasks))
			}
			for i, task := range req.Tasks {
				if !ward.ValidName(task.Function) {
					t.Fatalf("accepted tasks[%d].function %q", i, task.Function)
				}
			}
		}
		checkAgreesWithStdlib[ward.BatchSubmitRequest](t, data)
	})
}

func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{`{"A":"b"}`, `{}`, `{"":"x"}`, `{"A":1}`, `null`, `{"A":"b","A":"c"}`, `{"A":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := decodeConfig(bytes.NewReader(data))
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if cfg == nil {
			t.Fatal("accepted a config that is not an object")
		}
		for k := range cfg {
			if k == "" || len(k) > maxConfigKeyLen {
				t.Fatalf("accepted key %q", k)
			}
		}
	})
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	type inner struct {
		N int `json:"n"`
	}
	type target struct {
		Name  string            `json:"name"`
		Inner inner             `json:"inner"`
		List  []inner           `json:"list"`
		Map   map[string]string `json:"map"`
		Raw   json.RawMessage   `json:"raw"`
		Bytes []byte            `json:"bytes"`
		Flag  bool              `json:"flag"`
		Small int8              `json:"small"`
		Skip  string            `json:"-"`
	}
	for _, tc := range []struct {
		in    string
		code  ward.Code
		field string
	}{
		{`{"name":"x","inner":{"n":1},"list":[{"n":2}],"map":{"a":"b"},"raw":{"any":[1,"x",null]},"bytes":"AAE=","flag":true,"small":-128}`, "", ""},
		{`{"raw":[[[{"x":[]}]]],"name":null}`, "", ""},
		{`{"Name":"x"}`, ward.CodeUnknownField, "Name"},
		{`{"Skip":"x"}`, ward.CodeUnknownField, "Skip"},
		{`{"-":"x"}`, ward.CodeUnknownField, "-"},
		{`{"inner":{"m":1}}`, ward.CodeUnknownField, "inner.m"},
		{`{"list":[{"n":1},{"n":2,"o":3}]}`, ward.CodeUnknownField, "list[1].o"},
		{`{"list":[{"n":1},{"n":"2"}]}`, ward.CodeInvalidArgument, "list[1].n"},
		{`{"map":{"k":false}}`, ward.CodeInvalidArgument, "map.k"},
		{`{"small":128}`, ward.CodeInvalidArgument, "small"},
		{`{"small":1.0}`, ward.CodeInvalidArgument, "small"},
		{`{"flag":"true"}`, ward.CodeInvalidArgument, "flag"},
		{`{"bytes":"***"}`, ward.CodeInvalidArgument, "bytes"},
		{`{"bytes":[1,2]}`, ward.CodeInvalidArgument, "bytes"},
		{`{"inner":[]}`, ward.CodeInvalidArgument, "inner"},
		{`{"name":"a","name":"b"}`, ward.CodeInvalidJSON, "name"},
		{`{"name":"a",}`, ward.CodeInvalidJSON, ""},
		{`{"name":'a'}`, ward.CodeInvalidJSON, ""},
		{`{"name":"a"}}`, ward.CodeInvalidJSON, ""},
		{`{"name":"a"} 1`, ward.CodeInvalidJSON, ""},
		{`  `, ward.CodeInvalidJSON, ""},
		{`"x"`, ward.CodeInvalidArgument, ""},
		{`null`, "", ""},
	} {
		var v target
		err := decodeStrict([]byte(tc.in), &v)
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.in, err)
			}
			continue
		}
		var we *ward.Error
		if !errors.As(err, &we) || we.Code != tc.code || we.Field != tc.field {
			t.Errorf("%s: got %#v, want %s field %q", tc.in, err, tc.code, tc.field)
		}
	}
}

func TestDecodeBodyTooLarge(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	body := http.MaxBytesReader(w, ioNopCloser{strings.NewReader(`{"name":"` + strings.Repeat("x", 100) + `"}`)}, 50)
	var v ward.CreateProjectRequest
	err := decodeJSON(body, &v)
	if ward.CodeOf(err) != ward.CodeBodyTooLarge {
		t.Fatalf("got %v, want body_too_large", err)
	}
}

type ioNopCloser struct{ *strings.Reader }

func (ioNopCloser) Close() error { return nil }
