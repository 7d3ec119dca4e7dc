package privacy

import (
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/wardhq/ward"
)

// MaxPointers bounds each of input.fields and input.tokenize.
const MaxPointers = 256

// Plan is a function's compiled input rules. It is immutable and safe for
// concurrent use.
type Plan struct {
	fields   []Pointer
	tokenize []Pointer
	strict   bool
	schema   *jsonschema.Schema // nil without input.schema
	froot    *node              // nil without fields: everything is kept
	troot    *node              // nil without tokenize
}

// node is a trie node over pointer tokens. The same child serves both views
// of a token: keys (on objects) and star/idx (on arrays).
type node struct {
	keys    map[string]*node
	list    []keyed // keys' entries, looked up linearly when there are few
	star    *node
	idx     map[int]*node
	end     bool   // a pointer ends here
	pattern string // tokenize trie: the pointer ending here, as written
	order   int    // tokenize trie: its position in input.tokenize
}

// keyed is a child of a node and its key.
type keyed struct {
	key   string
	child *node
}

// maxLinear is the most keys a node looks up by comparing them one by one,
// which beats hashing for a few short keys.
const maxLinear = 8

// child returns the child for key, or nil.
func (n *node) child(key []byte) *node {
	if len(n.keys) > maxLinear {
		return n.keys[string(key)]
	}
	for i := range n.list {
		if n.list[i].key == string(key) {
			return n.list[i].child
		}
	}
	return nil
}

func (n *node) insert(p Pointer) *node {
	for _, tok := range p.tokens {
		c := n.keys[tok]
		if c == nil {
			c = &node{}
			if n.keys == nil {
				n.keys = make(map[string]*node)
			}
			n.keys[tok] = c
			n.list = append(n.list, keyed{tok, c})
			if tok == "*" {
				n.star = c
			} else if k, ok := arrayIndex(tok); ok {
				if n.idx == nil {
					n.idx = make(map[int]*node)
				}
				n.idx[k] = c
			}
		}
		n = c
	}
	n.end = true
	return n
}

// Compile checks and compiles in. Its errors are *ward.Error with code
// invalid_argument and Field naming the faulty rule, such as
// "input.fields[2]", "input.tokenize[0]" or "input.strict".
func Compile(in ward.Input) (*Plan, error) {
	if len(in.Fields) > MaxPointers {
		return nil, ward.FieldError("input.fields", "at most %d pointers are allowed, got %d", MaxPointers, len(in.Fields))
	}
	if len(in.Tokenize) > MaxPointers {
		return nil, ward.FieldError("input.tokenize", "at most %d pointers are allowed, got %d", MaxPointers, len(in.Tokenize))
	}
	if in.Strict && len(in.Fields) == 0 {
		return nil, ward.FieldError("input.strict", "needs input.fields to say what the payload may hold")
	}
	p := &Plan{strict: in.Strict}
	var err error
	if len(in.Schema) > 0 && string(in.Schema) != "null" {
		if p.schema, err = compileSchema(in.Schema); err != nil {
			return nil, err
		}
	}
	if p.fields, err = parseList("input.fields", in.Fields); err != nil {
		return nil, err
	}
	if p.tokenize, err = parseList("input.tokenize", in.Tokenize); err != nil {
		return nil, err
	}
	if len(p.fields) > 0 {
		p.froot = &node{}
		for _, f := range p.fields {
			p.froot.insert(f)
		}
		// A tokenized value is part of what the function sees (as a token):
		// a tokenize pointer outside every field is kept as if it were one.
		for _, t := range p.tokenize {
			if !coveredBy(t, p.fields) {
				p.froot.insert(t)
			}
		}
	}
	if len(p.tokenize) > 0 {
		p.troot = &node{}
	}
	for i, t := range p.tokenize {
		n := p.troot.insert(t)
		n.pattern, n.order = t.raw, i
	}
	return p, nil
}

func parseList(name string, list []string) ([]Pointer, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]Pointer, 0, len(list))
	seen := make(map[string]int, len(list))
	for i, s := range list {
		field := fmt.Sprintf("%s[%d]", name, i)
		p, why := parsePointer(s)
		if why != "" {
			return nil, ward.FieldError(field, "invalid JSON pointer %s: %s", quoteShort(s), why)
		}
		if j, dup := seen[s]; dup {
			return nil, ward.FieldError(field, "pointer %s repeats %s[%d]", quoteShort(s), name, j)
		}
		seen[s] = i
		out = append(out, p)
	}
	return out, nil
}

// coveredBy reports whether t lies within (equal to or below) some field
// pointer, a field's "*" matching "*" or an index in t.
func coveredBy(t Pointer, fields []Pointer) bool {
	for _, f := range fields {
		if within(t, f) {
			return true
		}
	}
	return false
}

func within(t, f Pointer) bool {
	if len(f.tokens) > len(t.tokens) {
		return false
	}
	for i, ft := range f.tokens {
		tt := t.tokens[i]
		if ft == tt {
			continue
		}
		if _, isIdx := arrayIndex(tt); ft == "*" && isIdx {
			continue
		}
		return false
	}
	return true
}

// Empty reports whether the plan has no rules at all (no fields, no tokenize,
// not strict): payloads then pass untouched, even when they are not JSON.
func (p *Plan) Empty() bool {
	return p == nil || (len(p.fields) == 0 && len(p.tokenize) == 0 && !p.strict && p.schema == nil)
}
