package privacy

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

func testToken(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return FormatToken(sum[:])
}

func TestFormatToken(t *testing.T) {
	t.Parallel()
	mac := make([]byte, 32)
	if got, want := FormatToken(mac), "tok_"+strings.Repeat("a", 32); got != want {
		t.Fatalf("FormatToken(zeros) = %q, want %q", got, want)
	}
	for i := range mac {
		mac[i] = 0xff
	}
	if got, want := FormatToken(mac), "tok_"+strings.Repeat("7", 32); got != want {
		t.Fatalf("FormatToken(ones) = %q, want %q", got, want)
	}
	// Only the first 20 bytes count.
	a, b := slices.Clone(mac), slices.Clone(mac)
	b[25] = 0
	if FormatToken(a) != FormatToken(b) || FormatToken(a) != FormatToken(a[:20]) {
		t.Fatal("bytes past the 20th changed the token")
	}
	b[19] = 0
	if FormatToken(a) == FormatToken(b) {
		t.Fatal("the 20th byte did not change the token")
	}
	tk := testToken("x")
	if len(tk) != TokenLen || !IsToken(tk) {
		t.Fatalf("token %q is not a token", tk)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("FormatToken of 19 bytes did not panic")
		}
	}()
	FormatToken(make([]byte, 19))
}

func TestIsToken(t *testing.T) {
	t.Parallel()
	good := testToken("a")
	if !IsToken(good) {
		t.Fatalf("IsToken(%q) = false", good)
	}
	for _, s := range []string{"", "tok_", good[:TokenLen-1], good + "a", "TOK_" + good[4:], strings.ToUpper(good),
		"tok_" + strings.Repeat("1", 32), "tok_" + strings.Repeat("8", 32), "tok_" + strings.Repeat("a", 31) + "=", " " + good[1:]} {
		if IsToken(s) {
			t.Errorf("IsToken(%q) = true", s)
		}
	}
}

func TestFindTokens(t *testing.T) {
	t.Parallel()
	a, b, c := testToken("a"), testToken("b"), testToken("c")
	text := []byte(`{"x":"` + a + `","y":"see ` + b + `, ` + a + `"} ` + c + "tok_short tok_" + strings.ToUpper(b[4:]) + " tok_tok_" + c[4:])
	if got, want := FindTokens(text, 10), []string{a, b, c}; !slices.Equal(got, want) {
		t.Fatalf("FindTokens = %q, want %q", got, want)
	}
	if got := FindTokens(text, 2); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("FindTokens(max 2) = %q", got)
	}
	if got := FindTokens(text, 0); len(got) != 0 {
		t.Fatalf("FindTokens(max 0) = %q", got)
	}
	if got := FindTokens([]byte("no tokens tok_ here"), 10); got != nil {
		t.Fatalf("FindTokens = %q", got)
	}
	// Many, with repeats.
	var many []byte
	var want []string
	for i := range 100 {
		tk := testToken(strconv.Itoa(i))
		want = append(want, tk)
		many = append(many, tk+" "+testToken(strconv.Itoa(i/2))+" "...)
	}
	if got := FindTokens(many, 1000); !slices.Equal(got, want) {
		t.Fatalf("FindTokens(many) = %d tokens", len(got))
	}
	// Back to back.
	if got := FindTokens([]byte(a+b+a), 10); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("FindTokens(adjacent) = %q", got)
	}
}

