package privacy

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/wardhq/ward"
)

// Error codes of Apply.
const (
	CodeNotJSON    ward.Code = "payload_not_json"    // the payload is not valid JSON but the function has input rules
	CodeNotAllowed ward.Code = "input_not_allowed"   // strict: the payload holds values outside input.fields
	CodeNotScalar  ward.Code = "tokenize_not_scalar" // a tokenize pointer matched an object or array
)

// MaxReported bounds Result.Fields and Result.Tokenized.
const MaxReported = 256

// maxDropReported bounds the pointers a strict error names.
const maxDropReported = 10

// Tokenizer returns the token for a scalar value found under a tokenize
// pattern. pattern is the pointer as written in input.tokenize (such as
// "/items/*/sku"), so tokens are per field path. value is the scalar in
// canonical JSON form: a string decoded and re-encoded as encoding/json does
// with HTML escaping off, a number as its literal, true or false; null is
// never tokenized. value is only valid during the call and must not be
// modified.
type Tokenizer func(pattern string, value []byte) (token string, err error)

// Result is the outcome of Plan.Apply.
type Result struct {
	Payload []byte // the projected, tokenized JSON
	// Fields holds the concrete pointers of the scalar leaves and empty
	// containers the payload keeps, in document order, at most MaxReported.
	// Null placeholders in arrays are not listed.
	Fields []string
	// Tokenized holds the concrete pointers whose value was tokenized, in
	// document order, at most MaxReported.
	Tokenized []string
	// Truncated says Fields or Tokenized were cut at MaxReported, and
	// TokenizedTruncated that Tokenized was.
	Truncated, TokenizedTruncated bool
}

// Apply projects payload on the plan's fields, checks it when the plan is
// strict and tokenizes it, scanning the raw bytes once (checking the JSON
// syntax on the way, as json.Valid would): every kept value keeps its
// original bytes, except tokenized ones. The Tokenizer is called, in document
// order, only once the whole payload is known to be valid JSON. It fails with code
// payload_not_json when payload is not valid JSON, input_not_allowed when a
// strict plan drops something (the message names up to 10 dropped pointers,
// never values), tokenize_not_scalar when a tokenize pointer matches an object
// or array (Field is the concrete pointer), or with the Tokenizer's own error.
// An empty plan returns payload as it is. tok may be nil when the plan has no
// tokenize rules.
//
// For strict plans, a drop is any object member, and any array element or
// value running into a scalar or the wrong container, that the output does
// not reproduce; a null array element counts only when no null placeholder
// takes its place (under "*" one always does; under indexes, one does before
// a later kept element). Drops are named by concrete pointers such as
// "/customer/email" or "/items/3/price", in document order except that
// dropped trailing nulls come last in their array.
func (p *Plan) Apply(payload []byte, tok Tokenizer) (Result, error) {
	if p.Empty() {
		return Result{Payload: payload}, nil
	}
	if p.troot != nil && tok == nil {
		return Result{}, &ward.Error{Code: ward.CodeInternal, Message: "privacy: Apply needs a Tokenizer for tokenize rules"}
	}
	if p.schema != nil {
		if !valid(payload) {
			return Result{}, errNotJSON()
		}
		if err := validate(p.schema, payload); err != nil {
			return Result{}, err
		}
	}
	w := getWalker(payload, tok, p.strict)
	defer putWalker(w)
	// One pass checks the syntax and projects; the Tokenizer is called only
	// once the whole payload is known to be valid JSON.
	i := valueAt(payload, 0)
	if i < 0 {
		return Result{}, errNotJSON()
	}
	fall := p.froot == nil
	var f, t set
	if !fall {
		w.fst = append(w.fst, p.froot)
		f.hi = 1
	}
	if p.troot != nil {
		w.tst = append(w.tst, p.troot)
		t.hi = 1
	}
	var end int
	if !fall && !w.projects(payload[i], f) {
		if payload[i] != 'n' {
			w.drop()
		}
		w.out = append(w.out, "null"...)
		end = w.skip(i)
	} else {
		end = w.emit(i, f, fall, t)
	}
	if end < 0 || skipWS(payload, end) != len(payload) {
		return Result{}, errNotJSON()
	}
	return w.finish()
}

func errNotJSON() error {
	return &ward.Error{Code: CodeNotJSON, Field: "payload", Message: "payload is not valid JSON, which the function's input rules require"}
}

