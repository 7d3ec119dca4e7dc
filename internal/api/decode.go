package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wardhq/ward"
)

// decodeJSON reads r (usually an http.MaxBytesReader) to its end and
// decodes the one JSON value in it into v (a pointer) strictly: exact key
// names only (no case folding), no unknown fields, no duplicate keys, values
// of the field's JSON type, no trailing data. Every error is a *ward.Error:
// invalid_json, unknown_field or invalid_argument (each naming the field by
// its path, such as "tasks[2].priority", where one is at fault), or
// body_too_large when r hit its cap.
func decodeJSON(r io.Reader, v any) error {
	data, err := readBody(r, ward.CodeInvalidJSON)
	if err != nil {
		return err
	}
	return decodeStrict(data, v)
}

// readBody reads r (an http.MaxBytesReader) to its end. A body over the cap
// is body_too_large; one that cannot be read otherwise has code unreadable.
func readBody(r io.Reader, unreadable ward.Code) ([]byte, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, ward.Errorf(ward.CodeBodyTooLarge, "request body exceeds %d bytes", maxErr.Limit)
		}
		return nil, &ward.Error{Code: unreadable, Message: "request body could not be read"}
	}
	return data, nil
}

// decodeStrict decodes data into v (a pointer) as decodeJSON describes. A
// first pass walks the JSON tokens against v's type and reports the first
// fault with its path; the second, encoding/json itself, fills v.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	c := checker{dec: dec}
	if err := c.value(reflect.TypeOf(v).Elem(), ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return &ward.Error{Code: ward.CodeInvalidJSON, Message: "request body has data after its JSON value"}
	}
	full := json.NewDecoder(bytes.NewReader(data))
	full.DisallowUnknownFields()
	if err := full.Decode(v); err != nil {
		// The walk admits only what encoding/json accepts; this is a backstop.
		return &ward.Error{Code: ward.CodeInvalidArgument, Message: "request body does not match the expected shape"}
	}
	return nil
}

// checker walks a JSON value's tokens against a Go type.
type checker struct {
	dec *json.Decoder
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// value checks the next value against t.
func (c *checker) value(t reflect.Type, path string) error {
	if t == rawMessageType || t.Kind() == reflect.Interface {
		// Any value goes; reading it whole is much faster than token by token.
		var raw json.RawMessage
		return syntaxError(c.dec.Decode(&raw))
	}
	tok, err := c.dec.Token()
	if err != nil {
		return syntaxError(err)
	}
	return c.check(tok, t, path)
}

// check checks a value whose first token is tok against t.
func (c *checker) check(tok json.Token, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType || t.Kind() == reflect.Interface {
		return c.skip(tok)
	}
	switch tk := tok.(type) {
	case nil:
		return nil // null leaves the field as it is
	case json.Delim:
		switch {
		case tk == '{' && t.Kind() == reflect.Struct:
			return c.object(fieldsOf(t), nil, path)
		case tk == '{' && t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
			return c.object(nil, t.Elem(), path)
		case tk == '[' && t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
			return c.array(t.Elem(), path)
		}
	case string:
		switch {
		case t.Kind() == reflect.String:
			return nil
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
			if _, err := base64.StdEncoding.DecodeString(tk); err != nil {
				return fieldErr(ward.CodeInvalidArgument, path, "is not valid base64")
			}
			return nil
		}
	case json.Number:
		var err error
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			_, err = strconv.ParseInt(string(tk), 10, t.Bits())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			_, err = strconv.ParseUint(string(tk), 10, t.Bits())
		case reflect.Float32, reflect.Float64:
			_, err = strconv.ParseFloat(string(tk), t.Bits())
		default:
			return typeError(path, t)
		}
		if err != nil {
			return fieldErr(ward.CodeInvalidArgument, path, "must be a whole number in range")
		}
		return nil
	case bool:
		if t.Kind() == reflect.Bool {
			return nil
		}
	}
	return typeError(path, t)
}

// object checks the members of an object whose '{' was read: against a
// struct's fields, or, with fields nil, each against elem (a map).
func (c *checker) object(fields map[string]reflect.Type, elem reflect.Type, path string) error {
	seen := map[string]bool{}
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return syntaxError(err)
		}
		key, _ := tok.(string) // More and Token guarantee a string key here
		p := joinPath(path, key)
		if seen[key] {
			return fieldErr(ward.CodeInvalidJSON, p, "appears twice")
		}
		seen[key] = true
		t := elem
		if fields != nil {
			var ok bool
			if t, ok = fields[key]; !ok {
				return fieldErr(ward.CodeUnknownField, p, "is not a known field")
			}
		}
		if err := c.value(t, p); err != nil {
			return err
		}
	}
	_, err := c.dec.Token() // '}'
	return syntaxError(err)
}

