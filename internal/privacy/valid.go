package privacy

import (
	"encoding/binary"
	"math/bits"
)

// The validating scanner: Apply walks a payload once, checking its syntax as
// it goes, instead of running json.Valid first and then walking it again.
// It accepts exactly what encoding/json's Valid accepts (a differential fuzz
// test holds it to that): RFC 8259 syntax, with any byte from 0x20 up (so
// also invalid UTF-8) inside strings, and at most maxDepth nested arrays and
// objects. Each function returns the index just past what it scanned, or
// bad when the bytes there are not valid JSON.

// bad is the index the validating scanner returns for invalid JSON.
const bad = -1

// maxDepth is encoding/json's limit on nested arrays and objects.
const maxDepth = 10000

// SWAR constants: a byte value repeated in every byte of a word.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// stringStop returns a word with the high bit set in (at least) the lowest
// byte of x, read little-endian, that is '"', '\\' or a control character,
// or 0 when there is none. Bytes above that one may be flagged falsely (by
// borrows); the lowest flagged byte is always a true one.
func stringStop(x uint64) uint64 {
	q := x ^ (ones * '"')
	s := x ^ (ones * '\\')
	return ((x-ones*0x20)&^x | (q-ones)&^q | (s-ones)&^s) & highs
}

// scanString checks the string starting at b[i] == '"' and returns the index
// just past its closing quote.
func scanString(b []byte, i int) int {
	j := i + 1
	for {
		for j+8 <= len(b) {
			if m := stringStop(binary.LittleEndian.Uint64(b[j:])); m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		if j >= len(b) {
			return bad
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1
		case c == '\\':
			if j+1 >= len(b) {
				return bad
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) || !isHex(b[j+5]) {
					return bad
				}
				j += 6
			default:
				return bad
			}
		case c < 0x20:
			return bad
		default:
			j++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digits returns the index just past the decimal digits at b[i:].
func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// scanNumber checks the number starting at b[i] (any byte: not a number is
// bad): an optional minus, an integer without leading zeros, an optional
// fraction and an optional exponent.
func scanNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
		if i >= len(b) {
			return bad
		}
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		i = digits(b, i+1)
	default:
		return bad
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return bad
		}
		i = digits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return bad
		}
		i = digits(b, i+1)
	}
	return i
}

// scanLiteral checks that lit (true, false or null) starts at b[i].
func scanLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return bad
	}
	return i + len(lit)
}

// scanScalar checks the string, number or literal starting at b[i] (any
// byte but '{' and '[').
func scanScalar(b []byte, i int) int {
	switch b[i] {
	case '"':
		return scanString(b, i)
	case 't':
		return scanLiteral(b, i, "true")
	case 'f':
		return scanLiteral(b, i, "false")
	case 'n':
		return scanLiteral(b, i, "null")
	}
	return scanNumber(b, i)
}

// valueAt returns the index of the value that should start at or after
// b[i], past whitespace, or bad at the end of b.
func valueAt(b []byte, i int) int {
	if i = skipWS(b, i); i >= len(b) {
		return bad
	}
	return i
}

// memberValue checks an object member's key starting at b[i] and the colon
// after it, and returns the index of its value. keyEnd is the index just
// past the key's closing quote.
func memberValue(b []byte, i int) (keyEnd, value int) {
	if b[i] != '"' {
		return bad, bad
	}
	ke := scanString(b, i)
	if ke < 0 {
		return bad, bad
	}
	c := skipWS(b, ke)
	if c >= len(b) || b[c] != ':' {
		return bad, bad
	}
	return ke, valueAt(b, c+1)
}

// after returns what follows a value ending at b[i] inside an array or
// object closed by end: the index of the next element or member (more) or
// the index just past end (!more), or bad.
func after(b []byte, i int, end byte) (next int, more bool) {
	if i = skipWS(b, i); i >= len(b) {
		return bad, false
	}
	switch b[i] {
	case ',':
		return valueAt(b, i+1), true
	case end:
		return i + 1, false
	}
	return bad, false
}

// skipValid checks the value starting at b[i] (not whitespace) inside depth
// open arrays and objects, and returns the index just past it. stack is
// scratch for the kinds of the containers it opens; skipValid returns it,
// maybe grown, for reuse.
func skipValid(b []byte, i, depth int, stack []byte) (int, []byte) {
	stack = stack[:0]
	for {
		// A value starts at b[i].
		switch c := b[i]; c {
		case '{', '[':
			if depth+len(stack) >= maxDepth {
				return bad, stack
			}
			end := c + 2 // "}" or "]"
			j := valueAt(b, i+1)
			if j < 0 {
				return bad, stack
			}
			if b[j] == end {
				i = j + 1
				break
			}
			stack = append(stack, end)
			if c == '{' {
				if _, j = memberValue(b, j); j < 0 {
					return bad, stack
				}
			}
			i = j
			continue
		default:
			if i = scanScalar(b, i); i < 0 {
				return bad, stack
			}
		}
		// A value ends at b[i]: close containers until one has more.
		for {
			if len(stack) == 0 {
				return i, stack
			}
			end := stack[len(stack)-1]
			j, more := after(b, i, end)
			if j < 0 {
				return bad, stack
			}
			if !more {
				stack = stack[:len(stack)-1]
				i = j
				continue
			}
			if end == '}' {
				if _, j = memberValue(b, j); j < 0 {
					return bad, stack
				}
			}
			i = j
			break
		}
	}
}

// valid reports whether b is one valid JSON value with optional whitespace
// around it, exactly as json.Valid does.
func valid(b []byte) bool {
	i := valueAt(b, 0)
	if i < 0 {
		return false
	}
	end, _ := skipValid(b, i, 0, nil)
	return end >= 0 && skipWS(b, end) == len(b)
}