// set is a range of a walker's node stack: the trie nodes that apply to the
// current value.
type set struct{ lo, hi int }

func (s set) empty() bool { return s.lo == s.hi }

// walker is the state of one Apply. Its scratch buffers are reused across
// calls (walkers); what Apply returns never points into them.
type walker struct {
	src []byte
	out []byte // the projected payload, without its tokens (see pending)
	tok Tokenizer

	depth    int     // arrays and objects open around the current value
	fst, tst []*node // stacks of field and tokenize trie nodes
	path     []byte  // the concrete pointer of the current value
	kbuf     []byte  // scratch for decoded keys and strings
	vstack   []byte  // scratch for skipValid

	// Tokens are made once the payload is known to be valid: each pending
	// token goes at its offset in out, made from its canonical value in vals.
	pending   []pendingToken
	vals      []byte
	notScalar error // the first tokenize pointer matching a container

	arena        []byte // the reported pointers, back to back
	fieldSpan    []int  // start, end offsets in arena of the Fields
	tokSpan      []int  // start, end offsets in arena of the Tokenized
	truncated    bool   // fieldSpan or tokSpan is full
	tokTruncated bool   // tokSpan is full

	strict  bool
	dropped int
	drops   []string

	skipNullElements bool // Pointers: null array elements are not leaves
}

// pendingToken is a tokenized value whose token is yet to be made.
type pendingToken struct {
	at      int    // offset in walker.out
	pattern string // the tokenize pointer as written
	vs, ve  int    // the canonical value: walker.vals[vs:ve]
}

// walkers recycles walkers, so that Apply allocates little more than what
// it returns.
var walkers = sync.Pool{New: func() any { return new(walker) }}

// maxPooled bounds the scratch buffers kept for reuse, in bytes or items.
const maxPooled = 64 << 10

func getWalker(src []byte, tok Tokenizer, strict bool) *walker {
	w := walkers.Get().(*walker)
	w.src, w.tok, w.strict = src, tok, strict
	if w.fst == nil {
		w.fst = make([]*node, 0, 32)
		w.tst = make([]*node, 0, 32)
		w.path = make([]byte, 0, 128)
		w.arena = make([]byte, 0, 1024)
		w.fieldSpan = make([]int, 0, 128)
	}
	return w
}

// putWalker wipes what the walker holds of the payload and recycles it.
func putWalker(w *walker) {
	clear(w.out)
	clear(w.vals)
	clear(w.kbuf)
	clear(w.arena)
	clear(w.path)
	clear(w.fst[:cap(w.fst)])
	clear(w.tst[:cap(w.tst)])
	clear(w.pending)
	clear(w.drops)
	*w = walker{
		out: trim(w.out), kbuf: trim(w.kbuf), vstack: trim(w.vstack), vals: trim(w.vals),
		fst: w.fst[:0], tst: w.tst[:0], path: trim(w.path), arena: trim(w.arena),
		fieldSpan: trim(w.fieldSpan), tokSpan: trim(w.tokSpan), pending: trim(w.pending), drops: w.drops[:0],
	}
	walkers.Put(w)
}

// trim empties a scratch slice, or drops it when it has grown too large to
// keep.
func trim[E any](s []E) []E {
	if cap(s) > maxPooled {
		return nil
	}
	return s[:0]
}

// finish makes the pending tokens, in document order, and returns the
// result or the first error: the Tokenizer's, then tokenize_not_scalar, then
// input_not_allowed.
func (w *walker) finish() (Result, error) {
	size := len(w.out) + len(w.pending)*(TokenLen+2)
	out := make([]byte, 0, size)
	last := 0
	for _, pt := range w.pending {
		token, err := w.tok(pt.pattern, w.vals[pt.vs:pt.ve:pt.ve])
		if err != nil {
			return Result{}, err
		}
		out = append(out, w.out[last:pt.at]...)
		out = appendQuoted(out, token)
		last = pt.at
	}
	if w.notScalar != nil {
		return Result{}, w.notScalar
	}
	if w.dropped > 0 {
		return Result{}, w.strictError()
	}
	out = append(out, w.out[last:]...)
	r := Result{Payload: out, Truncated: w.truncated, TokenizedTruncated: w.tokTruncated}
	all := string(w.arena) // one allocation for all the reported pointers
	r.Fields = spans(all, w.fieldSpan)
	r.Tokenized = spans(all, w.tokSpan)
	return r, nil
}

