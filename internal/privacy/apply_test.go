package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wardhq/ward"
)

var testKey = []byte("test tokenization key")

// hmacToken is the tokenizer of the tests: HMAC-SHA256 over the pattern, a
// NUL and the canonical value.
func hmacToken(pattern string, value []byte) (string, error) {
	m := hmac.New(sha256.New, testKey)
	m.Write([]byte(pattern))
	m.Write([]byte{0})
	m.Write(value)
	return FormatToken(m.Sum(nil)), nil
}

// recorder is a tokenizer that also remembers what it was given.
type recorder struct {
	mu    sync.Mutex
	calls []string // pattern + " " + value
	orig  map[string][]byte
}

func (r *recorder) tokenize(pattern string, value []byte) (string, error) {
	tok, _ := hmacToken(pattern, value)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, pattern+" "+string(value))
	if r.orig == nil {
		r.orig = map[string][]byte{}
	}
	r.orig[tok] = slices.Clone(value)
	return tok, nil
}

func mustCompile(t testing.TB, in ward.Input) *Plan {
	t.Helper()
	p, err := Compile(in)
	if err != nil {
		t.Fatalf("Compile(%+v): %v", in, err)
	}
	return p
}

func tok(pattern, value string) string {
	s, _ := hmacToken(pattern, []byte(value))
	return s
}

