// Package specfile reads a function's spec file, ward.json or ward.yaml,
// kept next to its code: exact field names, value types and no repeated
// keys are checked, and the file's settings are laid over a spec.
package specfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wardhq/ward"
)

// The names a spec file has next to its code.
const (
	JSONName = "ward.json"
	YAMLName = "ward.yaml"
)

// maxSpecFileBytes bounds a spec file; real ones are a few hundred bytes.
const maxSpecFileBytes = 1 << 20

// File is a decoded spec file: the settings it gives, to lay over a
// function's current spec.
type File struct {
	path string
	obj  map[string]any // the file's top-level object, checked against ward.FunctionSpec
}

// Find returns the spec file that goes with the code at path: a
// ward.json or ward.yaml in path when it is a directory, else beside it.
// It returns "" when there is none, and an error when there are both.
func Find(path string) (string, error) {
	dir := path
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		dir = filepath.Dir(path)
	}
	var found []string
	for _, name := range []string{JSONName, YAMLName} {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return "", ward.Errorf(ward.CodeInvalidArgument, "spec file: %v", err)
		case st.IsDir():
			return "", ward.Errorf(ward.CodeInvalidArgument, "spec file %s is a directory", p)
		}
		found = append(found, p)
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", ward.Errorf(ward.CodeInvalidArgument, "both %s and %s are in %s: keep one of them", JSONName, YAMLName, dir)
}

// Read reads and checks a spec file: JSON for a name ending in
// .json, YAML for .yaml or .yml.
func Read(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "spec file: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSpecFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxSpecFileBytes {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "%s is larger than %d KiB", path, maxSpecFileBytes>>10)
	}
	var yamlSyntax bool
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
	case ".yaml", ".yml":
		yamlSyntax = true
	default:
		return nil, ward.Errorf(ward.CodeInvalidArgument, "%s: a spec file's name ends in .json, .yaml or .yml", path)
	}
	obj, err := parseSpec(b, yamlSyntax)
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "%s: %s", path, err)
	}
	return &File{path: path, obj: obj}, nil
}

// parseSpec decodes a spec file's bytes (JSON, or YAML when yamlSyntax) and
// checks them against ward.FunctionSpec: exact field names, value types, no
// repeated keys. The error names the field at fault.
func parseSpec(b []byte, yamlSyntax bool) (map[string]any, error) {
	if yamlSyntax {
		j, err := yamlToJSON(b)
		if err != nil {
			return nil, err
		}
		if j == nil {
			return map[string]any{}, nil // an empty (or all-comment) file gives no settings
		}
		b = j
	} else if err := checkNoRepeats(b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not valid JSON: data after the object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("must hold an object with the function spec's fields")
	}
	if err := checkValue(reflect.TypeFor[ward.FunctionSpec](), obj, ""); err != nil {
		return nil, err
	}
	return obj, nil
}

// yamlToJSON converts a YAML document to JSON; nil means an empty
// document. It reads YAML 1.2: only true and false are booleans, so a key
// or value such as n, no or on stays a string (YAML 1.1 would make it a
// boolean). A key given twice, a document after the first, and a number
// JSON cannot hold (.inf, .nan) are errors.
func yamlToJSON(b []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var more any
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("not valid YAML: more than one document")
	}
	if v == nil {
		return nil, nil
	}
	jv, err := jsonable(v, "")
	if err != nil {
		return nil, err
	}
	j, err := json.Marshal(jv)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	return j, nil
}

// jsonable turns a decoded YAML value into one encoding/json writes as the
// same JSON: map keys become strings; a number JSON cannot hold is an error
// naming where it is.
func jsonable(v any, path string) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := jsonable(e, joinPath(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			var key string
			switch k := k.(type) {
			case string:
				key = k
			case nil:
				key = "null"
			case int, int64, uint64, float64, bool:
				key = fmt.Sprint(k)
			default:
				return nil, fmt.Errorf("%s has a key that is not a string", orSpec(path))
			}
			c, err := jsonable(e, joinPath(path, key))
			if err != nil {
				return nil, err
			}
			out[key] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			c, err := jsonable(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("%s must be a finite number", orSpec(path))
		}
		return v, nil
	case nil, string, bool, int, int64, uint64:
		return v, nil
	}
	return nil, fmt.Errorf("%s holds a %T, which JSON cannot", orSpec(path), v)
}

// orSpec names a value by its path, or as the spec at the top.
func orSpec(path string) string {
	if path == "" {
		return "the spec"
	}
	return path
}

