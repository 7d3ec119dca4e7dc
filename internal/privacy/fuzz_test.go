package privacy

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"github.com/wardhq/ward"
)

var fuzzFields = []string{"/a", "/b/*/c", "/b/1", "/d/x/y", "/e/0", "/e/2/k", "/f~1g", "/h/*"}

var fuzzSeeds = []string{
	`{"a":1,"b":[{"c":2,"z":3},{"q":1},5],"d":{"x":{"y":"s","w":1},"v":2},"e":[1,2,{"k":true,"l":false}],"f/g":null,"zz":{}}`,
	`{"a":{"deep":[1,{"x":"\u0041"}]},"b":{"*":{"c":1}},"d":[],"e":{"0":"key"},"h":[[],{},null,"\ud83d\ude00"]}`,
	`[{"a":1},2]`, `"scalar"`, `12`, `null`, `{}`, `[]`, `{"b":[null,null,{"c":{"x":1}}]}`,
	`{"\u0061":1,"a":2,"a":3}`, ` { "a" : [ 1 , 2 ] } `, `{"d":{"x":{"y":{"o":1}}}}`, `{"d":{"x":{"y":[1]}}}`, `not json`, `{"a":`,
}

func FuzzApply(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	plan := mustCompile(f, ward.Input{Fields: fuzzFields, Tokenize: []string{"/b/*/c", "/d/x/y", "/e/0"}})
	strict := mustCompile(f, ward.Input{Fields: fuzzFields, Tokenize: []string{"/b/*/c", "/d/x/y", "/e/0"}, Strict: true})
	fieldsOnly := mustCompile(f, ward.Input{Fields: fuzzFields})
	strictOnly := mustCompile(f, ward.Input{Fields: fuzzFields, Strict: true})
	var ptrs [][]string
	for _, s := range fuzzFields {
		p, _ := ParsePointer(s)
		ptrs = append(ptrs, p.tokens)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := plan.Apply(payload, hmacToken)
		if err != nil {
			switch code := ward.CodeOf(err); {
			case code == CodeNotJSON && !json.Valid(payload):
			case code == CodeNotScalar && json.Valid(payload):
			default:
				t.Fatalf("Apply(%q): unexpected error %v", payload, err)
			}
			return
		}
		if !json.Valid(r.Payload) {
			t.Fatalf("Apply(%q) = %q, not valid JSON", payload, r.Payload)
		}
		if where := outside(decode(t, r.Payload), ptrs, ""); where != "" {
			t.Fatalf("Apply(%q) = %s keeps %s, outside the fields", payload, r.Payload, where)
		}
		again, err := fieldsOnly.Apply(r.Payload, nil)
		if err != nil || !bytes.Equal(again.Payload, r.Payload) {
			t.Fatalf("re-applying to %s gives %s, %v", r.Payload, again.Payload, err)
		}
		if len(r.Fields) > MaxReported || len(r.Tokenized) > MaxReported {
			t.Fatalf("%d fields, %d tokenized reported", len(r.Fields), len(r.Tokenized))
		}
		// Strict passes exactly when projection loses nothing.
		_, strictErr := strictOnly.Apply(payload, nil)
		if strictErr != nil && ward.CodeOf(strictErr) != CodeNotAllowed {
			t.Fatalf("strict Apply(%q): %v", payload, strictErr)
		}
		projected, err := fieldsOnly.Apply(payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		if same := reflect.DeepEqual(decode(t, payload), decode(t, projected.Payload)); same != (strictErr == nil) {
			t.Fatalf("Apply(%q) = %s; strict error %v", payload, projected.Payload, strictErr)
		}
		rs, err := strict.Apply(payload, hmacToken)
		switch {
		case err == nil && !bytes.Equal(rs.Payload, r.Payload):
			t.Fatalf("strict Apply(%q) = %s, not %s", payload, rs.Payload, r.Payload)
		case err != nil && ward.CodeOf(err) != CodeNotAllowed:
			t.Fatalf("strict Apply(%q): %v", payload, err)
		}
	})
}

func decode(t *testing.T, b []byte) any {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// outside returns the pointer of a value in v that no pointer in ptrs
// allows, or "". Nulls in arrays are placeholders and always allowed.
func outside(v any, ptrs [][]string, at string) string {
	for _, p := range ptrs {
		if len(p) == 0 {
			return ""
		}
	}
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			var next [][]string
			for _, p := range ptrs {
				if p[0] == k {
					next = append(next, p[1:])
				}
			}
			where := at + "/" + escapeToken(k)
			if len(next) == 0 {
				return where
			}
			if w := outside(child, next, where); w != "" {
				return w
			}
		}
	case []any:
		for i, child := range v {
			var next [][]string
			for _, p := range ptrs {
				if p[0] == "*" || p[0] == strconv.Itoa(i) {
					next = append(next, p[1:])
				}
			}
			where := at + "/" + strconv.Itoa(i)
			if child == nil {
				continue
			}
			if len(next) == 0 {
				return where
			}
			if w := outside(child, next, where); w != "" {
				return w
			}
		}
	case nil:
		if at != "" {
			return at
		}
	default:
		return at + " (a scalar)"
	}
	return ""
}

func FuzzDetokenize(f *testing.F) {
	ta, tb, tc := testToken("a"), testToken("b"), testToken("c")
	for _, s := range []string{
		`{"x":"` + ta + `"}`, `{"x":"pre ` + tb + ` post","` + tc + `":[1,"` + tc + `"]}`,
		`["\u0074ok_` + ta[4:] + `","\n` + ta + `\u2028"]`, "plain " + ta + " text " + tc, ta + tb, `"` + ta, ``, `"\ud800` + tb + `"`,
	} {
		f.Add([]byte(s), `"c\"<>&\u00e9"`)
		f.Add([]byte(s), `-1.5e3`)
	}
	f.Fuzz(func(t *testing.T, b []byte, orig string) {
		originals := map[string][]byte{ta: []byte(`"a\"b\\c"`), tb: []byte(`false`), tc: []byte(orig)}
		out, err := Detokenize(b, originals)
		if err != nil {
			if ward.CodeOf(err) != ward.CodeInternal {
				t.Fatalf("Detokenize: %v", err)
			}
			return
		}
		if json.Valid(b) && !json.Valid(out) {
			t.Fatalf("Detokenize(%q) = %q, not valid JSON", b, out)
		}
		if !bytes.Contains(b, []byte(TokenPrefix)) && !bytes.Contains(b, []byte(`\u`)) && !bytes.Equal(out, b) {
			t.Fatalf("Detokenize(%q) changed a payload without tokens to %q", b, out)
		}
	})
}

func FuzzStringCodec(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkStringCodec(t, raw)
	})
}
