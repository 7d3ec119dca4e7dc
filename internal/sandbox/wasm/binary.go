package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Import kinds in the WebAssembly binary format.
const (
	importFunc   = 0x00
	importTable  = 0x01
	importMemory = 0x02
	importGlobal = 0x03
	importTag    = 0x04
)

// Section ids in the WebAssembly binary format.
const (
	sectionCustom   = 0
	sectionType     = 1
	sectionImport   = 2
	sectionFunction = 3
	sectionTable    = 4
	sectionMemory   = 5
	sectionGlobal   = 6
	sectionExport   = 7
	sectionElement  = 9
	sectionCode     = 10
	sectionData     = 11
	sectionTag      = 13
)

// Bounds checkModule enforces on what a module declares.
const (
	maxLocals = 50_000 // per function, as in V8 and wasmtime
	// maxTableElems bounds the elements all tables of a module may ever
	// hold (8 bytes each, per instance, outside the memory limit).
	maxTableElems = 1 << 20
)

// Reference type prefixes: a heap type follows.
const (
	refNullable    = 0x63
	refNonNullable = 0x64
)

// wasmMagic is the header of every WebAssembly 1.0 binary: "\0asm" then
// version 1.
var wasmMagic = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// wasmImport is one entry of a module's import section.
type wasmImport struct {
	module, name string
	kind         byte
}

// moduleLayout is what checkModule learns about a module.
type moduleLayout struct {
	// code is the module without its custom sections: what is compiled.
	code []byte
	// imports lists every import with its kind.
	imports []wasmImport
	// minPages is the declared initial memory, in 64 KiB pages, even when
	// the memory is not exported (wazero's API shows exported ones only).
	minPages uint64
}

// errTruncated reports a binary that ends inside a construct.
var errTruncated = errors.New("unexpected end of module")

// checkModule walks the structure of a WebAssembly binary before wazero
// decodes it. wazero sizes allocations by the counts and lengths a module
// declares before reading what they count, so a module of a few bytes can
// declare a vector of 2³² entries and exhaust the host's memory while being
// decoded. checkModule proves every such count and length fits in the bytes
// that follow it and bounds the locals per function. It also rewrites what
// would let a module take unbounded host memory later: a table without a
// maximum size gets its initial size as maximum (table.grow then fails,
// as it may; toolchains do not grow tables), and all tables together may
// hold at most maxTableElems elements. It drops custom sections (ward needs
// none, and wazero decodes the "name" section unchecked), and reports the
// imports and the initial memory. Instruction-level checks are left to
// wazero's validation.
func checkModule(code []byte) (moduleLayout, error) {
	var layout moduleLayout
	if len(code) < len(wasmMagic) || string(code[:len(wasmMagic)]) != string(wasmMagic) {
		return layout, errors.New("not a WebAssembly 1.0 binary")
	}
	r := &byteReader{b: code[len(wasmMagic):]}
	kept := code[:len(wasmMagic):len(wasmMagic)] // sections appended here once one changes
	changed := false
	var tableElems uint64
	for !r.done() {
		start := len(code) - len(r.b)
		id, err := r.byte()
		if err != nil {
			return layout, err
		}
		size, err := r.u32()
		if err != nil {
			return layout, fmt.Errorf("section %d: %w", id, err)
		}
		body, err := r.bytes(int(size))
		if err != nil {
			return layout, fmt.Errorf("section %d: %w", id, err)
		}
		if id == sectionCustom {
			changed = true
			continue
		}
		var rewritten []byte
		if id == sectionTable {
			rewritten, err = tableSection(body, &tableElems)
		} else {
			err = checkSection(id, &byteReader{b: body}, &layout)
		}
		if err != nil {
			return layout, fmt.Errorf("section %d: %w", id, err)
		}
		end := len(code) - len(r.b)
		switch {
		case rewritten != nil && !bytes.Equal(rewritten, body):
			changed = true
			kept = append(kept, id)
			kept = binary.AppendUvarint(kept, uint64(len(rewritten)))
			kept = append(kept, rewritten...)
		case changed:
			kept = append(kept, code[start:end]...)
		default:
			kept = code[:end:end] // no copy while nothing changes
		}
	}
	layout.code = kept
	return layout, nil
}

// tableSection checks a table section and returns it with every table
// given a maximum size, adding what the tables may hold to *elems.
func tableSection(body []byte, elems *uint64) ([]byte, error) {
	r := &byteReader{b: body}
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	out := binary.AppendUvarint(make([]byte, 0, len(body)+8), uint64(n))
	for range n {
		entry := r.b
		prefix, err := r.tableTypePrefix()
		if err != nil {
			return nil, err
		}
		out = append(out, entry[:len(entry)-len(r.b)]...)
		flags, err := r.byte()
		if err != nil {
			return nil, err
		}
		if flags&^0x05 != 0 { // bit 0: a maximum follows; bit 2: 64-bit
			return nil, fmt.Errorf("unknown table limits flags 0x%02x", flags)
		}
		bits := uint(32)
		if flags&0x04 != 0 {
			bits = 64
		}
		min, err := r.uleb(bits)
		if err != nil {
			return nil, err
		}
		limit := min
		if flags&0x01 != 0 {
			if limit, err = r.uleb(bits); err != nil {
				return nil, err
			}
		}
		if *elems += limit; limit > maxTableElems || *elems > maxTableElems {
			return nil, fmt.Errorf("tables of more than %d elements in all", maxTableElems)
		}
		out = append(out, flags|0x01)
		out = binary.AppendUvarint(out, min)
		out = binary.AppendUvarint(out, limit)
		if prefix.withInit {
			expr := r.b
			if err := r.constExpr(); err != nil {
				return nil, err
			}
			out = append(out, expr[:len(expr)-len(r.b)]...)
		}
	}
	out = append(out, r.b...) // trailing bytes, for wazero to judge
	return out, nil
}