// checkNoRepeats refuses a JSON object with a key given twice, where
// encoding/json would silently keep the last. Syntax errors are left to the
// decoder proper.
func checkNoRepeats(b []byte) error {
	type frame struct {
		path      string
		keys      map[string]bool // nil for an array
		expectKey bool
		key       string // an object's current key
		n         int    // an array's elements so far
	}
	var stack []*frame
	// childPath is the path of a value starting in the current container.
	childPath := func() string {
		if len(stack) == 0 {
			return ""
		}
		top := stack[len(stack)-1]
		if top.keys != nil {
			return joinPath(top.path, top.key)
		}
		return fmt.Sprintf("%s[%d]", top.path, top.n)
	}
	// valueDone records that a value ended in the current container.
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		top := stack[len(stack)-1]
		if top.keys != nil {
			top.expectKey = true
		} else {
			top.n++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		if n := len(stack); n > 0 && stack[n-1].expectKey {
			top := stack[n-1]
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			k, _ := tok.(string)
			if top.keys[k] {
				return fmt.Errorf("field %q is given twice", joinPath(top.path, k))
			}
			top.keys[k], top.key, top.expectKey = true, k, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{path: childPath(), keys: map[string]bool{}, expectKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{path: childPath()})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// jsonFields lists a struct type's JSON field names, in declaration order.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if name := jsonName(f); name != "" {
			out = append(out, name)
		}
	}
	return out
}

// jsonName is the JSON name of a struct field, "" when it has none.
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}

// fieldByJSON returns the field of struct type t named name in JSON, exactly
// (encoding/json would also take other cases; a spec file may not).
func fieldByJSON(t reflect.Type, name string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// joinPath appends a field name to a dotted path.
func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// checkValue checks a decoded JSON value v against type t; null is allowed
// anywhere and stands for the zero value.
func checkValue(t reflect.Type, v any, path string) error {
	if v == nil {
		return nil
	}
	what := orSpec(path)
	if t == rawJSON {
		return nil // any JSON value (a schema); the server checks what it says
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s must be an object", what)
		}
		for k, fv := range obj {
			f, ok := fieldByJSON(t, k)
			if !ok {
				return fmt.Errorf("unknown field %q (known %s: %s)", joinPath(path, k), fieldsOf(path), strings.Join(jsonFields(t), ", "))
			}
			if err := checkValue(f.Type, fv, joinPath(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s must be a list", what)
		}
		for i, e := range arr {
			if e == nil {
				return fmt.Errorf("%s[%d] must not be null", what, i)
			}
			if err := checkValue(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s must be a string", what)
		}
		return nil
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s must be true or false", what)
		}
		return nil
	case reflect.Int:
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%s must be a whole number", what)
		}
		if _, err := intValue(n); err != nil {
			return fmt.Errorf("%s %s", what, err)
		}
		return nil
	}
	return fmt.Errorf("%s cannot be set from a spec file", what)
}

// fieldsOf names the object whose fields an unknown-field error lists.
func fieldsOf(path string) string {
	if path == "" {
		return "fields"
	}
	return "fields of " + path
}

// intValue converts a JSON number to an int: whole, within int's range.
// YAML writes 1e3 as a float; a float with no fraction is fine.
func intValue(n json.Number) (int, error) {
	if i, err := n.Int64(); err == nil {
		if i < math.MinInt || i > math.MaxInt {
			return 0, errors.New("is out of range")
		}
		return int(i), nil
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.IsInf(f, 0) {
		return 0, errors.New("must be a whole number")
	}
	if f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, errors.New("is out of range")
	}
	return int(f), nil
}

// Apply lays the file's settings over spec: every field the file gives
// replaces spec's, except that an "input" section replaces the whole of
// spec's input rules (the file says exactly which fields the function sees
// and which are tokenized); fields it does not give keep their values.
// null sets a field to its zero value, i.e. the server's default.
func (s *File) Apply(spec ward.FunctionSpec) ward.FunctionSpec {
	if s == nil {
		return spec
	}
	if _, ok := s.obj["input"]; ok {
		spec.Input = ward.Input{}
	}
	setValue(reflect.ValueOf(&spec).Elem(), s.obj)
	return spec
}

// rawJSON is the type of spec fields that hold JSON as it is.
var rawJSON = reflect.TypeFor[json.RawMessage]()

// setValue stores a checked JSON value into dst (see checkValue).
func setValue(dst reflect.Value, v any) {
	if v == nil {
		dst.SetZero()
		return
	}
	if dst.Type() == rawJSON {
		b, _ := json.Marshal(v) // a decoded JSON value always encodes
		dst.Set(reflect.ValueOf(json.RawMessage(b)))
		return
	}
	switch dst.Kind() {
	case reflect.Struct:
		t := dst.Type()
		for k, fv := range v.(map[string]any) {
			f, _ := fieldByJSON(t, k)
			setValue(dst.FieldByIndex(f.Index), fv)
		}
	case reflect.Slice:
		arr := v.([]any)
		s := reflect.MakeSlice(dst.Type(), len(arr), len(arr))
		for i, e := range arr {
			setValue(s.Index(i), e)
		}
		dst.Set(s)
	case reflect.String:
		dst.SetString(v.(string))
	case reflect.Bool:
		dst.SetBool(v.(bool))
	case reflect.Int:
		n, _ := intValue(v.(json.Number))
		dst.SetInt(int64(n))
	}
}

// Path returns the file's path.
func (s *File) Path() string { return s.path }