func TestProjection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fields  []string
		payload string
		want    string
	}{
		{"nested objects", []string{"/order/id", "/customer/name"},
			`{"order":{"id":7,"secret":1},"customer":{"name":"A","email":"a@b"},"x":1}`,
			`{"order":{"id":7},"customer":{"name":"A"}}`},
		{"star over array", []string{"/items/*/sku"},
			`{"items":[{"sku":"a","p":1},{"p":2},3,{"sku":"c"},[1]],"n":1}`,
			`{"items":[{"sku":"a"},{},null,{"sku":"c"},null]}`},
		{"star keeps trailing positions", []string{"/a/*/x"}, `{"a":[{"x":1},2,3]}`, `{"a":[{"x":1},null,null]}`},
		{"indexes pad with null", []string{"/a/1", "/a/3"}, `{"a":[0,1,2,3,4]}`, `{"a":[null,1,null,3]}`},
		{"index order is the document's", []string{"/a/3", "/a/0"}, `{"a":["x","y","z","w"]}`, `{"a":["x",null,null,"w"]}`},
		{"index past the end", []string{"/a/5"}, `{"a":[1]}`, `{"a":[]}`},
		{"dropped index element", []string{"/a/0/x", "/a/2"}, `{"a":[5,6,7]}`, `{"a":[null,null,7]}`},
		{"through a scalar", []string{"/a/b"}, `{"a":"str","c":1}`, `{}`},
		{"through null", []string{"/a/b"}, `{"a":null}`, `{}`},
		{"array where an object is expected", []string{"/a/b"}, `{"a":[{"b":1}]}`, `{}`},
		{"index token on an object is a key", []string{"/a/0"}, `{"a":{"0":1,"1":2}}`, `{"a":{"0":1}}`},
		{"star on an object is a key", []string{"/m/*"}, `{"m":{"*":1,"x":2}}`, `{"m":{"*":1}}`},
		{"leading zero is no index", []string{"/a/01"}, `{"a":[1,2],"b":{"01":3}}`, `{}`},
		{"missing", []string{"/nope", "/a/nope"}, `{"a":{"b":1},"c":2}`, `{"a":{}}`},
		{"member order kept", []string{"/b", "/a"}, `{"a":1,"c":2,"b":3}`, `{"a":1,"b":3}`},
		{"raw bytes kept", []string{"/a", "/n"},
			"{ \"a\" : { \"x\" : [1, 2.50e1 ,\"\\u00e9\\n\"] ,\n\t\"y\":-0.0E+00 } , \"b\":1 , \"n\" : 1.000 }",
			"{\"a\":{ \"x\" : [1, 2.50e1 ,\"\\u00e9\\n\"] ,\n\t\"y\":-0.0E+00 },\"n\":1.000}"},
		{"escaped key matches", []string{"/email"}, `{"\u0065mail":"x","name":"y"}`, `{"\u0065mail":"x"}`},
		{"escaped key with surrogates", []string{"/😀"}, `{"\ud83d\ude00":1,"x":2}`, `{"\ud83d\ude00":1}`},
		{"unicode keys", []string{"/café"}, `{"café":1,"caf\u00e9":2,"cafe":3}`, `{"café":1,"caf\u00e9":2}`},
		{"pointer escapes", []string{"/a~1b", "/c~0d"}, `{"a/b":1,"c~d":2,"e":3}`, `{"a/b":1,"c~d":2}`},
		{"overlap: shorter wins", []string{"/a", "/a/b"}, `{"a":{"b":1,"c":2}}`, `{"a":{"b":1,"c":2}}`},
		{"star and index together", []string{"/a/*/x", "/a/1"},
			`{"a":[{"x":1,"y":2},{"x":3,"y":4}]}`, `{"a":[{"x":1},{"x":3,"y":4}]}`},
		{"nested stars", []string{"/m/*/0"}, `{"m":[[1,2],[],5,[[3]]]}`, `{"m":[[1],[],null,[[3]]]}`},
		{"root array", []string{"/0/a"}, `[{"a":1,"b":2},5]`, `[{"a":1}]`},
		{"root scalar", []string{"/a"}, `"s"`, `null`},
		{"root with a key pointer on an array", []string{"/a"}, `[1]`, `null`},
		{"duplicate keys", []string{"/a"}, `{"a":1,"b":0,"a":2}`, `{"a":1,"a":2}`},
		{"surrounding whitespace", []string{"/a"}, " \n{\"a\":1} \t", `{"a":1}`},
		{"empty key", []string{"/"}, `{"":1,"a":2}`, `{"":1}`},
		{"empty containers", []string{"/a", "/b/x"}, `{"a":{},"b":{"x":[]},"c":[]}`, `{"a":{},"b":{"x":[]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustCompile(t, ward.Input{Fields: tt.fields})
			r, err := p.Apply([]byte(tt.payload), nil)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if string(r.Payload) != tt.want {
				t.Fatalf("Apply(%s)\n got %s\nwant %s", tt.payload, r.Payload, tt.want)
			}
			if !json.Valid(r.Payload) {
				t.Fatalf("output %s is not valid JSON", r.Payload)
			}
		})
	}
}

func TestReportedFields(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{
		Fields:   []string{"/order/id", "/order/items/*/sku", "/tags", "/a~1b", "/n"},
		Tokenize: []string{"/order/items/*/sku"},
	})
	r, err := p.Apply([]byte(`{"order":{"id":1,"items":[{"sku":"a"},{"x":1},{"sku":null}]},"tags":[],"a/b":{"c":[1,{}]},"n":null}`), hmacToken)
	if err != nil {
		t.Fatal(err)
	}
	wantFields := []string{"/order/id", "/order/items/0/sku", "/order/items/1", "/order/items/2/sku", "/tags", "/a~1b/c/0", "/a~1b/c/1", "/n"}
	if !slices.Equal(r.Fields, wantFields) {
		t.Errorf("Fields = %q, want %q", r.Fields, wantFields)
	}
	if want := []string{"/order/items/0/sku"}; !slices.Equal(r.Tokenized, want) {
		t.Errorf("Tokenized = %q, want %q", r.Tokenized, want)
	}
	if r.Truncated {
		t.Error("Truncated")
	}
}

func TestReportedTruncated(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"a":[`)
	for i := range MaxReported + 50 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"v":%d,"s":"x%d"}`, i, i)
	}
	b.WriteString(`]}`)
	payload := []byte(b.String())

	p := mustCompile(t, ward.Input{Fields: []string{"/a"}})
	r, err := p.Apply(payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Fields) != MaxReported || !r.Truncated || r.TokenizedTruncated || r.Fields[0] != "/a/0/v" || r.Fields[MaxReported-1] != "/a/127/s" {
		t.Fatalf("Fields: %d, truncated %v, first %q, last %q", len(r.Fields), r.Truncated, r.Fields[0], r.Fields[len(r.Fields)-1])
	}
	if string(r.Payload) != string(payload) {
		t.Fatal("payload changed")
	}

	p = mustCompile(t, ward.Input{Tokenize: []string{"/a/*/s"}})
	r, err = p.Apply(payload, hmacToken)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Tokenized) != MaxReported || len(r.Fields) != MaxReported || !r.Truncated || !r.TokenizedTruncated || r.Tokenized[MaxReported-1] != "/a/255/s" {
		t.Fatalf("Tokenized: %d, Fields: %d, truncated %v, tokenized truncated %v", len(r.Tokenized), len(r.Fields), r.Truncated, r.TokenizedTruncated)
	}
	if n := strings.Count(string(r.Payload), TokenPrefix); n != MaxReported+50 {
		t.Fatalf("%d tokens in the payload, want every value tokenized", n)
	}

	p = mustCompile(t, ward.Input{Fields: []string{"/a/0", "/a/1"}})
	if r, _ = p.Apply(payload, nil); r.Truncated || len(r.Fields) != 4 {
		t.Fatalf("small result: %q, truncated %v", r.Fields, r.Truncated)
	}
}

func TestStrict(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Fields: []string{"/order/id", "/items/*/sku", "/addr/city"}, Strict: true})

	const secret = "4111-1111-SECRET"
	payload := `{"order":{"id":1,"card":"` + secret + `"},"items":[{"sku":"a","price":"SECRETPRICE"},null,"SECRETELEM"],` +
		`"email":"secret@example.com","addr":"SECRETADDR","a/b":{"k":"SECRETNESTED"}}`
	_, err := p.Apply([]byte(payload), nil)
	var we *ward.Error
	if !errors.As(err, &we) || we.Code != CodeNotAllowed || we.Field != "payload" {
		t.Fatalf("Apply = %v, want input_not_allowed on payload", err)
	}
	for _, ptr := range []string{`"/order/card"`, `"/items/0/price"`, `"/items/2"`, `"/email"`, `"/addr"`, `"/a~1b"`, "6 values"} {
		if !strings.Contains(we.Message, ptr) {
			t.Errorf("message %q does not name %s", we.Message, ptr)
		}
	}
	if strings.Contains(strings.ToLower(we.Message), "secret") || strings.Contains(we.Message, "/items/1") {
		t.Errorf("message %q leaks a value or names a null element", we.Message)
	}

	// More than 10 dropped: the first 10 and a count.
	var b strings.Builder
	b.WriteString(`{"order":{"id":1}`)
	for i := range 14 {
		fmt.Fprintf(&b, `,"k%02d":"SECRET%d"`, i, i)
	}
	b.WriteString("}")
	_, err = p.Apply([]byte(b.String()), nil)
	if !errors.As(err, &we) || we.Code != CodeNotAllowed {
		t.Fatalf("Apply = %v", err)
	}
	if !strings.Contains(we.Message, `"/k09"`) || strings.Contains(we.Message, `"/k10"`) || !strings.Contains(we.Message, "and 4 more") || strings.Contains(we.Message, "SECRET") {
		t.Errorf("message %q", we.Message)
	}

	// Nothing dropped: passes.
	ok := `{"order":{"id":1},"items":[{"sku":"a"},null,{}],"addr":{"city":"x"}}`
	r, err := p.Apply([]byte(ok), nil)
	if err != nil || string(r.Payload) != ok {
		t.Fatalf("Apply(%s) = %s, %v", ok, r.Payload, err)
	}

	// Null elements: placeholders where a kept element follows, dropped
	// at the end.
	pi := mustCompile(t, ward.Input{Fields: []string{"/e/1", "/e/3"}, Strict: true})
	if r, err := pi.Apply([]byte(`{"e":[null,1]}`), nil); err != nil || string(r.Payload) != `{"e":[null,1]}` {
		t.Fatalf("leading null: %s, %v", r.Payload, err)
	}
	_, err = pi.Apply([]byte(`{"e":[null,1,null,null,2,null,null]}`), nil)
	if !errors.As(err, &we) || !strings.Contains(we.Message, `3 values outside input.fields: "/e/4", "/e/5", "/e/6"`) {
		t.Fatalf("trailing nulls: %v", err)
	}

	// A dropped root.
	if _, err := p.Apply([]byte(`"SECRET"`), nil); ward.CodeOf(err) != CodeNotAllowed || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("root scalar: %v", err)
	}
}

func TestTokenize(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{
		Fields:   []string{"/customer", "/items/*/sku", "/items/*/qty", "/flags"},
		Tokenize: []string{"/customer/email", "/customer/id", "/customer/vip", "/customer/note", "/items/*/sku", "/flags/0"},
	})
	var rec recorder
	payload := `{"customer":{"id":12.50,"email":"a\u0040b","vip":true,"note":null,"name":"keep me"},` +
		`"items":[{"sku":"a@b","qty":1},{"sku":"a@b","qty":2},{"sku":"<x&y>"}],"flags":[false,true]}`
	r, err := p.Apply([]byte(payload), rec.tokenize)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"customer":{"id":"` + tok("/customer/id", "12.50") + `","email":"` + tok("/customer/email", `"a@b"`) +
		`","vip":"` + tok("/customer/vip", "true") + `","note":null,"name":"keep me"},"items":[{"sku":"` + tok("/items/*/sku", `"a@b"`) +
		`","qty":1},{"sku":"` + tok("/items/*/sku", `"a@b"`) + `","qty":2},{"sku":"` + tok("/items/*/sku", `"<x&y>"`) +
		`"}],"flags":["` + tok("/flags/0", "false") + `",true]}`
	if string(r.Payload) != want {
		t.Fatalf("Apply\n got %s\nwant %s", r.Payload, want)
	}
	wantCalls := []string{`/customer/id 12.50`, `/customer/email "a@b"`, `/customer/vip true`, `/items/*/sku "a@b"`, `/items/*/sku "a@b"`, `/items/*/sku "<x&y>"`, `/flags/0 false`}
	if !slices.Equal(rec.calls, wantCalls) {
		t.Errorf("tokenizer calls %q, want %q", rec.calls, wantCalls)
	}
	wantTok := []string{"/customer/id", "/customer/email", "/customer/vip", "/items/0/sku", "/items/1/sku", "/items/2/sku", "/flags/0"}
	if !slices.Equal(r.Tokenized, wantTok) {
		t.Errorf("Tokenized = %q, want %q", r.Tokenized, wantTok)
	}
	// The same value gets the same token under the same pattern, another
	// under another pattern.
	if tok("/customer/email", `"a@b"`) == tok("/items/*/sku", `"a@b"`) {
		t.Error("tokens do not depend on the pattern")
	}
	r2, err := p.Apply([]byte(payload), hmacToken)
	if err != nil || string(r2.Payload) != want {
		t.Fatalf("second Apply differs: %s, %v", r2.Payload, err)
	}
}

