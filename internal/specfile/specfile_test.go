package specfile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wardhq/ward"
)

// fullSpec sets every field of a spec to a value other than its zero.
var fullSpec = ward.FunctionSpec{
	Runtime: ward.RuntimeWasm,
	Limits:  ward.Limits{MemoryMB: 128, TimeoutS: 60, MaxConcurrency: 4, MaxPayloadKB: 512},
	Retries: ward.Retries{MaxAttempts: 3, BackoffS: 9},
	Input: ward.Input{Fields: []string{"/order/total", "/customer/id"}, Tokenize: []string{"/customer/id"}, Strict: true,
		Schema: json.RawMessage(`{"properties":{"order":{"minProperties":1}},"required":["order"],"type":"object"}`)},
	RetentionDays: 30,
}

func TestParseSpec(t *testing.T) {
	t.Parallel()
	base := fullSpec
	tests := []struct {
		name string
		yaml bool
		in   string
		want func(s *ward.FunctionSpec)
	}{
		{"empty JSON object", false, `{}`, func(*ward.FunctionSpec) {}},
		{"empty YAML", true, "", func(*ward.FunctionSpec) {}},
		{"all-comment YAML", true, "# nothing yet\n", func(*ward.FunctionSpec) {}},
		{"one limit keeps the others", false, `{"limits":{"memory_mb":256}}`, func(s *ward.FunctionSpec) { s.Limits.MemoryMB = 256 }},
		{"YAML limit", true, "limits:\n  timeout_s: 5\n", func(s *ward.FunctionSpec) { s.Limits.TimeoutS = 5 }},
		{"YAML float without a fraction", true, "limits: {memory_mb: 1e3}", func(s *ward.FunctionSpec) { s.Limits.MemoryMB = 1000 }},
		{
			"input replaces the whole rules", false, `{"input":{"fields":["/a"]}}`,
			func(s *ward.FunctionSpec) { s.Input = ward.Input{Fields: []string{"/a"}} },
		},
		{
			"YAML input with stars and a quoted key", true,
			"input:\n  fields:\n    - /order/items/*/qty\n    - \"/a~1b\"\n  tokenize: [/order/items/*/qty]\n  strict: true\n",
			func(s *ward.FunctionSpec) {
				s.Input = ward.Input{Fields: []string{"/order/items/*/qty", "/a~1b"}, Tokenize: []string{"/order/items/*/qty"}, Strict: true}
			},
		},
		{"null clears a section", false, `{"input":null,"retries":null}`, func(s *ward.FunctionSpec) { s.Input, s.Retries = ward.Input{}, ward.Retries{} }},
		{"YAML empty value is null", true, "input:\nretention_days: 9\n", func(s *ward.FunctionSpec) { s.Input, s.RetentionDays = ward.Input{}, 9 }},
		{"empty list", false, `{"input":{"fields":[],"tokenize":["/x"]}}`, func(s *ward.FunctionSpec) {
			s.Input = ward.Input{Fields: []string{}, Tokenize: []string{"/x"}}
		}},
		{"runtime", true, "runtime: wasm\nretention_days: 1\n", func(s *ward.FunctionSpec) { s.RetentionDays = 1 }},
		{
			"YAML schema becomes JSON", true,
			"input:\n  fields: [/n]\n  schema:\n    type: object\n    properties: {n: {type: integer, maximum: 1.5e3}}\n",
			func(s *ward.FunctionSpec) {
				s.Input = ward.Input{Fields: []string{"/n"}, Schema: json.RawMessage(`{"properties":{"n":{"maximum":1500,"type":"integer"}},"type":"object"}`)}
			},
		},
		{
			"YAML 1.2: n, no, on and yes are strings", true,
			"input:\n  schema: {properties: {n: {enum: [no, on, yes, y, off]}, on: {const: true}}}\n",
			func(s *ward.FunctionSpec) {
				s.Input = ward.Input{Schema: json.RawMessage(`{"properties":{"n":{"enum":["no","on","yes","y","off"]},"on":{"const":true}}}`)}
			},
		},
		{
			"YAML anchors and numeric keys", true,
			"limits: &l {memory_mb: 0x40}\ninput:\n  schema: {properties: {1: {type: string}}, x-same: *l}\n",
			func(s *ward.FunctionSpec) {
				s.Limits.MemoryMB = 64
				s.Input = ward.Input{Schema: json.RawMessage(`{"properties":{"1":{"type":"string"}},"x-same":{"memory_mb":64}}`)}
			},
		},
		{"schema null", false, `{"input":{"schema":null}}`, func(s *ward.FunctionSpec) { s.Input = ward.Input{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			obj, err := parseSpec([]byte(tt.in), tt.yaml)
			if err != nil {
				t.Fatal(err)
			}
			want := cloneSpec(base)
			tt.want(&want)
			got := (&File{obj: obj}).Apply(cloneSpec(base))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("spec = %+v\nwant   %+v", got, want)
			}
		})
	}
}