// skip checks the value at src[i] and returns the index just past it, or
// bad.
func (w *walker) skip(i int) int {
	var end int
	end, w.vstack = skipValid(w.src, i, w.depth, w.vstack)
	return end
}

// open notes that an array or object starts, and reports whether that is
// within the nesting limit.
func (w *walker) open() bool {
	if w.depth >= maxDepth {
		return false
	}
	w.depth++
	return true
}

// emit writes the value starting at src[i], which the caller keeps at least
// in part, and returns the index just past it, or bad. fall means an
// ancestor (or the value itself) is named by a field pointer or there are no
// fields: the value is kept whole. f and t are the field and tokenize nodes
// for the value.
func (w *walker) emit(i int, f set, fall bool, t set) int {
	if n := w.tokenTarget(t); n != nil {
		return w.tokenize(i, n)
	}
	if fall && t.empty() {
		end := w.leaves(i)
		if end >= 0 {
			w.out = append(w.out, w.src[i:end]...)
		}
		return end
	}
	switch w.src[i] {
	case '{':
		return w.object(i, f, fall, t)
	case '[':
		return w.array(i, f, fall, t)
	}
	// A scalar kept whole that a tokenize pointer runs through.
	end := scanScalar(w.src, i)
	if end >= 0 {
		w.out = append(w.out, w.src[i:end]...)
		w.addField()
	}
	return end
}

// projects reports whether a value starting with byte c, not kept whole, has
// anything to keep under the field nodes f: objects always (maybe empty),
// arrays when some node has array children, scalars never.
func (w *walker) projects(c byte, f set) bool {
	switch c {
	case '{':
		return true
	case '[':
		for _, n := range w.fst[f.lo:f.hi] {
			if n.star != nil || len(n.idx) > 0 {
				return true
			}
		}
	}
	return false
}

func (w *walker) object(i int, f set, fall bool, t set) int {
	b := w.src
	if !w.open() {
		return bad
	}
	w.out = append(w.out, '{')
	j := valueAt(b, i+1)
	if j < 0 {
		return bad
	}
	if b[j] == '}' {
		w.depth--
		w.addField()
		w.out = append(w.out, '}')
		return j + 1
	}
	kept := 0
	for more := true; more; {
		ks := j
		ke, vs := memberValue(b, j)
		if vs < 0 {
			return bad
		}
		key := b[ks+1 : ke-1]
		if !plainString(key) {
			w.kbuf = appendUnquoted(w.kbuf[:0], key)
			key = w.kbuf
		}
		cf := set{len(w.fst), len(w.fst)}
		cfall := fall
		if !fall {
			for _, n := range w.fst[f.lo:f.hi] {
				if c := n.child(key); c != nil {
					w.fst = append(w.fst, c)
					cfall = cfall || c.end
				}
			}
			cf.hi = len(w.fst)
		}
		pl := len(w.path)
		var ve int
		if !fall && (cf.empty() || !cfall && !w.projects(b[vs], cf)) {
			if w.strict {
				w.path = appendSegment(w.path, key)
				w.drop()
			}
			ve = w.skip(vs)
		} else {
			w.path = appendSegment(w.path, key)
			ct := set{len(w.tst), len(w.tst)}
			for _, n := range w.tst[t.lo:t.hi] {
				if c := n.child(key); c != nil {
					w.tst = append(w.tst, c)
				}
			}
			ct.hi = len(w.tst)
			if kept > 0 {
				w.out = append(w.out, ',')
			}
			w.out = append(w.out, b[ks:ke]...)
			w.out = append(w.out, ':')
			ve = w.emit(vs, cf, cfall, ct)
			w.tst = w.tst[:ct.lo]
			kept++
		}
		if ve < 0 {
			return bad
		}
		w.path = w.path[:pl]
		w.fst = w.fst[:cf.lo]
		if j, more = after(b, ve, '}'); j < 0 {
			return bad
		}
	}
	w.depth--
	if kept == 0 {
		w.addField()
	}
	w.out = append(w.out, '}')
	return j
}