func TestTokenizeCanonicalStrings(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Tokenize: []string{"/v"}})
	for _, group := range [][]string{
		{`"a@b"`, `"a\u0040b"`, `"\u0061\u0040\u0062"`},
		{`"é/x"`, `"\u00e9\/x"`, `"\u00E9/x"`},
		{`"😀"`, `"\ud83d\ude00"`},
		{`"<&>"`, `"\u003c\u0026\u003e"`},
		{`"\n\"\\"`, `"\u000a\u0022\u005c"`},
		{`"\u2028"`, "\"\u2028\""},
		{`"\ufffd"`, `"\ud800"`, "\"\xff\""},
	} {
		var first string
		for i, v := range group {
			var rec recorder
			r, err := p.Apply([]byte(`{"v":`+v+`}`), rec.tokenize)
			if err != nil {
				t.Fatalf("%s: %v", v, err)
			}
			if i == 0 {
				first = string(r.Payload)
				var s string
				if err := json.Unmarshal([]byte(v), &s); err != nil {
					t.Fatal(err)
				}
				if canon := marshalNoHTML(t, s); rec.calls[0] != "/v "+canon {
					t.Errorf("%s: tokenizer got %q, want canonical %q", v, rec.calls[0], canon)
				}
			} else if string(r.Payload) != first {
				t.Errorf("%s and %s get different tokens", group[0], v)
			}
		}
	}
}

