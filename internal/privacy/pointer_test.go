package privacy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

func TestParsePointer(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("/a", 16) + "/" + strings.Repeat("x", MaxPointerLen-33)
	tests := []struct {
		in     string
		tokens []string // nil: an error is expected
		why    string   // part of the error message
	}{
		{in: "/a", tokens: []string{"a"}},
		{in: "/a/b/c", tokens: []string{"a", "b", "c"}},
		{in: "/", tokens: []string{""}},
		{in: "//", tokens: []string{"", ""}},
		{in: "/a~1b", tokens: []string{"a/b"}},
		{in: "/a~0b", tokens: []string{"a~b"}},
		{in: "/~01", tokens: []string{"~1"}},
		{in: "/~10", tokens: []string{"/0"}},
		{in: "/items/*/sku", tokens: []string{"items", "*", "sku"}},
		{in: "/a/0", tokens: []string{"a", "0"}},
		{in: "/a/01", tokens: []string{"a", "01"}}, // a key only: no array index has a leading zero
		{in: "/café/ü", tokens: []string{"café", "ü"}},
		{in: "/a/--", tokens: []string{"a", "--"}},
		{in: strings.Repeat("/x", MaxPointerTokens), tokens: slices.Repeat([]string{"x"}, MaxPointerTokens)},
		{in: long, tokens: append(slices.Repeat([]string{"a"}, 16), strings.Repeat("x", MaxPointerLen-33))},

		{in: "", why: "empty pointer"},
		{in: "a/b", why: `must start with "/"`},
		{in: "#/a", why: `must start with "/"`},
		{in: "/a~", why: "bad escape"},
		{in: "/a~2", why: "bad escape"},
		{in: "/~a", why: "bad escape"},
		{in: "/a/-", why: `"-"`},
		{in: "/a\xffb", why: "UTF-8"},
		{in: strings.Repeat("/x", MaxPointerTokens+1), why: "more than 32 tokens"},
		{in: long + "x", why: "longer than 1024 bytes"},
	}
	for _, tt := range tests {
		p, err := ParsePointer(tt.in)
		if tt.tokens == nil {
			var we *ward.Error
			if !errors.As(err, &we) || we.Code != ward.CodeInvalidArgument {
				t.Errorf("ParsePointer(%q) error = %v, want invalid_argument", tt.in, err)
				continue
			}
			if !strings.Contains(we.Message, tt.why) {
				t.Errorf("ParsePointer(%q) message %q lacks %q", tt.in, we.Message, tt.why)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePointer(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(p.tokens, tt.tokens) {
			t.Errorf("ParsePointer(%q) tokens = %q, want %q", tt.in, p.tokens, tt.tokens)
		}
		if p.String() != tt.in {
			t.Errorf("ParsePointer(%q).String() = %q", tt.in, p.String())
		}
	}
}

func TestArrayIndex(t *testing.T) {
	t.Parallel()
	for tok, want := range map[string]int{"0": 0, "7": 7, "12": 12, "999999999": 999999999} {
		if got, ok := arrayIndex(tok); !ok || got != want {
			t.Errorf("arrayIndex(%q) = %d, %v", tok, got, ok)
		}
	}
	for _, tok := range []string{"", "01", "00", "-", "-1", "1a", "*", "+1", "1000000000", " 1"} {
		if _, ok := arrayIndex(tok); ok {
			t.Errorf("arrayIndex(%q) accepted", tok)
		}
	}
}

// escapeToken is the inverse of unescapeToken.
func escapeToken(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func FuzzParsePointer(f *testing.F) {
	for _, s := range []string{"", "/", "/a/b", "/a~1b/~0", "/a~2", "/items/*/sku", "/a/-", "/01", "a", "/~", "/\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePointer(s)
		if err != nil {
			if ward.CodeOf(err) != ward.CodeInvalidArgument {
				t.Fatalf("error code %q", ward.CodeOf(err))
			}
			return
		}
		if p.String() != s || len(s) > MaxPointerLen || len(p.tokens) == 0 || len(p.tokens) > MaxPointerTokens {
			t.Fatalf("ParsePointer(%q) = %q with %d tokens", s, p.String(), len(p.tokens))
		}
		var b strings.Builder
		for _, tok := range p.tokens {
			if tok == "-" {
				t.Fatalf("token %q accepted", tok)
			}
			b.WriteString("/" + escapeToken(tok))
		}
		if b.String() != s {
			t.Fatalf("tokens %q re-escape to %q, want %q", p.tokens, b.String(), s)
		}
	})
}