// checkSection checks the body of one known section other than the table
// section; others are left to wazero, which rejects what it does not know.
func checkSection(id byte, r *byteReader, layout *moduleLayout) error {
	switch id {
	case sectionType:
		return r.each(r.funcTypeOrGroup)
	case sectionImport:
		return r.each(func() error {
			imp, err := r.importEntry()
			layout.imports = append(layout.imports, imp)
			return err
		})
	case sectionFunction, sectionTag:
		_, err := r.count() // the entries have no nested lengths
		return err
	case sectionMemory:
		return r.each(func() error {
			min, err := r.limitsMin()
			layout.minPages = max(layout.minPages, min)
			return err
		})
	case sectionGlobal:
		return r.each(func() error {
			if err := r.valType(); err != nil {
				return err
			}
			if _, err := r.byte(); err != nil { // mutability
				return err
			}
			return r.constExpr()
		})
	case sectionExport:
		return r.each(func() error {
			if _, err := r.name(); err != nil {
				return err
			}
			if _, err := r.byte(); err != nil { // kind
				return err
			}
			_, err := r.u32()
			return err
		})
	case sectionElement:
		return r.each(r.elementSegment)
	case sectionCode:
		i := 0
		return r.each(func() error {
			i++
			return r.functionBody(i - 1)
		})
	case sectionData:
		return r.each(r.dataSegment)
	}
	return nil
}

// byteReader decodes the primitive encodings of the binary format.
type byteReader struct{ b []byte }

func (r *byteReader) done() bool { return len(r.b) == 0 }

func (r *byteReader) byte() (byte, error) {
	if len(r.b) == 0 {
		return 0, errTruncated
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

func (r *byteReader) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(r.b) {
		return nil, errTruncated
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b, nil
}

// uleb decodes an unsigned LEB128 number of at most bits bits.
func (r *byteReader) uleb(bits uint) (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= bits {
			return 0, errors.New("integer too long")
		}
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if bits < 64 && v>>bits != 0 {
				return 0, errors.New("integer too large")
			}
			return v, nil
		}
	}
}

// skipLEB skips a LEB128 number (signed or not) of at most bits bits.
func (r *byteReader) skipLEB(bits uint) error {
	for n := uint(0); n < (bits+6)/7; n++ {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return errors.New("integer too long")
}

func (r *byteReader) u32() (uint32, error) {
	v, err := r.uleb(32)
	return uint32(v), err
}

// count decodes the length of a vector whose every entry takes at least a
// byte, and checks that many bytes follow.
func (r *byteReader) count() (uint32, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n) > uint64(len(r.b)) {
		return 0, fmt.Errorf("vector of %d entries in %d bytes", n, len(r.b))
	}
	return n, nil
}

// each decodes a vector, calling entry for each of its entries.
func (r *byteReader) each(entry func() error) error {
	n, err := r.count()
	if err != nil {
		return err
	}
	for range n {
		if err := entry(); err != nil {
			return err
		}
	}
	return nil
}

func (r *byteReader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(int(n))
	return string(b), err
}

// limitsMin decodes a limits construct and returns its minimum. Flag bit 0
// says a maximum follows; bit 2 marks 64-bit limits.
func (r *byteReader) limitsMin() (uint64, error) {
	flags, err := r.byte()
	if err != nil {
		return 0, err
	}
	if flags > 0x07 {
		return 0, fmt.Errorf("unknown limits flags 0x%02x", flags)
	}
	bits := uint(32)
	if flags&0x04 != 0 {
		bits = 64
	}
	min, err := r.uleb(bits)
	if err != nil {
		return 0, err
	}
	if flags&0x01 != 0 {
		if _, err := r.uleb(bits); err != nil {
			return 0, err
		}
	}
	return min, nil
}

// valType decodes a value type: one byte, or a reference type prefix and a
// heap type.
func (r *byteReader) valType() error {
	b, err := r.byte()
	if err != nil {
		return err
	}
	if b == refNullable || b == refNonNullable {
		return r.skipLEB(33)
	}
	return nil
}

// funcTypeOrGroup decodes a function type or a recursive group of them.
func (r *byteReader) funcTypeOrGroup() error {
	form, err := r.byte()
	if err != nil {
		return err
	}
	if form != 0x4e { // not a rec group
		return r.funcType(form)
	}
	return r.each(func() error {
		form, err := r.byte()
		if err != nil {
			return err
		}
		return r.funcType(form)
	})
}