func marshalNoHTML(t testing.TB, v any) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestTokenizeErrors(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Fields: []string{"/customer", "/list"}, Tokenize: []string{"/customer/address", "/list"}})
	for _, payload := range []string{
		`{"customer":{"address":{"street":"SECRET STREET"}}}`,
		`{"list":["SECRET"]}`,
	} {
		_, err := p.Apply([]byte(payload), hmacToken)
		var we *ward.Error
		if !errors.As(err, &we) || we.Code != CodeNotScalar {
			t.Fatalf("Apply(%s) = %v, want tokenize_not_scalar", payload, err)
		}
		if we.Field != "/customer/address" && we.Field != "/list" {
			t.Errorf("Field = %q", we.Field)
		}
		if strings.Contains(we.Message, "SECRET") {
			t.Errorf("message %q leaks the value", we.Message)
		}
	}

	boom := errors.New("boom")
	_, err := p.Apply([]byte(`{"list":1}`), func(string, []byte) (string, error) { return "", boom })
	if !errors.Is(err, boom) {
		t.Fatalf("tokenizer error = %v, want it as it is", err)
	}
	if _, err := p.Apply([]byte(`{"list":1}`), nil); ward.CodeOf(err) != ward.CodeInternal {
		t.Fatalf("nil tokenizer: %v", err)
	}
}

