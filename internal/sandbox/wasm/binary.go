package wasm

import (
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
	sectionImport = 2
	sectionMemory = 5
)

// wasmMagic is the header of every WebAssembly 1.0 binary: "\0asm" then
// version 1.
var wasmMagic = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// wasmImport is one entry of a module's import section.
type wasmImport struct {
	module, name string
	kind         byte
}

// moduleLayout is what ward needs from a module that wazero's API does not
// expose: every import with its kind, and the declared initial size of a
// memory even when the module does not export it.
type moduleLayout struct {
	imports  []wasmImport
	minPages uint64 // largest declared initial memory, in 64 KiB pages
}

// errTruncated reports a binary that ends inside a construct.
var errTruncated = errors.New("unexpected end of module")

// scanModule reads the import and memory sections of a WebAssembly binary.
// It checks only what it reads; full validation is wazero's job, done
// before this is called.
func scanModule(code []byte) (moduleLayout, error) {
	var layout moduleLayout
	if len(code) < len(wasmMagic) || string(code[:len(wasmMagic)]) != string(wasmMagic) {
		return layout, errors.New("not a WebAssembly 1.0 binary")
	}
	r := &byteReader{b: code[len(wasmMagic):]}
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return layout, err
		}
		size, err := r.u32()
		if err != nil {
			return layout, err
		}
		body, err := r.bytes(int(size))
		if err != nil {
			return layout, err
		}
		sr := &byteReader{b: body}
		switch id {
		case sectionImport:
			if layout.imports, err = scanImports(sr); err != nil {
				return layout, fmt.Errorf("import section: %w", err)
			}
		case sectionMemory:
			n, err := sr.u32()
			if err != nil {
				return layout, fmt.Errorf("memory section: %w", err)
			}
			for range n {
				min, err := sr.limitsMin()
				if err != nil {
					return layout, fmt.Errorf("memory section: %w", err)
				}
				layout.minPages = max(layout.minPages, min)
			}
		}
	}
	return layout, nil
}

func scanImports(r *byteReader) ([]wasmImport, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(r.b)) { // every import takes at least one byte
		return nil, errTruncated
	}
	imports := make([]wasmImport, 0, n)
	for range n {
		var imp wasmImport
		if imp.module, err = r.name(); err != nil {
			return nil, err
		}
		if imp.name, err = r.name(); err != nil {
			return nil, err
		}
		if imp.kind, err = r.byte(); err != nil {
			return nil, err
		}
		switch imp.kind {
		case importFunc:
			_, err = r.u32()
		case importTable:
			if _, err = r.byte(); err == nil { // reference type
				_, err = r.limitsMin()
			}
		case importMemory:
			_, err = r.limitsMin()
		case importGlobal:
			_, err = r.bytes(2) // value type, mutability
		case importTag:
			if _, err = r.byte(); err == nil { // attribute
				_, err = r.u32()
			}
		default:
			err = fmt.Errorf("unknown import kind 0x%02x", imp.kind)
		}
		if err != nil {
			return nil, err
		}
		imports = append(imports, imp)
	}
	return imports, nil
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

func (r *byteReader) u32() (uint32, error) {
	v, err := r.uleb(32)
	return uint32(v), err
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