// cloneSpec copies a spec deeply, so a test cannot change fullSpec.
func cloneSpec(s ward.FunctionSpec) ward.FunctionSpec {
	b, _ := json.Marshal(s)
	var out ward.FunctionSpec
	json.Unmarshal(b, &out)
	return out
}

func TestParseSpecErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml bool
		in   string
		want string
	}{
		{"unknown top-level field", false, `{"memory_mb":1}`, `unknown field "memory_mb" (known fields: runtime, limits, retries, input, retention_days)`},
		{"unknown nested field", true, "limits:\n  memory: 64\n", `unknown field "limits.memory" (known fields of limits: memory_mb, timeout_s, max_concurrency, max_payload_kb, submit_rate, max_result_kb, max_log_kb)`},
		{"names are exact", false, `{"Limits":{}}`, `unknown field "Limits"`},
		{"input typo", true, "input:\n  field: [/a]\n", `unknown field "input.field" (known fields of input: fields, tokenize, strict, schema)`},
		{"string for a number", false, `{"limits":{"memory_mb":"64"}}`, "limits.memory_mb must be a whole number"},
		{"fraction", false, `{"retention_days":1.5}`, "retention_days must be a whole number"},
		{"too large", false, `{"retention_days":1e300}`, "retention_days is out of range"},
		{"huge integer", false, `{"retention_days":99999999999999999999}`, "retention_days is out of range"},
		{"a list for a string", false, `{"runtime":["wasm"]}`, "runtime must be a string"},
		{"a string for a list", true, "input:\n  fields: /a\n", "input.fields must be a list"},
		{"a number in a list", false, `{"input":{"fields":["/a",7]}}`, "input.fields[1] must be a string"},
		{"null in a list", false, `{"input":{"tokenize":[null]}}`, "input.tokenize[0] must not be null"},
		{"bool as string", false, `{"input":{"strict":"yes"}}`, "input.strict must be true or false"},
		{"a section that is not an object", true, "limits: 64\n", "limits must be an object"},
		{"not an object", false, `[1]`, "must hold an object"},
		{"YAML list", true, "- a\n", "must hold an object"},
		{"scalar", true, "hello", "must hold an object"},
		{"JSON syntax", false, `{"limits":`, "not valid JSON"},
		{"JSON trailing data", false, `{} {}`, "data after the object"},
		{"JSON repeated key", false, `{"retention_days":1,"retention_days":2}`, `field "retention_days" is given twice`},
		{"JSON repeated nested key", false, `{"input":{"fields":["/a"],"fields":["/b"]}}`, `field "input.fields" is given twice`},
		{"YAML repeated key", true, "retention_days: 1\nretention_days: 2\n", "not valid YAML"},
		{"YAML 1.1 boolean", true, "input:\n  strict: yes\n", "input.strict must be true or false"},
		{"YAML infinity", true, "input:\n  schema: {maximum: .inf}\n", "input.schema.maximum must be a finite number"},
		{"YAML two documents", true, "retention_days: 1\n---\nretention_days: 2\n", "more than one document"},
		{"YAML complex key", true, "input:\n  schema: {[a, b]: 1}\n", "not valid YAML: invalid map key"},
		{"YAML syntax", true, "limits: {memory_mb: 1\n", "not valid YAML"},
		{"YAML tab indentation", true, "limits:\n\tmemory_mb: 1\n", "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseSpec([]byte(tt.in), tt.yaml)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseSpec(%q) = %v, want an error with %q", tt.in, err, tt.want)
			}
		})
	}
}

// TestSpecRoundTrip writes a spec with every field set as JSON and as YAML
// and reads it back: every field of ward.FunctionSpec can come from a file.
func TestSpecRoundTrip(t *testing.T) {
	t.Parallel()
	j, err := json.Marshal(fullSpec)
	if err != nil {
		t.Fatal(err)
	}
	var tree any
	if err := json.Unmarshal(j, &tree); err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]struct {
		b    []byte
		yaml bool
	}{"json": {j, false}, "yaml": {y, true}} {
		obj, err := parseSpec(in.b, in.yaml)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, in.b)
		}
		if got := (&File{obj: obj}).Apply(ward.FunctionSpec{}); !reflect.DeepEqual(got, fullSpec) {
			t.Errorf("%s: read back %+v, want %+v", name, got, fullSpec)
		}
	}
}

