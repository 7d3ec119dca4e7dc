package privacy

import (
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

const orderSchema = `{
	"type": "object",
	"required": ["order"],
	"properties": {
		"order": {
			"type": "object",
			"required": ["total"],
			"properties": {
				"total": {"type": "number", "minimum": 0},
				"email": {"type": "string", "maxLength": 5},
				"items": {"type": "array", "items": {"type": "object", "required": ["sku"]}}
			}
		}
	}
}`

func TestSchema(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Schema: []byte(orderSchema), Fields: []string{"/order/total"}})
	if p.Empty() {
		t.Fatal("a plan with a schema is empty")
	}
	r, err := p.Apply([]byte(`{"order":{"total":3,"email":"a@b","items":[{"sku":"x"}]},"extra":1}`), nil)
	if err != nil || string(r.Payload) != `{"order":{"total":3}}` {
		t.Fatalf("valid payload: %s, %v", r.Payload, err)
	}
	const secret = "SECRET-VALUE-in-payload"
	_, err = p.Apply([]byte(`{"order":{"total":-1,"email":"`+secret+`","items":[{"sku":"x"},{"name":"n"}]}}`), nil)
	we, ok := err.(*ward.Error)
	if !ok || we.Code != CodeSchema || we.Field != "payload" {
		t.Fatalf("invalid payload: %v", err)
	}
	for _, want := range []string{"/order/total: minimum", "/order/email: maxLength", "/order/items/1: required"} {
		if !strings.Contains(we.Message, want) {
			t.Errorf("message %q lacks %q", we.Message, want)
		}
	}
	if strings.Contains(we.Message, secret) || strings.Contains(we.Message, "-1") {
		t.Errorf("message %q shows a value", we.Message)
	}
	if _, err := p.Apply([]byte(`[]`), nil); ward.CodeOf(err) != CodeSchema || !strings.Contains(err.Error(), "/: type") {
		t.Errorf("wrong root type: %v", err)
	}
	// Only a schema: the payload passes through unchanged when valid.
	only := mustCompile(t, ward.Input{Schema: []byte(`{"type":"object"}`)})
	if r, err := only.Apply([]byte(`{ "a" : 1 }`), nil); err != nil || string(r.Payload) != `{ "a" : 1 }` {
		t.Errorf("schema only: %s %v", r.Payload, err)
	}
}

func TestSchemaCompileErrors(t *testing.T) {
	t.Parallel()
	for name, schema := range map[string]string{
		"not JSON":        `{"type":`,
		"bad keyword use": `{"type": 5}`,
		"remote ref":      `{"$ref": "https://example.com/schema.json"}`,
		"file ref":        `{"$ref": "file:///etc/passwd"}`,
		"bad pattern":     `{"pattern": "("}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(ward.Input{Schema: []byte(schema)})
			we, ok := err.(*ward.Error)
			if !ok || we.Code != ward.CodeInvalidArgument || we.Field != "input.schema" {
				t.Fatalf("Compile = %v, want invalid_argument on input.schema", err)
			}
		})
	}
	if _, err := Compile(ward.Input{Schema: []byte(`null`)}); err != nil {
		t.Errorf("null schema: %v", err)
	}
}

func FuzzSchemaValidate(f *testing.F) {
	p, err := Compile(ward.Input{Schema: []byte(orderSchema)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"order":{"total":1}}`))
	f.Add([]byte(`{"order":{"total":"x","items":[1,{}]}}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := p.Apply(payload, nil)
		if err != nil {
			if c := ward.CodeOf(err); c != CodeSchema && c != CodeNotJSON {
				t.Fatalf("unexpected code %s: %v", c, err)
			}
			return
		}
		if string(r.Payload) != string(payload) {
			t.Fatalf("a schema-only plan changed the payload")
		}
	})
}
