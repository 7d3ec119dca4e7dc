package privacy

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"slices"

	"github.com/wardhq/ward"
)

// TokenPrefix starts every token; 32 lowercase base32 characters (RFC 4648
// alphabet, no padding) follow it.
const TokenPrefix = "tok_"

// TokenLen is the length of a token in bytes.
const TokenLen = len(TokenPrefix) + 32

// tokenMACLen is how many bytes of a MAC a token carries (160 bits).
const tokenMACLen = 20

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// FormatToken returns the token for mac: TokenPrefix and the lowercase base32
// of its first 20 bytes. It panics when mac is shorter than 20 bytes, which is
// a programming error (an HMAC-SHA256 has 32).
func FormatToken(mac []byte) string {
	if len(mac) < tokenMACLen {
		panic("privacy: FormatToken needs a MAC of at least 20 bytes")
	}
	var buf [TokenLen]byte
	copy(buf[:], TokenPrefix)
	tokenEncoding.Encode(buf[len(TokenPrefix):], mac[:tokenMACLen])
	return string(buf[:])
}

// IsToken reports whether s is exactly one token.
func IsToken(s string) bool {
	return len(s) == TokenLen && s[:len(TokenPrefix)] == TokenPrefix && isBase32(s[len(TokenPrefix):])
}

func isBase32[S ~string | ~[]byte](s S) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

var tokenPrefix = []byte(TokenPrefix)

// nextToken returns the offset of the first token in b at or after i, or -1.
// A token is TokenPrefix followed by 32 base32 characters, wherever it is.
func nextToken(b []byte, i int) int {
	for i < len(b) {
		k := bytes.Index(b[i:], tokenPrefix)
		if k < 0 {
			return -1
		}
		p := i + k
		if p+TokenLen <= len(b) && isBase32(b[p+len(TokenPrefix):p+TokenLen]) {
			return p
		}
		i = p + 1
	}
	return -1
}

// FindTokens returns the distinct tokens appearing anywhere in b (inside JSON
// strings or plain text), in order of first appearance, at most max. It looks
// at the raw bytes: a token spelled with JSON escapes is not found.
func FindTokens(b []byte, max int) []string {
	var out []string
	var seen map[string]bool // once out is long enough for a linear search to cost
	for i := 0; len(out) < max; {
		p := nextToken(b, i)
		if p < 0 {
			break
		}
		i = p + TokenLen
		tok := b[p:i]
		if seen == nil && len(out) >= 16 {
			seen = make(map[string]bool, 2*len(out))
			for _, t := range out {
				seen[t] = true
			}
		}
		if seen != nil {
			if !seen[string(tok)] {
				seen[string(tok)] = true
				out = append(out, string(tok))
			}
		} else if !slices.Contains(out, string(tok)) {
			out = append(out, string(tok))
		}
	}
	return out
}

// Detokenize replaces the tokens in b with their originals. originals maps a
// token to the canonical JSON scalar it stands for (as given to the
// Tokenizer). If b is valid JSON, a JSON string value that is exactly one
// token becomes the original JSON value (a number stays a number), and a
// token inside a longer string, or in an object key, is replaced by the
// original's text (the decoded text of a string, the literal of anything
// else), escaped to fit in the string; everything else keeps its bytes. If b
// is not JSON, each token is replaced by the original's text. Tokens without
// an original are left as they are. The result may be b itself. An original
// that is not a JSON scalar is an error (code internal).
func Detokenize(b []byte, originals map[string][]byte) ([]byte, error) {
	if len(originals) == 0 || (nextToken(b, 0) < 0 && bytes.IndexByte(b, '\\') < 0) {
		return b, nil
	}
	d := detok{originals: originals}
	if json.Valid(b) {
		return d.json(b)
	}
	return d.text(b)
}

type detok struct {
	originals map[string][]byte
	buf       []byte // scratch for decoded strings
}

// lookup returns the original of tok, and whether there is one.
func (d *detok) lookup(tok []byte) ([]byte, bool, error) {
	orig, ok := d.originals[string(tok)]
	if !ok {
		return nil, false, nil
	}
	orig = bytes.Trim(orig, " \t\r\n")
	if len(orig) == 0 || orig[0] == '{' || orig[0] == '[' || !json.Valid(orig) {
		return nil, false, &ward.Error{Code: ward.CodeInternal, Message: "privacy: the original of a token is not a JSON scalar"}
	}
	return orig, true, nil
}

// appendText appends the text of original scalar orig: a string's decoded
// text, or the literal.
func appendText(dst, orig []byte) []byte {
	if orig[0] == '"' {
		return appendUnquoted(dst, orig[1:len(orig)-1])
	}
	return append(dst, orig...)
}

func (d *detok) text(b []byte) ([]byte, error) {
	var out []byte
	last := 0
	for i := 0; ; {
		p := nextToken(b, i)
		if p < 0 {
			break
		}
		i = p + TokenLen
		orig, ok, err := d.lookup(b[p:i])
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		out = append(out, b[last:p]...)
		out = appendText(out, orig)
		last = i
	}
	if out == nil {
		return b, nil
	}
	return append(out, b[last:]...), nil
}

func (d *detok) json(b []byte) ([]byte, error) {
	var out []byte
	last := 0
	for i := 0; i < len(b); {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			break
		}
		start := i + q
		end := skipString(b, start)
		i = end
		raw := b[start+1 : end-1]
		escaped := bytes.IndexByte(raw, '\\') >= 0
		text := raw
		if escaped {
			d.buf = appendUnquoted(d.buf[:0], raw)
			text = d.buf
		}
		p := nextToken(text, 0)
		if p < 0 {
			continue
		}
		isKey := false
		if k := skipWS(b, end); k < len(b) && b[k] == ':' {
			isKey = true
		}
		if !isKey && p == 0 && len(text) == TokenLen {
			orig, ok, err := d.lookup(text)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, b[last:start]...)
				out = append(out, orig...)
				last = end
			}
			continue
		}
		// Rebuild the string, replacing the tokens that have originals.
		mark := len(out)
		out = append(out, b[last:start]...)
		out = append(out, '"')
		seg, changed := 0, false
		for ; p >= 0; p = nextToken(text, p+TokenLen) {
			orig, ok, err := d.lookup(text[p : p+TokenLen])
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			out = appendSegmentText(out, text[seg:p], escaped)
			if orig[0] == '"' && plainString(orig[1:len(orig)-1]) {
				out = append(out, orig[1:len(orig)-1]...) // already escaped for a JSON string
			} else {
				var tmp [64]byte
				out = appendEscaped(out, appendText(tmp[:0], orig))
			}
			seg = p + TokenLen
			changed = true
		}
		if !changed {
			out = out[:mark]
			continue
		}
		out = appendSegmentText(out, text[seg:], escaped)
		out = append(out, '"')
		last = end
	}
	if last == 0 {
		return b, nil
	}
	return append(out, b[last:]...), nil
}

// appendSegmentText appends a piece of a string's text: the raw bytes when
// the string had no escapes (they are still valid string content), else the
// decoded text escaped again.
func appendSegmentText(dst, text []byte, escaped bool) []byte {
	if escaped {
		return appendEscaped(dst, text)
	}
	return append(dst, text...)
}