func (w *walker) array(i int, f set, fall bool, t set) int {
	b := w.src
	if !w.open() {
		return bad
	}
	star := false
	if !fall {
		for _, n := range w.fst[f.lo:f.hi] {
			star = star || n.star != nil
		}
	}
	w.out = append(w.out, '[')
	j := valueAt(b, i+1)
	if j < 0 {
		return bad
	}
	if b[j] == ']' {
		w.depth--
		w.addField()
		w.out = append(w.out, ']')
		return j + 1
	}
	written, pending := 0, 0 // elements written; dropped ones not yet padded
	var nulls []int          // strict: indexes of the null elements among the pending ones
	for idx, more := 0, true; more; idx++ {
		cf := set{len(w.fst), len(w.fst)}
		cfall := fall
		if !fall {
			for _, n := range w.fst[f.lo:f.hi] {
				if n.star != nil {
					w.fst = append(w.fst, n.star)
					cfall = cfall || n.star.end
				}
				if c := n.idx[idx]; c != nil {
					w.fst = append(w.fst, c)
					cfall = cfall || c.end
				}
			}
			cf.hi = len(w.fst)
		}
		pl := len(w.path)
		w.path = append(w.path, '/')
		w.path = strconv.AppendInt(w.path, int64(idx), 10)
		var ve int
		if cfall || (!cf.empty() && w.projects(b[j], cf)) {
			for ; pending > 0; pending-- {
				written = w.nullElement(written)
			}
			nulls = nulls[:0]
			ct := set{len(w.tst), len(w.tst)}
			for _, n := range w.tst[t.lo:t.hi] {
				if n.star != nil {
					w.tst = append(w.tst, n.star)
				}
				if c := n.idx[idx]; c != nil {
					w.tst = append(w.tst, c)
				}
			}
			ct.hi = len(w.tst)
			if written > 0 {
				w.out = append(w.out, ',')
			}
			ve = w.emit(j, cf, cfall, ct)
			w.tst = w.tst[:ct.lo]
			written++
		} else {
			// A null is not dropped where a null placeholder takes its
			// place: always under "*", before a later kept element else.
			switch {
			case b[j] != 'n':
				w.drop()
			case !star && w.strict:
				nulls = append(nulls, idx)
			}
			ve = w.skip(j)
			pending++
			if star { // "*" keeps every position
				for ; pending > 0; pending-- {
					written = w.nullElement(written)
				}
			}
		}
		if ve < 0 {
			return bad
		}
		w.path = w.path[:pl]
		w.fst = w.fst[:cf.lo]
		if j, more = after(b, ve, ']'); j < 0 {
			return bad
		}
	}
	w.depth--
	if w.strict {
		// Trailing null elements were dropped after all.
		for _, k := range nulls {
			pl := len(w.path)
			w.path = strconv.AppendInt(append(w.path, '/'), int64(k), 10)
			w.drop()
			w.path = w.path[:pl]
		}
	}
	if written == 0 {
		w.addField()
	}
	w.out = append(w.out, ']')
	return j
}

// nullElement writes a null array element after written others.
func (w *walker) nullElement(written int) int {
	if written > 0 {
		w.out = append(w.out, ',')
	}
	w.out = append(w.out, "null"...)
	return written + 1
}

// tokenTarget returns the tokenize pointer ending at the current value, the
// first in input.tokenize order when several do, or nil.
func (w *walker) tokenTarget(t set) *node {
	var best *node
	for _, n := range w.tst[t.lo:t.hi] {
		if n.end && (best == nil || n.order < best.order) {
			best = n
		}
	}
	return best
}

// tokenize checks the value at src[i], to be replaced by a token of
// pattern n, and returns the index just past it, or bad. The token itself
// is made by finish.
func (w *walker) tokenize(i int, n *node) int {
	b := w.src
	switch b[i] {
	case '{', '[':
		if w.notScalar == nil {
			kind := "an object"
			if b[i] == '[' {
				kind = "an array"
			}
			w.notScalar = &ward.Error{Code: CodeNotScalar, Field: string(w.path),
				Message: fmt.Sprintf("input.tokenize %s matches %s at %s; only strings, numbers and booleans can be tokenized",
					quoteShort(n.pattern), kind, quoteShort(string(w.path)))}
		}
		return w.skip(i) // the rest is only checked: the error stands unless the syntax fails
	case 'n':
		end := scanLiteral(b, i, "null")
		if end >= 0 {
			w.out = append(w.out, "null"...)
			w.addField()
		}
		return end
	}
	end := scanScalar(b, i)
	if end < 0 || w.notScalar != nil {
		return end
	}
	val := b[i:end]
	vs := len(w.vals)
	if b[i] == '"' && !plainString(val[1:len(val)-1]) {
		w.kbuf = appendUnquoted(w.kbuf[:0], val[1:len(val)-1])
		w.vals = appendEscaped(append(w.vals, '"'), w.kbuf)
		w.vals = append(w.vals, '"')
	} else {
		w.vals = append(w.vals, val...)
	}
	w.pending = append(w.pending, pendingToken{at: len(w.out), pattern: n.pattern, vs: vs, ve: len(w.vals)})
	switch {
	case len(w.tokSpan) >= 2*MaxReported:
		w.truncated, w.tokTruncated = true, true
		w.addField()
	case w.addField():
		w.tokSpan = append(w.tokSpan, w.fieldSpan[len(w.fieldSpan)-2:]...)
	default:
		w.tokSpan = append(w.tokSpan, len(w.arena), len(w.arena)+len(w.path))
		w.arena = append(w.arena, w.path...)
	}
	return end
}

