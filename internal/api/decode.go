package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/wardhq/ward"
)

// decodeJSON decodes exactly one JSON value from r into v, strictly: unknown
// fields, trailing data and malformed JSON are errors. Every error is a
// *ward.Error: invalid_json, unknown_field (naming the field),
// invalid_argument (a value of the wrong type, naming the field) or
// body_too_large (r is an http.MaxBytesReader that hit its cap).
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	// Exactly one value: only white space may follow.
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			if e := decodeError(err); ward.CodeOf(e) == ward.CodeBodyTooLarge {
				return e
			}
		}
		return &ward.Error{Code: ward.CodeInvalidJSON, Message: "request body has data after its JSON value"}
	}
	return nil
}

// decodeError turns an encoding/json error into a *ward.Error. Messages name
// fields and types, never the values sent.
func decodeError(err error) error {
	var (
		maxErr    *http.MaxBytesError
		synErr    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		base64Err base64.CorruptInputError
	)
	switch {
	case errors.As(err, &maxErr):
		return ward.Errorf(ward.CodeBodyTooLarge, "request body exceeds %d bytes", maxErr.Limit)
	case errors.Is(err, io.EOF):
		return &ward.Error{Code: ward.CodeInvalidJSON, Message: "request body is empty; want a JSON value"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &ward.Error{Code: ward.CodeInvalidJSON, Message: "request body ends in the middle of its JSON value"}
	case errors.As(err, &synErr):
		return ward.Errorf(ward.CodeInvalidJSON, "request body is not valid JSON (at byte %d)", synErr.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return ward.Errorf(ward.CodeInvalidArgument, "request body must be a JSON %s", jsonKind(typeErr.Type.String()))
		}
		return &ward.Error{Code: ward.CodeInvalidArgument, Field: typeErr.Field,
			Message: fmt.Sprintf("%s: must be a JSON %s", typeErr.Field, jsonKind(typeErr.Type.String()))}
	case errors.As(err, &base64Err):
		return ward.FieldError("payload_b64", "is not valid base64")
	}
	const unknown = "json: unknown field "
	if msg := err.Error(); strings.HasPrefix(msg, unknown) {
		name := strings.Trim(strings.TrimPrefix(msg, unknown), `"`)
		if !utf8.ValidString(name) || len(name) > 128 {
			name = "(unprintable)"
		}
		return &ward.Error{Code: ward.CodeUnknownField, Field: name, Message: fmt.Sprintf("unknown field %q", name)}
	}
	// Anything else is a read error or a JSON value the decoder rejects.
	return &ward.Error{Code: ward.CodeInvalidJSON, Message: "request body could not be read as JSON"}
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "number (in range)"
	case goType == "string", goType == "ward.Runtime", goType == "ward.Role", goType == "ward.Code":
		return "string"
	case goType == "bool":
		return "boolean"
	case strings.HasPrefix(goType, "[]uint8"):
		return "base64 string"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case strings.HasPrefix(goType, "map["):
		return "object"
	}
	return "object"
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