func TestCheckNoRepeats(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}]}`: "",
		`{"a":{},"b":[],"c":[[],{}],"d":"}"}`:       "",
		`{"a":[{"x":1,"x":2}]}`:                     `field "a[0].x" is given twice`,
		`{"a":[1,{"y":{"z":1,"z":1}}]}`:             `field "a[1].y.z" is given twice`,
		`{"a":{"b":1},"a":2}`:                       `field "a" is given twice`,
		`{"a":`:                                     "",
	} {
		err := checkNoRepeats([]byte(in))
		switch {
		case want == "" && err != nil:
			t.Errorf("checkNoRepeats(%s) = %v", in, err)
		case want != "" && (err == nil || err.Error() != want):
			t.Errorf("checkNoRepeats(%s) = %v, want %q", in, err, want)
		}
	}
}

func TestFindSpecFile(t *testing.T) {
	t.Parallel()
	write := func(t *testing.T, dir string, names ...string) {
		t.Helper()
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	jsonDir, yamlDir, bothDir, noneDir, badDir := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	write(t, jsonDir, "ward.json", "fn.wasm")
	write(t, yamlDir, "ward.yaml", "fn.wasm")
	write(t, bothDir, "ward.json", "ward.yaml")
	write(t, noneDir, "fn.wasm", "ward.yml")
	if err := os.Mkdir(filepath.Join(badDir, "ward.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, want, err string
	}{
		{jsonDir, filepath.Join(jsonDir, "ward.json"), ""},
		{filepath.Join(jsonDir, "fn.wasm"), filepath.Join(jsonDir, "ward.json"), ""},
		{filepath.Join(yamlDir, "fn.wasm"), filepath.Join(yamlDir, "ward.yaml"), ""},
		{filepath.Join(yamlDir, "missing.wasm"), filepath.Join(yamlDir, "ward.yaml"), ""},
		{noneDir, "", ""},
		{filepath.Join(noneDir, "fn.wasm"), "", ""},
		{bothDir, "", "both ward.json and ward.yaml are in"},
		{badDir, "", "is a directory"},
	}
	for _, tt := range tests {
		got, err := Find(tt.path)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || ward.CodeOf(err) != ward.CodeInvalidArgument {
				t.Errorf("Find(%s) = %q, %v; want an error with %q", tt.path, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Find(%s) = %q, %v; want %q", tt.path, got, err, tt.want)
		}
	}
}

func TestReadSpecFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"a.json":   `{"retention_days": 3}`,
		"a.yml":    "retention_days: 4\n",
		"a.YAML":   "retention_days: 5\n",
		"a.txt":    "retention_days: 6\n",
		"bad.yaml": "retention: 7\n",
		"big.json": `{"runtime":"` + strings.Repeat("x", maxSpecFileBytes) + `"}`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]int{"a.json": 3, "a.yml": 4, "a.YAML": 5} {
		f, err := Read(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := f.Apply(ward.FunctionSpec{}).RetentionDays; got != want {
			t.Errorf("%s: retention_days %d, want %d", name, got, want)
		}
	}
	for name, want := range map[string]string{
		"a.txt":        "ends in .json, .yaml or .yml",
		"bad.yaml":     `bad.yaml: unknown field "retention"`,
		"big.json":     "larger than 1024 KiB",
		"missing.json": "no such file",
	} {
		_, err := Read(filepath.Join(dir, name))
		if err == nil || !strings.Contains(err.Error(), want) || ward.CodeOf(err) != ward.CodeInvalidArgument {
			t.Errorf("%s: err = %v, want invalid_argument with %q", name, err, want)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(`{"limits":{"memory_mb":64},"input":{"fields":["/a"],"tokenize":["/a"],"strict":true}}`), false)
	f.Add([]byte("input:\n  fields: [/order/items/*/qty]\nretention_days: 7\n"), true)
	f.Add([]byte(`{"input":null,"retries":{"max_attempts":1e2}}`), false)
	f.Add([]byte("limits: &a {memory_mb: 1}\nretries: *a\n"), true)
	f.Add([]byte(`{"a":[{"x":1,"x":2}]}`), false)
	f.Add([]byte("- [1, {a: b}]"), true)
	f.Fuzz(func(t *testing.T, b []byte, yamlSyntax bool) {
		obj, err := parseSpec(b, yamlSyntax)
		if err != nil {
			return
		}
		spec := (&File{obj: obj}).Apply(ward.FunctionSpec{})
		// What was read writes back as a spec file that reads the same.
		j, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		obj2, err := parseSpec(j, false)
		if err != nil {
			t.Fatalf("re-reading %s: %v", j, err)
		}
		if again := (&File{obj: obj2}).Apply(ward.FunctionSpec{}); !reflect.DeepEqual(normalize(again), normalize(spec)) {
			t.Errorf("read %+v, re-read %+v", spec, again)
		}
	})
}

// normalize makes empty and nil lists equal (JSON omits both).
func normalize(s ward.FunctionSpec) ward.FunctionSpec {
	if len(s.Input.Fields) == 0 {
		s.Input.Fields = nil
	}
	if len(s.Input.Tokenize) == 0 {
		s.Input.Tokenize = nil
	}
	return s
}