func TestTokenizeOnlyKeepsBytes(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Tokenize: []string{"/a/b", "/a/*/c", "/a/0/c"}})
	payload := "{ \"a\" : { \"b\" : \"x\", \"z\" : [ 1 , 2 ] } , \"y\" : { \"k\" : 1 } }"
	r, err := p.Apply([]byte(payload), hmacToken)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":{"b":"` + tok("/a/b", `"x"`) + `","z":[ 1 , 2 ]},"y":{ "k" : 1 }}`
	if string(r.Payload) != want {
		t.Fatalf("got %s\nwant %s", r.Payload, want)
	}
	// Several patterns match: the first in input.tokenize wins.
	r, err = p.Apply([]byte(`{"a":[{"c":1},{"c":2}]}`), hmacToken)
	if err != nil {
		t.Fatal(err)
	}
	want = `{"a":[{"c":"` + tok("/a/*/c", "1") + `"},{"c":"` + tok("/a/*/c", "2") + `"}]}`
	if string(r.Payload) != want {
		t.Fatalf("got %s\nwant %s", r.Payload, want)
	}
}

func TestNotJSON(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Fields: []string{"/a"}})
	for _, payload := range []string{"", " ", `{"a":1`, `{"a":SECRET}`, "SECRET", `{"a":1}{}`, "\xff"} {
		_, err := p.Apply([]byte(payload), nil)
		var we *ward.Error
		if !errors.As(err, &we) || we.Code != CodeNotJSON {
			t.Errorf("Apply(%q) = %v, want payload_not_json", payload, err)
		} else if strings.Contains(we.Message, "SECRET") {
			t.Errorf("message %q quotes the payload", we.Message)
		}
	}
	empty := mustCompile(t, ward.Input{})
	r, err := empty.Apply([]byte("not json"), nil)
	if err != nil || string(r.Payload) != "not json" {
		t.Fatalf("empty plan: %q, %v", r.Payload, err)
	}
}

// TestDetokenizeRoundTrip tokenizes a payload and restores it.
func TestDetokenizeRoundTrip(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Tokenize: []string{"/s", "/n", "/b", "/q"}})
	payload := `{"s":"a\u0040b","n":-1.5e3,"b":false,"q":"say \"hi\" <now>","x":"tok_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`
	var rec recorder
	r, err := p.Apply([]byte(payload), rec.tokenize)
	if err != nil {
		t.Fatal(err)
	}
	found := FindTokens(r.Payload, 100)
	if len(found) != 5 {
		t.Fatalf("FindTokens = %q", found)
	}
	back, err := Detokenize(r.Payload, rec.orig)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"s":"a@b","n":-1.5e3,"b":false,"q":"say \"hi\" <now>","x":"tok_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`; string(back) != want {
		t.Fatalf("Detokenize\n got %s\nwant %s", back, want)
	}
}

func TestDeepNesting(t *testing.T) {
	t.Parallel()
	const depth = 9000
	payload := `{"a":` + strings.Repeat("[", depth) + `"x"` + strings.Repeat("]", depth) + `,"b":` + strings.Repeat(`{"b":`, depth) + `1` + strings.Repeat("}", depth) + `,"c":"s"}`
	for _, in := range []ward.Input{{Fields: []string{"/a", "/b/b/b", "/c"}, Tokenize: []string{"/c"}}, {Tokenize: []string{"/c"}}} {
		r, err := mustCompile(t, in).Apply([]byte(payload), hmacToken)
		if err != nil || !json.Valid(r.Payload) {
			t.Fatalf("Apply(%+v): %v", in, err)
		}
		if len(r.Fields) != 3 || len(r.Tokenized) != 1 {
			t.Fatalf("Fields = %d pointers", len(r.Fields))
		}
	}
}

// A tokenize pointer outside every field is part of what the function sees,
// as a token (the design's example: fields of the order, the customer's
// e-mail as a token); strict counts it as allowed.
func TestTokenizeOutsideFieldsIsKept(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Fields: []string{"/order/id"}, Tokenize: []string{"/customer/email"}, Strict: true})
	var rec recorder
	r, err := p.Apply([]byte(`{"order":{"id":7},"customer":{"email":"ada@example.com"}}`), rec.tokenize)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"order":{"id":7},"customer":{"email":"` + tok("/customer/email", `"ada@example.com"`) + `"}}`
	if string(r.Payload) != want {
		t.Fatalf("Apply\n got %s\nwant %s", r.Payload, want)
	}
	if _, err := p.Apply([]byte(`{"order":{"id":7},"customer":{"email":"a","name":"Ada"}}`), rec.tokenize); ward.CodeOf(err) != CodeNotAllowed {
		t.Fatalf("strict with a member beside the tokenized one: %v", err)
	}
}
