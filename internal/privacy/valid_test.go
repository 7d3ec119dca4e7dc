package privacy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wardhq/ward"
)

// validPlans are plans whose walks take every path of the validating
// scanner: projection (objects, arrays under "*" and indexes, drops), values
// kept whole, tokenization, strict checks, and no fields at all.
var validPlans = []ward.Input{
	{Fields: []string{"/a"}},
	{Fields: fuzzFields, Tokenize: []string{"/b/*/c", "/d/x/y", "/e/0"}},
	{Fields: fuzzFields, Strict: true},
	{Tokenize: []string{"/a", "/b/*/c", "/0"}},
	{Fields: []string{"/0/a", "/*/b", "/1"}, Tokenize: []string{"/1"}},
}

// checkSyntax checks that valid, and Apply under each of validPlans, accept
// exactly what json.Valid accepts; Apply's Tokenizer must not run on invalid
// JSON.
func checkSyntax(t *testing.T, plans []*Plan, b []byte) {
	t.Helper()
	want := json.Valid(b)
	if got := valid(b); got != want {
		t.Fatalf("valid(%q) = %v, json.Valid says %v", b, got, want)
	}
	for i, p := range plans {
		called := false
		_, err := p.Apply(b, func(pattern string, value []byte) (string, error) {
			called = true
			return hmacToken(pattern, value)
		})
		if notJSON := ward.CodeOf(err) == CodeNotJSON; notJSON == want {
			t.Fatalf("plan %d: Apply(%q): %v; json.Valid says %v", i, b, err, want)
		}
		if called && !want {
			t.Fatalf("plan %d: Apply(%q) called the Tokenizer on invalid JSON", i, b)
		}
	}
}

func compilePlans(t testing.TB) []*Plan {
	plans := make([]*Plan, len(validPlans))
	for i, in := range validPlans {
		plans[i] = mustCompile(t, in)
	}
	return plans
}

// syntaxSeeds hold every kind of token, whitespace, escape and number.
var syntaxSeeds = []string{
	`{"a":[1,-2.5e+3,0,-0.0,1E9,true,false,null,"s\"\\\/\b\f\n\r\tx\u00e9\uD83D\uDE00"],"b":[{"c":"v","z":{}},[],{"c":[1]}],` +
		`"d":{"x":{"y":"long string that is longer than a word or two"}},"e":[5,{"k":1},{"k":[]}]}`,
	" \t\r\n[ { \"0\" : 1 , \"a\" : [ ] } , { \"b\" : { } } , 3 ] \n",
	`[{"a":{"b":[1,2]},"b":2},{"1":1},"1"]`,
	`"abcdefghijklmnopqrstuvwxyz0123456789"`, `0`, `-1`, `null`, "\"\xff\xfe\x7f\"",
}

func TestValidAgainstEncodingJSON(t *testing.T) {
	t.Parallel()
	plans := compilePlans(t)
	cases := []string{
		// Truncated and empty.
		``, ` `, `{`, `[`, `"`, `{"a"`, `{"a":`, `{"a":1`, `{"a":1,`, `[1,`, `[1`, `"abc`, `"\`, `"\u12`, `tru`, `nul`, `-`,
		// Structure.
		`{,}`, `[,]`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{"a"::1}`, `{a:1}`, `{1:1}`, `{"a":1 "b":2}`, `[1 2]`,
		`[}`, `{]`, `{"a":[}`, `[{]}`, `]`, `}`, `:`, `,`, `{"a":1}}`, `[1]]`,
		// Escapes and control characters.
		`"\x"`, `"\U0041"`, `"\u00g0"`, `"\u004"`, `"\'"`, "\"a\x00b\"", "\"a\x1fb\"", "\"a\nb\"", "\"\t\"", `"\u0000"`,
		`"\\"`, `"\\\"`, `"\"`, `"a\\"b"`, `"\/"`, `"\uD800"`, "\"\xc3\x28\"",
		// Numbers.
		`01`, `00`, `-01`, `1.`, `.5`, `1.e5`, `1e`, `1e+`, `1E-`, `+1`, `--1`, `-.5`, `0x10`, `1_000`, `Infinity`, `NaN`,
		`1.5e-07`, `-0`, `0.0`, `1e0001`, `123456789012345678901234567890`, `-0e-0`, `2.`, `0.e1`,
		// Literals.
		`True`, `nulls`, `truex`, `fals`, `nul l`, `[true,false,null]`, `[truefalse]`,
		// Trailing garbage and whitespace.
		`{} {}`, `1 2`, `"a" "b"`, `{}x`, "{}\x00", "{}\u00a0", "\ufeff{}", " {} \n\t\r", "{}\v", "\f{}",
		// Containers under the plans' pointers.
		`{"a":{"b":[1,2}}`, `{"b":[{"c":2,},{}]}`, `{"b":[{"c":"x"]]}`, `{"d":{"x":{"y":"s",}}}`, `{"e":[1,{"k":x}]}`,
		`{"a":"tok","b":[{"c":[1]}]}`, `{"a":nulx}`, `{"a":nuxl,"b":1}`, `{"b":[{"c":nul}]}`, `[{"a":1},nulx]`, `{"a":n}`, `[{"a":1},{"b":2},3,4]`, `[{"a":1},{"b":2},{"x"}]`, `{"a":1,"zz":{"q":[1,2,}}`,
	}
	cases = append(cases, syntaxSeeds...)
	for _, s := range syntaxSeeds {
		// Every prefix, and the seed cut at each position with a byte
		// inserted that is or is not valid there.
		for i := range len(s) {
			cases = append(cases, s[:i])
			for _, c := range []string{",", "}", "]", `"`, `\`, "x", "0", " ", "\x01"} {
				cases = append(cases, s[:i]+c+s[i:])
			}
			cases = append(cases, s[:i]+s[i+1:])
		}
	}
	for _, c := range cases {
		checkSyntax(t, plans, []byte(c))
	}
}