func (r *byteReader) funcType(form byte) error {
	if form != 0x60 {
		return fmt.Errorf("unsupported type form 0x%02x", form)
	}
	if err := r.each(r.valType); err != nil { // parameters
		return err
	}
	return r.each(r.valType) // results
}

func (r *byteReader) importEntry() (wasmImport, error) {
	var imp wasmImport
	var err error
	if imp.module, err = r.name(); err != nil {
		return imp, err
	}
	if imp.name, err = r.name(); err != nil {
		return imp, err
	}
	if imp.kind, err = r.byte(); err != nil {
		return imp, err
	}
	switch imp.kind {
	case importFunc:
		_, err = r.u32()
	case importTable:
		if _, err = r.tableTypePrefix(); err == nil {
			_, err = r.limitsMin()
		}
	case importMemory:
		_, err = r.limitsMin()
	case importGlobal:
		if err = r.valType(); err == nil {
			_, err = r.byte() // mutability
		}
	case importTag:
		if _, err = r.byte(); err == nil { // attribute
			_, err = r.u32()
		}
	default:
		err = fmt.Errorf("unknown import kind 0x%02x", imp.kind)
	}
	return imp, err
}

// tablePrefix is what precedes the limits of a table type.
type tablePrefix struct{ withInit bool }

// tableTypePrefix decodes a table type up to its limits: an optional
// marker announcing an initializer, and the reference type.
func (r *byteReader) tableTypePrefix() (tablePrefix, error) {
	var p tablePrefix
	b, err := r.byte()
	if err != nil {
		return p, err
	}
	if b == 0x40 {
		p.withInit = true
		if _, err := r.byte(); err != nil { // reserved
			return p, err
		}
		if b, err = r.byte(); err != nil {
			return p, err
		}
	}
	if b == refNullable || b == refNonNullable {
		return p, r.skipLEB(33)
	}
	return p, nil
}

// constExpr decodes a constant expression up to its end opcode.
func (r *byteReader) constExpr() error {
	for {
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b: // end
			return nil
		case 0x41: // i32.const
			err = r.skipLEB(32)
		case 0x42: // i64.const
			err = r.skipLEB(64)
		case 0x43: // f32.const
			_, err = r.bytes(4)
		case 0x44: // f64.const
			_, err = r.bytes(8)
		case 0x23, 0xd2: // global.get, ref.func
			_, err = r.u32()
		case 0xd0: // ref.null
			err = r.skipLEB(33)
		case 0xfd: // v128.const
			var sub byte
			if sub, err = r.byte(); err == nil && sub != 0x0c {
				err = fmt.Errorf("unsupported vector opcode 0x%02x in a constant expression", sub)
			} else if err == nil {
				_, err = r.bytes(16)
			}
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constants: add, sub, mul
		default:
			return fmt.Errorf("unsupported opcode 0x%02x in a constant expression", op)
		}
		if err != nil {
			return err
		}
	}
}

// elementSegment decodes one element segment in any of its eight forms.
func (r *byteReader) elementSegment() error {
	form, err := r.u32()
	if err != nil {
		return err
	}
	if form > 7 {
		return fmt.Errorf("unknown element segment form %d", form)
	}
	if form&0x02 != 0 && form&0x01 == 0 { // active with a table index
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	if form&0x01 == 0 { // active: an offset
		if err := r.constExpr(); err != nil {
			return err
		}
	}
	if form&0x03 != 0 { // an element kind or reference type
		if form&0x04 == 0 {
			_, err = r.byte()
		} else {
			err = r.valType()
		}
		if err != nil {
			return err
		}
	}
	if form&0x04 == 0 {
		return r.each(func() error { _, err := r.u32(); return err })
	}
	return r.each(r.constExpr)
}

// functionBody decodes the locals of the i-th function body and skips its
// code.
func (r *byteReader) functionBody(i int) error {
	size, err := r.u32()
	if err != nil {
		return err
	}
	body, err := r.bytes(int(size))
	if err != nil {
		return err
	}
	br := &byteReader{b: body}
	var locals uint64
	err = br.each(func() error {
		n, err := br.u32()
		if err != nil {
			return err
		}
		if locals += uint64(n); locals > maxLocals {
			return fmt.Errorf("function %d declares more than %d locals", i, maxLocals)
		}
		return br.valType()
	})
	return err
}

// dataSegment decodes one data segment.
func (r *byteReader) dataSegment() error {
	form, err := r.u32()
	if err != nil {
		return err
	}
	switch form {
	case 0: // active
		err = r.constExpr()
	case 1: // passive
	case 2: // active with a memory index
		if _, err = r.u32(); err == nil {
			err = r.constExpr()
		}
	default:
		err = fmt.Errorf("unknown data segment form %d", form)
	}
	if err != nil {
		return err
	}
	n, err := r.u32()
	if err != nil {
		return err
	}
	_, err = r.bytes(int(n))
	return err
}
