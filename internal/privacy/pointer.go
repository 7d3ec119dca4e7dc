// Package privacy applies a function's input rules to task payloads before
// anything is stored: projection (input.fields), the strict check
// (input.strict) and tokenization (input.tokenize). It also formats, finds and
// reverses tokens (Detokenize). Everything here is a pure function of its
// arguments; keys and secrets are the caller's business.
//
// # Pointers
//
// Rules name parts of a JSON payload with JSON Pointers (RFC 6901): a pointer
// starts with "/" and is a list of reference tokens separated by "/", in which
// "~1" stands for "/" and "~0" for "~". The empty pointer (the whole document)
// is not allowed, nor is the token "-"; a pointer has at most 1024 bytes and 32
// tokens. How a token is matched depends on the value it is applied to:
//
//   - on an object, every token, including "*" and numeric ones, names the
//     member whose (decoded) key is exactly the token;
//   - on an array, "*" names every element and a decimal token without leading
//     zeros ("0", "7", "12") names one element; any other token names nothing;
//   - on a string, number, boolean or null, a token names nothing.
//
// # Projection
//
// With input.fields, a payload is reduced to the subtrees its pointers name:
// a named value is kept whole (with its original bytes); objects on the way to
// a pointer's end keep only the members the pointers name (in their original
// order, with their original key bytes); arrays on the way keep, for "*",
// every element (an element the rest of the pointer cannot apply to becomes
// null) and, for indexes, the named elements at their positions, with null in
// place of dropped elements before the last kept one. An object on the way is
// kept even when the member a pointer names is missing (as {} at worst), and
// so is an array a pointer has "*" or an index for ([] at worst). A pointer
// that names nothing is fine; a pointer running into a scalar or the wrong kind
// of container names nothing there, and that value is dropped. When pointers
// overlap, the shorter one wins. A tokenize pointer outside every field
// pointer is kept as if it were a field: the function sees that value, as a
// token. Tokenization then applies to the values kept.
//
// # Tokens
//
// A token is "tok_" followed by 32 lowercase base32 characters (160 bits). The
// caller's Tokenizer derives it, typically with a keyed MAC over the pattern
// and the value's canonical JSON form, so equal values under the same pattern
// get equal tokens.
package privacy

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wardhq/ward"
)

// Limits on a pointer.
const (
	MaxPointerLen    = 1024 // bytes in a pointer
	MaxPointerTokens = 32   // reference tokens in a pointer
)

// maxIndexDigits bounds the array indexes a pointer can name; larger decimal
// tokens still name object members but no array element.
const maxIndexDigits = 9

// Pointer is a parsed JSON Pointer (RFC 6901) in which the token "*" stands
// for every element of an array. The zero Pointer is the empty pointer.
type Pointer struct {
	raw    string
	tokens []string
}

// ParsePointer parses s, which must start with "/" and respect the limits and
// rules in the package documentation. Its errors are *ward.Error with code
// invalid_argument.
func ParsePointer(s string) (Pointer, error) {
	p, why := parsePointer(s)
	if why != "" {
		return Pointer{}, &ward.Error{Code: ward.CodeInvalidArgument, Message: "invalid JSON pointer " + quoteShort(s) + ": " + why}
	}
	return p, nil
}

func parsePointer(s string) (Pointer, string) {
	switch {
	case s == "":
		return Pointer{}, "the empty pointer (the whole document) is not allowed"
	case len(s) > MaxPointerLen:
		return Pointer{}, "longer than 1024 bytes"
	case s[0] != '/':
		return Pointer{}, `must start with "/"`
	case !utf8.ValidString(s):
		return Pointer{}, "not valid UTF-8"
	case strings.Count(s, "/") > MaxPointerTokens:
		return Pointer{}, "more than 32 tokens"
	}
	parts := strings.Split(s[1:], "/")
	for i, part := range parts {
		if strings.IndexByte(part, '~') >= 0 {
			tok, ok := unescapeToken(part)
			if !ok {
				return Pointer{}, `bad escape: "~" must be followed by "0" or "1"`
			}
			parts[i] = tok
		} else if part == "-" {
			return Pointer{}, `the token "-" (past the end of an array) is not allowed`
		}
	}
	return Pointer{raw: s, tokens: parts}, ""
}

func unescapeToken(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '~' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", false
		}
		i++
		switch s[i] {
		case '0':
			b.WriteByte('~')
		case '1':
			b.WriteByte('/')
		default:
			return "", false
		}
	}
	return b.String(), true
}

// String returns the pointer as it was written (parsing keeps the text, and
// every valid pointer has exactly one spelling).
func (p Pointer) String() string { return p.raw }

// arrayIndex reports whether tok names an array element, and which.
func arrayIndex(tok string) (int, bool) {
	if tok == "" || len(tok) > maxIndexDigits || (tok[0] == '0' && len(tok) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// quoteShort quotes s for an error message, cutting it at 64 bytes.
func quoteShort(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}