func TestValidRandomMutations(t *testing.T) {
	t.Parallel()
	plans := compilePlans(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "{}[]:,\"\\ 0123456789-+.eEtrufalsn\x00\x1f\x7f\xff"
	for range 20000 {
		b := []byte(syntaxSeeds[rng.IntN(len(syntaxSeeds))])
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(b) + 1)
			c := alphabet[rng.IntN(len(alphabet))]
			switch rng.IntN(3) {
			case 0:
				b = append(b[:i], append([]byte{c}, b[i:]...)...)
			case 1:
				if i < len(b) {
					b = append(b[:i], b[i+1:]...)
				}
			default:
				if i < len(b) {
					b[i] = c
				}
			}
		}
		checkSyntax(t, plans, b)
	}
}

// TestValidDepth checks encoding/json's nesting limit (10000) on each path:
// skipped, kept whole, projected and tokenized values.
func TestValidDepth(t *testing.T) {
	t.Parallel()
	plans := compilePlans(t)
	for _, depth := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		for _, shape := range []func(n int) string{
			func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) },
			func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) },
			func(n int) string { return `{"z":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + "}" },
			func(n int) string { return `{"a":` + strings.Repeat("[", n-1) + "1" + strings.Repeat("]", n-1) + "}" },
			func(n int) string {
				return `[{"a":1},` + strings.Repeat(`{"b":`, n-1) + "null" + strings.Repeat("}", n-1) + "]"
			},
			func(n int) string { return `{"b":[{"c":` + strings.Repeat("[", n-3) + strings.Repeat("]", n-3) + "}]}" },
		} {
			checkSyntax(t, plans, []byte(shape(depth)))
		}
	}
}

// TestStringStop checks the word-at-a-time search for the end of a string's
// plain run against a byte-by-byte one.
func TestStringStop(t *testing.T) {
	t.Parallel()
	special := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' }
	interesting := []byte{0, 0x1f, 0x20, 0x21, '"', 0x23, '\\', 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff, 'a'}
	rng := rand.New(rand.NewPCG(3, 4))
	var w [8]byte
	for range 200000 {
		for k := range w {
			w[k] = interesting[rng.IntN(len(interesting))]
		}
		want := -1
		for k, c := range w {
			if special(c) {
				want = k
				break
			}
		}
		m := stringStop(binary.LittleEndian.Uint64(w[:]))
		got := -1
		if m != 0 {
			got = 0
			for m&0x80 == 0 {
				m >>= 8
				got++
			}
		}
		if got != want {
			t.Fatalf("stringStop(% x): first stop at %d, want %d", w, got, want)
		}
	}
}

// TestTokenizerAfterValidation: the Tokenizer sees nothing of a payload that
// turns out not to be JSON further on.
func TestTokenizerAfterValidation(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Fields: []string{"/a", "/b"}, Tokenize: []string{"/a"}})
	var rec recorder
	if _, err := p.Apply([]byte(`{"a":"SECRET","b":[1,2,}`), rec.tokenize); ward.CodeOf(err) != CodeNotJSON {
		t.Fatalf("Apply: %v, want payload_not_json", err)
	}
	if len(rec.calls) != 0 {
		t.Fatalf("the Tokenizer was called with %q", rec.calls)
	}
}

// TestErrorOrder: with several faults, Apply reports the Tokenizer's error
// for an earlier value first, then tokenize_not_scalar, then
// input_not_allowed; invalid JSON beats them all.
func TestErrorOrder(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Fields: []string{"/a", "/b", "/c"}, Tokenize: []string{"/a", "/b"}, Strict: true})
	boom := errors.New("boom")
	failing := func(string, []byte) (string, error) { return "", boom }
	for _, tt := range []struct {
		payload string
		tok     Tokenizer
		want    func(error) bool
	}{
		{`{"a":1,"b":{},"x":1}`, failing, func(err error) bool { return errors.Is(err, boom) }},
		{`{"b":{},"a":1,"x":1}`, failing, func(err error) bool { return ward.CodeOf(err) == CodeNotScalar }},
		{`{"a":1,"b":{},"x":1}`, hmacToken, func(err error) bool { return ward.CodeOf(err) == CodeNotScalar }},
		{`{"a":1,"b":[],"b":{}}`, hmacToken, func(err error) bool {
			var we *ward.Error
			return errors.As(err, &we) && we.Code == CodeNotScalar && strings.Contains(we.Message, "an array")
		}},
		{`{"a":1,"b":2,"x":1}`, hmacToken, func(err error) bool { return ward.CodeOf(err) == CodeNotAllowed }},
		{`{"a":1,"b":2,"x":1}`, failing, func(err error) bool { return errors.Is(err, boom) }},
		{`{"a":1,"b":{},"x":1,}`, failing, func(err error) bool { return ward.CodeOf(err) == CodeNotJSON }},
	} {
		if _, err := p.Apply([]byte(tt.payload), tt.tok); !tt.want(err) {
			t.Errorf("Apply(%s): %v", tt.payload, err)
		}
	}
}

// TestApplyReuse: results never share memory with the scratch buffers the
// next calls reuse, sequential or concurrent.
func TestApplyReuse(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Fields: []string{"/a", "/b/*/c"}, Tokenize: []string{"/a"}})
	payload := func(i int) []byte {
		return []byte(`{"a":"v` + strings.Repeat("x", i%50) + `","b":[{"c":` + strings.Repeat("7", 1+i%9) + `,"d":1}],"e":2}`)
	}
	const n, goroutines = 40, 4
	want := make([]string, n+goroutines)
	wantFields := make([]string, n+goroutines)
	for i := range want {
		r, err := p.Apply(payload(i), hmacToken)
		if err != nil {
			t.Fatal(err)
		}
		want[i], wantFields[i] = string(r.Payload), strings.Join(r.Fields, ",")
	}
	var wg sync.WaitGroup
	errs := make(chan string, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kept := make([]Result, n)
			for i := range kept {
				r, err := p.Apply(payload(i+g), hmacToken)
				if err != nil {
					errs <- err.Error()
					return
				}
				kept[i] = r
			}
			for i, r := range kept {
				if string(r.Payload) != want[i+g] || strings.Join(r.Fields, ",") != wantFields[i+g] {
					errs <- "result " + string(r.Payload) + " changed by later calls"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	r, _ := p.Apply(payload(3), hmacToken)
	if !bytes.Contains(r.Payload, []byte(`"a":"tok_`)) || cap(r.Payload) != len(r.Payload) {
		t.Fatalf("payload %s (cap %d)", r.Payload, cap(r.Payload))
	}
}

// FuzzValid holds the validating scanner, and Apply with it, to accept
// exactly what json.Valid accepts.
func FuzzValid(f *testing.F) {
	for _, s := range append(append([]string{}, syntaxSeeds...), fuzzSeeds...) {
		f.Add([]byte(s))
	}
	f.Add([]byte(strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)))
	plans := compilePlans(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSyntax(t, plans, b)
	})
}

// TestWideNode: a trie node with more keys than are looked up one by one
// finds them by hashing, with the same result.
func TestWideNode(t *testing.T) {
	t.Parallel()
	for _, n := range []int{maxLinear, maxLinear + 1, 3 * maxLinear} {
		// Members 0 to n+3; the fields name those below n+2 but 0 and 2,
		// so n keys in all.
		var fields, members, kept []string
		for i := range n + 4 {
			key := strings.Repeat("k", 1+i%3) + string(rune('a'+i))
			member := `"` + key + `":` + strconv.Itoa(i)
			members = append(members, member)
			if i < n+2 && i != 0 && i != 2 {
				fields = append(fields, "/"+key)
				kept = append(kept, member)
			}
		}
		p := mustCompile(t, ward.Input{Fields: fields})
		if len(p.froot.keys) != n {
			t.Fatalf("root has %d keys, want %d", len(p.froot.keys), n)
		}
		payload := "{" + strings.Join(members, ",") + "}"
		want := "{" + strings.Join(kept, ",") + "}"
		if r, err := p.Apply([]byte(payload), nil); err != nil || string(r.Payload) != want {
			t.Fatalf("%d fields: Apply = %s, %v; want %s", n, r.Payload, err, want)
		}
	}
}
