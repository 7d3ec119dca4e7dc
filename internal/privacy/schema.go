package privacy

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/wardhq/ward"
)

// CodeSchema is the code of a payload that does not satisfy the function's
// input.schema.
const CodeSchema ward.Code = "payload_schema"

// schemaURL is the name a function's schema is compiled under; with no
// loader configured, any reference outside the schema itself fails to
// compile, so a schema never reaches the network or the file system.
const schemaURL = "urn:ward:input-schema"

// maxSchemaErrors bounds the violations named in one error.
const maxSchemaErrors = 10

// compileSchema compiles input.schema.
func compileSchema(raw []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, ward.FieldError("input.schema", "is not valid JSON")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, ward.FieldError("input.schema", "%v", err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, ward.FieldError("input.schema", "is not a valid JSON Schema: %v", err)
	}
	return sch, nil
}

// validate checks a JSON payload against the schema. The error names each
// violation by instance pointer and schema keyword, never by value.
func validate(sch *jsonschema.Schema, payload []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return &ward.Error{Code: CodeNotJSON, Field: "payload", Message: "payload is not valid JSON, which the function's input rules require"}
	}
	err = sch.Validate(doc)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return &ward.Error{Code: CodeSchema, Field: "payload", Message: "payload does not satisfy input.schema"}
	}
	var found []string
	total := 0
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		total++
		if len(found) < maxSchemaErrors {
			found = append(found, fmt.Sprintf("%s: %s", instancePointer(e.InstanceLocation), keyword(e.ErrorKind)))
		}
	}
	walk(ve)
	msg := "payload does not satisfy input.schema: " + strings.Join(found, "; ")
	if total > len(found) {
		msg += fmt.Sprintf(" (and %d more)", total-len(found))
	}
	return &ward.Error{Code: CodeSchema, Field: "payload", Message: msg}
}

// instancePointer formats an instance location as a JSON Pointer ("" for
// the whole payload is shown as "/").
func instancePointer(loc []string) string {
	if len(loc) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, t := range loc {
		b.WriteByte('/')
		b.WriteString(quoteShortToken(t))
	}
	return b.String()
}

// quoteShortToken escapes a pointer token and cuts it at 64 bytes.
func quoteShortToken(t string) string {
	t = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
	if len(t) > 64 {
		t = t[:64] + "…"
	}
	return t
}

// keyword names the schema keyword that failed, e.g. "minimum".
func keyword(k jsonschema.ErrorKind) string {
	if k == nil {
		return "invalid"
	}
	path := k.KeywordPath()
	if len(path) == 0 {
		return "invalid"
	}
	return path[len(path)-1]
}