// array checks the elements of an array whose '[' was read.
func (c *checker) array(elem reflect.Type, path string) error {
	for i := 0; c.dec.More(); i++ {
		if err := c.value(elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	_, err := c.dec.Token() // ']'
	return syntaxError(err)
}

// skip consumes the rest of a value whose first token is tok.
func (c *checker) skip(tok json.Token) error {
	d, ok := tok.(json.Delim)
	if !ok || d == '}' || d == ']' {
		return nil
	}
	for depth := 1; depth > 0; {
		tok, err := c.dec.Token()
		if err != nil {
			return syntaxError(err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// fieldsOf maps a struct's JSON member names to their types, with embedded
// structs flattened as encoding/json does.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" && !strings.Contains(tag, ",") {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range fieldsOf(ft) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldErr returns an error naming the field at path (the whole body when
// path is empty). Field names come from the request; they are cut short and
// quoted in the message.
func fieldErr(code ward.Code, path, what string) error {
	if len(path) > 128 {
		path = strings.ToValidUTF8(path[:128], "") + "…"
	}
	if path == "" {
		return &ward.Error{Code: code, Message: "request body " + what}
	}
	return &ward.Error{Code: code, Field: path, Message: fmt.Sprintf("%q %s", path, what)}
}

// typeError reports a value of the wrong JSON type.
func typeError(path string, t reflect.Type) error {
	return fieldErr(ward.CodeInvalidArgument, path, "must be a JSON "+jsonKind(t))
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "base64 string"
		}
		return "array"
	}
	return "object"
}

// syntaxError maps a tokenizer error (nil passes through).
func syntaxError(err error) error {
	var synErr *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		return &ward.Error{Code: ward.CodeInvalidJSON, Message: "request body is empty or ends in the middle of its JSON value"}
	case errors.As(err, &synErr):
		return ward.Errorf(ward.CodeInvalidJSON, "request body is not valid JSON (at byte %d)", synErr.Offset)
	}
	return &ward.Error{Code: ward.CodeInvalidJSON, Message: "request body is not valid JSON"}
}

// decodeSubmit decodes one task submission. It checks what needs no
// function: the function's name. The queue checks the rest against the
// function.
func decodeSubmit(r io.Reader) (ward.SubmitRequest, error) {
	var req ward.SubmitRequest
	if err := decodeJSON(r, &req); err != nil {
		return ward.SubmitRequest{}, err
	}
	if err := checkSubmit(&req, ""); err != nil {
		return ward.SubmitRequest{}, err
	}
	return req, nil
}

// decodeBatch decodes a batch submission of 1 to ward.MaxBatch tasks.
func decodeBatch(r io.Reader) (ward.BatchSubmitRequest, error) {
	var req ward.BatchSubmitRequest
	if err := decodeJSON(r, &req); err != nil {
		return ward.BatchSubmitRequest{}, err
	}
	if len(req.Tasks) == 0 || len(req.Tasks) > ward.MaxBatch {
		return ward.BatchSubmitRequest{}, ward.FieldError("tasks", "must hold 1 to %d tasks", ward.MaxBatch)
	}
	for i := range req.Tasks {
		if err := checkSubmit(&req.Tasks[i], fmt.Sprintf("tasks[%d].", i)); err != nil {
			return ward.BatchSubmitRequest{}, err
		}
	}
	return req, nil
}

// checkSubmit checks a submission's function name; prefix qualifies the
// field name in a batch.
func checkSubmit(req *ward.SubmitRequest, prefix string) error {
	if req.Function == "" {
		return ward.FieldError(prefix+"function", "is required")
	}
	if !ward.ValidName(req.Function) {
		return ward.FieldError(prefix+"function", "must be 1-63 lowercase letters, digits or '-', not starting with '-'")
	}
	return nil
}

// decodeFunctionSpec decodes a function spec, fills defaults and validates
// it.
func decodeFunctionSpec(r io.Reader) (ward.FunctionSpec, error) {
	var spec ward.FunctionSpec
	if err := decodeJSON(r, &spec); err != nil {
		return ward.FunctionSpec{}, err
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return ward.FunctionSpec{}, err
	}
	return spec, nil
}

// Bounds on config objects.
const (
	maxConfigKeys   = 1000
	maxConfigKeyLen = 256
)

// decodeConfig decodes a config object: a JSON object of strings with
// non-empty keys.
func decodeConfig(r io.Reader) (ward.Config, error) {
	var cfg ward.Config
	if err := decodeJSON(r, &cfg); err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, &ward.Error{Code: ward.CodeInvalidArgument, Message: "config must be a JSON object of strings"}
	}
	if len(cfg) > maxConfigKeys {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "config holds more than %d keys", maxConfigKeys)
	}
	for k := range cfg {
		if k == "" || len(k) > maxConfigKeyLen || !utf8.ValidString(k) {
			return nil, ward.Errorf(ward.CodeInvalidArgument, "config keys must be 1-%d bytes of UTF-8", maxConfigKeyLen)
		}
	}
	return cfg, nil
}

// validFunctionName checks a {fn} path value.
func validFunctionName(name string) error {
	if !ward.ValidName(name) {
		return ward.FieldError("name", "must be 1-63 lowercase letters, digits or '-', not starting with '-'")
	}
	return nil
}