// leaves checks the value at src[i], records its leaves (until Fields is
// full) and returns the index just past it, or bad.
func (w *walker) leaves(i int) int {
	b := w.src
	if len(w.fieldSpan) >= 2*MaxReported {
		w.truncated = true
		return w.skip(i)
	}
	switch b[i] {
	case '{':
		if !w.open() {
			return bad
		}
		j := valueAt(b, i+1)
		if j < 0 {
			return bad
		}
		if b[j] == '}' {
			w.depth--
			w.addField()
			return j + 1
		}
		for more := true; more; {
			ke, vs := memberValue(b, j)
			if vs < 0 {
				return bad
			}
			key := b[j+1 : ke-1]
			if !plainString(key) {
				w.kbuf = appendUnquoted(w.kbuf[:0], key)
				key = w.kbuf
			}
			pl := len(w.path)
			w.path = appendSegment(w.path, key)
			ve := w.leaves(vs)
			if ve < 0 {
				return bad
			}
			w.path = w.path[:pl]
			if j, more = after(b, ve, '}'); j < 0 {
				return bad
			}
		}
		w.depth--
		return j
	case '[':
		if !w.open() {
			return bad
		}
		j := valueAt(b, i+1)
		if j < 0 {
			return bad
		}
		if b[j] == ']' {
			w.depth--
			w.addField()
			return j + 1
		}
		for idx, more := 0, true; more; idx++ {
			pl := len(w.path)
			w.path = append(w.path, '/')
			w.path = strconv.AppendInt(w.path, int64(idx), 10)
			var ve int
			if w.skipNullElements && b[j] == 'n' {
				ve = scanLiteral(b, j, "null")
			} else {
				ve = w.leaves(j)
			}
			if ve < 0 {
				return bad
			}
			w.path = w.path[:pl]
			if j, more = after(b, ve, ']'); j < 0 {
				return bad
			}
		}
		w.depth--
		return j
	}
	end := scanScalar(b, i)
	if end >= 0 {
		w.addField()
	}
	return end
}

// addField records the current pointer in Fields, unless Fields is full.
func (w *walker) addField() bool {
	if len(w.fieldSpan) >= 2*MaxReported {
		w.truncated = true
		return false
	}
	w.fieldSpan = append(w.fieldSpan, len(w.arena), len(w.arena)+len(w.path))
	w.arena = append(w.arena, w.path...)
	return true
}

// drop notes that the current value is not kept.
func (w *walker) drop() {
	if !w.strict {
		return
	}
	w.dropped++
	if len(w.drops) < maxDropReported {
		w.drops = append(w.drops, quoteShort(string(w.path)))
	}
}

func (w *walker) strictError() error {
	var b strings.Builder
	b.WriteString("payload holds ")
	b.WriteString(strconv.Itoa(w.dropped))
	if w.dropped == 1 {
		b.WriteString(" value outside input.fields: ")
	} else {
		b.WriteString(" values outside input.fields: ")
	}
	b.WriteString(strings.Join(w.drops, ", "))
	if more := w.dropped - len(w.drops); more > 0 {
		fmt.Fprintf(&b, " and %d more", more)
	}
	return &ward.Error{Code: CodeNotAllowed, Field: "payload", Message: b.String()}
}

func spans(all string, span []int) []string {
	if len(span) == 0 {
		return nil
	}
	out := make([]string, len(span)/2)
	for k := range out {
		out[k] = all[span[2*k]:span[2*k+1]]
	}
	return out
}