func TestDetokenize(t *testing.T) {
	t.Parallel()
	ts, tn, tb, tq, tx, tmissing := testToken("s"), testToken("n"), testToken("b"), testToken("q"), testToken("x"), testToken("missing")
	originals := map[string][]byte{
		ts: []byte(`"a@b"`),
		tn: []byte(`12.50`),
		tb: []byte(`true`),
		tq: []byte(`"say \"hi\"\n\\ <é>"`),
		tx: []byte(`"\u00e9"`),
	}
	tests := []struct {
		name, in, want string
	}{
		{"whole string", `{"e":"` + ts + `"}`, `{"e":"a@b"}`},
		{"whole number", `{"e":"` + tn + `"}`, `{"e":12.50}`},
		{"whole bool in an array", `[ "` + tb + `" , "` + tn + `" ]`, `[ true , 12.50 ]`},
		{"whole string with quotes", `{"e":"` + tq + `"}`, `{"e":"say \"hi\"\n\\ <é>"}`},
		{"embedded", `{"m":"hi ` + ts + `!"}`, `{"m":"hi a@b!"}`},
		{"embedded number", `{"m":"total: ` + tn + ` EUR"}`, `{"m":"total: 12.50 EUR"}`},
		{"embedded with quotes", `{"m":"x ` + tq + ` y"}`, `{"m":"x say \"hi\"\n\\ <é> y"}`},
		{"embedded escaped original", `{"m":"x` + tx + `"}`, `{"m":"xé"}`},
		{"embedded twice", `{"m":"` + ts + ts + `"}`, `{"m":"a@ba@b"}`},
		{"in an escaped string", `{"m":"line\n` + ts + `\u0021"}`, `{"m":"line\na@b!"}`},
		{"escaped token", `{"m":"\u0074ok_` + ts[4:] + `"}`, `{"m":"a@b"}`},
		{"key", `{"` + ts + `":1}`, `{"a@b":1}`},
		{"key with number", `{"` + tn + `" :1}`, `{"12.50" :1}`},
		{"missing left", `{"e":"` + tmissing + `","f":"x ` + tmissing + `"}`, `{"e":"` + tmissing + `","f":"x ` + tmissing + `"}`},
		{"mixed", `{"e":"` + tmissing + ` ` + ts + `"}`, `{"e":"` + tmissing + ` a@b"}`},
		{"no tokens", ` {"a" : [1, "b"]} `, ` {"a" : [1, "b"]} `},
		{"whitespace kept", "{\n  \"e\" : \"" + tn + "\"\n}", "{\n  \"e\" : 12.50\n}"},
		{"text", "hello " + ts + " and " + tn + "/" + tq + " " + tmissing, "hello a@b and 12.50/say \"hi\"\n\\ <é> " + tmissing},
		{"text that looks like JSON", `{"e":"` + ts + `"`, `{"e":"a@b"`},
	}
	for _, tt := range tests {
		got, err := Detokenize([]byte(tt.in), originals)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("%s: Detokenize(%s)\n got %s\nwant %s", tt.name, tt.in, got, tt.want)
		}
		if json.Valid([]byte(tt.in)) && !json.Valid(got) {
			t.Errorf("%s: output %s is not valid JSON", tt.name, got)
		}
	}

	in := []byte(`{"a":"` + tmissing + `"}`)
	if got, _ := Detokenize(in, originals); &got[0] != &in[0] {
		t.Error("unchanged input was copied")
	}
	for _, bad := range []string{`{"a":1}`, `[1]`, `"unterminated`, ``, `1 2`} {
		_, err := Detokenize([]byte(`"`+ts+`"`), map[string][]byte{ts: []byte(bad)})
		if ward.CodeOf(err) != ward.CodeInternal || strings.Contains(err.Error(), bad) && bad != "" {
			t.Errorf("original %q: error %v", bad, err)
		}
	}
}

// TestStringCodec checks the string decoder and encoder against
// encoding/json.
func TestStringCodec(t *testing.T) {
	t.Parallel()
	for _, raw := range stringSeeds {
		checkStringCodec(t, []byte(raw))
	}
}

var stringSeeds = []string{
	`"a@b"`, `"a\u0040b"`, `"\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800"`, `"\ud800\u0041"`, `"\ud800\ud800\udc00"`,
	"\"\xff\xfe\"", "\"\xed\xa0\x80\"", `"\u2028\u2029"`, "\"\u2028\"", `"\b\f\n\r\t\u0001\u001f"`, `"<>&"`,
	"\"\x7f\"", `"\/\\\""`, `"é日本"`, `""`, `"\u0000"`,
}

func checkStringCodec(t *testing.T, raw []byte) {
	raw = bytes.Trim(raw, " \t\r\n")
	var s string
	if len(raw) < 2 || raw[0] != '"' || !json.Valid(raw) || json.Unmarshal(raw, &s) != nil {
		return
	}
	content := raw[1 : len(raw)-1]
	if got := appendUnquoted(nil, content); string(got) != s {
		t.Fatalf("appendUnquoted(%q) = %q, want %q", raw, got, s)
	}
	want := marshalNoHTML(t, s)
	if got := appendQuoted(nil, s); string(got) != want {
		t.Fatalf("appendQuoted(%q) = %q, want %q", s, got, want)
	}
	if plainString(content) && !bytes.Equal(raw, []byte(want)) {
		t.Fatalf("plain string %q is not canonical (%q)", raw, want)
	}
}
