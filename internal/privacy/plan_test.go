package privacy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	many := make([]string, MaxPointers+1)
	for i := range many {
		many[i] = fmt.Sprintf("/f%d", i)
	}
	tests := []struct {
		name  string
		in    ward.Input
		field string
		msg   string
	}{
		{"bad field", ward.Input{Fields: []string{"/a", "b"}}, "input.fields[1]", `must start with "/"`},
		{"empty field", ward.Input{Fields: []string{""}}, "input.fields[0]", "empty pointer"},
		{"bad escape", ward.Input{Fields: []string{"/a~3"}}, "input.fields[0]", "bad escape"},
		{"dash", ward.Input{Fields: []string{"/a/-"}}, "input.fields[0]", `"-"`},
		{"bad tokenize", ward.Input{Tokenize: []string{"/a", "/b/~"}}, "input.tokenize[1]", "bad escape"},
		{"duplicate field", ward.Input{Fields: []string{"/a", "/b", "/a"}}, "input.fields[2]", "repeats input.fields[0]"},
		{"duplicate tokenize", ward.Input{Tokenize: []string{"/a", "/a"}}, "input.tokenize[1]", "repeats input.tokenize[0]"},
		{"too many fields", ward.Input{Fields: many}, "input.fields", "at most 256"},
		{"too many tokenize", ward.Input{Tokenize: many}, "input.tokenize", "at most 256"},
		{"strict without fields", ward.Input{Strict: true, Tokenize: []string{"/a"}}, "input.strict", "input.fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Compile(tt.in)
			var we *ward.Error
			if !errors.As(err, &we) {
				t.Fatalf("Compile = %v, %v; want an error", p, err)
			}
			if we.Code != ward.CodeInvalidArgument || we.Field != tt.field || !strings.Contains(we.Message, tt.msg) {
				t.Fatalf("error = {%s %q %q}, want {invalid_argument %q ...%q...}", we.Code, we.Field, we.Message, tt.field, tt.msg)
			}
		})
	}
}

func TestCompileOK(t *testing.T) {
	t.Parallel()
	for _, in := range []ward.Input{
		{Fields: []string{"/a", "/a/b"}},                                       // overlapping fields
		{Fields: []string{"/a/*/x"}, Tokenize: []string{"/a/*/x/y", "/a/3/x"}}, // "*" covers "*" and indexes
		{Fields: []string{"/a"}, Tokenize: []string{"/a"}},                     // equal
		{Tokenize: []string{"/anything/*"}},                                    // no fields: tokenize anywhere
		{Fields: []string{"/a"}, Strict: true},
		{Fields: []string{"/a/b", "/a/c"}, Tokenize: []string{"/a/c"}},
	} {
		p, err := Compile(in)
		if err != nil {
			t.Errorf("Compile(%+v): %v", in, err)
			continue
		}
		if p.Empty() {
			t.Errorf("Compile(%+v).Empty() = true", in)
		}
	}
	p, err := Compile(ward.Input{})
	if err != nil || !p.Empty() {
		t.Fatalf("Compile(empty) = %v, %v; want an empty plan", p, err)
	}
}
