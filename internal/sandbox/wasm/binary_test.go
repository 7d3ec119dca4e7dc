package wasm

import (
	"bytes"
	"slices"
	"testing"

	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
)

// leb encodes v as unsigned LEB128.
func leb(v uint64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

// cat concatenates byte slices and strings.
func cat(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch p := p.(type) {
		case []byte:
			out = append(out, p...)
		case string:
			out = append(out, p...)
		case byte:
			out = append(out, p)
		case int:
			out = append(out, byte(p))
		}
	}
	return out
}

// sec encodes a section.
func sec(id byte, body ...any) []byte {
	b := cat(body...)
	return cat(id, leb(uint64(len(b))), b)
}

// sized prefixes its contents with their length.
func sized(parts ...any) []byte {
	b := cat(parts...)
	return cat(leb(uint64(len(b))), b)
}

// mod encodes a module from sections.
func mod(sections ...[]byte) []byte { return cat(append([]any{wasmMagic}, anys(sections)...)...) }

func anys(bs [][]byte) []any {
	out := make([]any, len(bs))
	for i, b := range bs {
		out[i] = b
	}
	return out
}

func TestCheckModule(t *testing.T) {
	t.Parallel()
	wasi := func(names ...string) []wasmImport {
		var out []wasmImport
		for _, n := range names {
			out = append(out, wasmImport{module: "wasi_snapshot_preview1", name: n, kind: importFunc})
		}
		return out
	}
	cases := []struct {
		module   string
		imports  []wasmImport
		minPages uint64
	}{
		{"echo", wasi("fd_read", "fd_write", "proc_exit"), 1},
		{"loop", nil, 0},
		{"bigmem", nil, 512},
		{"hiddenmem", nil, 512},
		{"badimport", []wasmImport{{"env", "host_call", importFunc}}, 0},
	}
	for _, tc := range cases {
		layout, err := checkModule(sandboxtest.Module(tc.module))
		if err != nil {
			t.Errorf("%s: %v", tc.module, err)
			continue
		}
		if !slices.Equal(layout.imports, tc.imports) || layout.minPages != tc.minPages {
			t.Errorf("%s: layout = %+v, want imports %v and %d pages", tc.module, layout, tc.imports, tc.minPages)
		}
	}
}

func TestCheckModuleAcceptsToolchainOutput(t *testing.T) {
	t.Parallel()
	for _, name := range sandboxtest.ModuleNames() {
		code := sandboxtest.Module(name)
		layout, err := checkModule(code)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		// Only tables without a maximum are rewritten (shapes and
		// tablegrow have some); the result passes unchanged.
		growable := name == "shapes" || name == "tablegrow"
		if bytes.Equal(layout.code, code) == growable {
			t.Errorf("%s: code changed = %v, want %v", name, !bytes.Equal(layout.code, code), growable)
		}
		if again, err := checkModule(layout.code); err != nil || !bytes.Equal(again.code, layout.code) {
			t.Errorf("%s: the checked code does not pass again unchanged (%v)", name, err)
		}
	}
	for _, name := range []string{sandboxtest.GoHello, sandboxtest.GoProbe} {
		code := sandboxtest.GoModule(t, name)
		orig := bytes.Clone(code)
		layout, err := checkModule(code)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(layout.code) >= len(code) || !bytes.Equal(code, orig) {
			t.Errorf("%s: custom sections not dropped (%d of %d bytes kept), or the input changed", name, len(layout.code), len(code))
		}
		if _, err := checkModule(layout.code); err != nil {
			t.Errorf("%s without custom sections: %v", name, err)
		}
	}
}

func TestCheckModuleDropsCustomSections(t *testing.T) {
	t.Parallel()
	echo := sandboxtest.Module("echo")
	custom := sec(0, leb(4), "name", 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f) // a name section claiming 2^32 names
	for _, code := range [][]byte{
		cat(echo, custom),
		cat(wasmMagic, custom, echo[8:]),
		cat(wasmMagic, custom, echo[8:], custom),
	} {
		orig := bytes.Clone(code)
		layout, err := checkModule(code)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(layout.code, echo) {
			t.Errorf("layout.code = %x, want echo without custom sections", layout.code)
		}
		if !bytes.Equal(code, orig) {
			t.Error("checkModule modified its input")
		}
	}
}

func TestCheckModuleBounds(t *testing.T) {
	t.Parallel()
	huge := leb(0xffff_fff0)
	i32 := cat(0x41, 0x00, 0x0b) // i32.const 0; end
	cases := []struct {
		name string
		code []byte
	}{
		{"type count", mod(sec(1, huge))},
		{"param count", mod(sec(1, 1, 0x60, huge))},
		{"result count", mod(sec(1, 1, 0x60, 0, huge))},
		{"rec group count", mod(sec(1, 1, 0x4e, huge))},
		{"rec group of a non-function", mod(sec(1, 1, 0x4e, 1, 0x5f, 0))},
		{"unsupported type form", mod(sec(1, 1, 0x5e, 0, 0))},
		{"import count", mod(sec(2, huge))},
		{"import module name length", mod(sec(2, 1, huge, "m"))},
		{"import field name length", mod(sec(2, 1, 1, "m", huge, "f"))},
		{"function count", mod(sec(3, huge))},
		{"table count", mod(sec(4, huge))},
		{"table too large", mod(sec(4, 1, 0x70, 0x00, leb(maxTableElems+1)))},
		{"table maximum too large", mod(sec(4, 1, 0x70, 0x01, 1, leb(maxTableElems+1)))},
		{"tables too large in all", mod(sec(4, 2, 0x70, 0x00, leb(maxTableElems/2+1), 0x6f, 0x01, 0, leb(maxTableElems/2)))},
		{"table limits flags", mod(sec(4, 1, 0x70, 0x02, 1))},
		{"table count past the end", mod(sec(4, 2, 0x70, 0x00, 1))},
		{"table with a bad initializer", mod(sec(4, 1, 0x40, 0x00, 0x70, 0x00, 1, 0xff))},
		{"memory count", mod(sec(5, huge))},
		{"global count", mod(sec(6, huge))},
		{"global with a bad initializer", mod(sec(6, 1, 0x7f, 0x00, 0x20, 0x00, 0x0b))},
		{"global initializer without end", mod(sec(6, 1, 0x7f, 0x00, 0x41, 0x00))},
		{"global with a bad vector constant", mod(sec(6, 1, 0x7b, 0x00, 0xfd, 0x0d, make([]byte, 16), 0x0b))},
		{"export count", mod(sec(7, huge))},
		{"export name length", mod(sec(7, 1, huge, "e"))},
		{"the fuzz crasher", []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01`\x00\x00\x03\x02\x01\x00\x05\x03\x01\x00\x01\x07\x13\xff\xff\xff\x7fmory\x02\x00\x06_\xf3\xf3\xf3r@\x00\x00\x00\x11")},
		{"element count", mod(sec(9, huge))},
		{"element form", mod(sec(9, 1, 8))},
		{"element index count (form 0)", mod(sec(9, 1, 0, i32, huge))},
		{"element index count (form 1)", mod(sec(9, 1, 1, 0x00, huge))},
		{"element index count (form 2)", mod(sec(9, 1, 2, 0, i32, 0x00, huge))},
		{"element index count (form 3)", mod(sec(9, 1, 3, 0x00, huge))},
		{"element expression count (form 4)", mod(sec(9, 1, 4, i32, huge))},
		{"element expression count (form 5)", mod(sec(9, 1, 5, 0x70, huge))},
		{"element expression count (form 6)", mod(sec(9, 1, 6, 0, i32, 0x70, huge))},
		{"element expression count (form 7)", mod(sec(9, 1, 7, 0x70, huge))},
		{"element with a bad offset", mod(sec(9, 1, 0, 0x20, 0x00, 0x0b, 0))},
		{"code count", mod(sec(10, huge))},
		{"code body size", mod(sec(10, 1, huge, 0x00, 0x0b))},
		{"local entry count", mod(sec(10, 1, 6, huge, 0x0b))},
		{"too many locals", mod(sec(10, 1, sized(2, leb(maxLocals), 0x7f, 1, 0x7e, 0x0b)))},
		{"too many locals in one entry", mod(sec(10, 1, sized(1, leb(1<<32-1), 0x7f, 0x0b)))},
		{"data count", mod(sec(11, huge))},
		{"data length", mod(sec(11, 1, 1, huge, "x"))},
		{"data length (form 0)", mod(sec(11, 1, 0, i32, huge, "x"))},
		{"data length (form 2)", mod(sec(11, 1, 2, 0, i32, huge, "x"))},
		{"data form", mod(sec(11, 1, 3, 0))},
		{"tag count", mod(sec(13, huge))},
		{"section past the end", cat(mod(sec(1, 0)), 1, huge)},
	}
	for _, tc := range cases {
		if _, err := checkModule(tc.code); err == nil {
			t.Errorf("%s: checkModule accepted % x", tc.name, tc.code)
		}
	}

	// The same shapes within bounds pass.
	ok := []struct {
		name string
		code []byte
	}{
		{"rec group", mod(sec(1, 1, 0x4e, 2, 0x60, 1, 0x7f, 0, 0x60, 0, 1, 0x63, 0x70))},
		{"element forms", mod(sec(9, 8,
			0, i32, 1, 0,
			1, 0x00, 1, 0,
			2, 0, i32, 0x00, 1, 0,
			3, 0x00, 0,
			4, i32, 1, 0xd2, 0, 0x0b,
			5, 0x70, 1, 0xd0, 0x70, 0x0b,
			6, 0, i32, 0x64, 0x70, 1, 0xd0, 0x70, 0x0b,
			7, 0x70, 0))},
		{"constant expressions", mod(sec(6, 6,
			0x7f, 0, 0x41, 0x7f, 0x41, 1, 0x6a, 0x0b,
			0x7e, 0, 0x42, 0x80, 0x01, 0x0b,
			0x7d, 0, 0x43, 0, 0, 0, 0, 0x0b,
			0x7c, 0, 0x44, make([]byte, 8), 0x0b,
			0x7b, 0, 0xfd, 0x0c, make([]byte, 16), 0x0b,
			0x7f, 0, 0x23, 0, 0x0b))},
		{"locals at the bound", mod(sec(10, 1, sized(2, leb(maxLocals-1), 0x7f, 1, 0x63, 0x70, 0x0b)))},
		{"data forms", mod(sec(11, 3, 0, i32, 1, "a", 1, 2, "bc", 2, 0, i32, 0))},
	}
	for _, tc := range ok {
		if _, err := checkModule(tc.code); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestCheckModuleTables(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		in, want []byte
	}{
		{"no maximum gets its minimum", mod(sec(4, 1, 0x70, 0x00, 5)), mod(sec(4, 1, 0x70, 0x01, 5, 5))},
		{"a maximum stays", mod(sec(4, 1, 0x70, 0x01, 5, 9)), mod(sec(4, 1, 0x70, 0x01, 5, 9))},
		{"64-bit", mod(sec(4, 1, 0x70, 0x04, leb(300))), mod(sec(4, 1, 0x70, 0x05, leb(300), leb(300)))},
		{"with an initializer", mod(sec(4, 1, 0x40, 0x00, 0x64, 0x70, 0x00, 2, 0xd2, 0, 0x0b)),
			mod(sec(4, 1, 0x40, 0x00, 0x64, 0x70, 0x01, 2, 2, 0xd2, 0, 0x0b))},
		{"two tables, sections around", mod(sec(1, 0), sec(4, 2, 0x70, 0x00, 1, 0x6f, 0x00, 2), sec(5, 0)),
			mod(sec(1, 0), sec(4, 2, 0x70, 0x01, 1, 1, 0x6f, 0x01, 2, 2), sec(5, 0))},
		{"at the bound", mod(sec(4, 1, 0x70, 0x00, leb(maxTableElems))),
			mod(sec(4, 1, 0x70, 0x01, leb(maxTableElems), leb(maxTableElems)))},
	}
	for _, tc := range cases {
		orig := bytes.Clone(tc.in)
		layout, err := checkModule(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !bytes.Equal(layout.code, tc.want) {
			t.Errorf("%s: code = % x, want % x", tc.name, layout.code, tc.want)
		}
		if !bytes.Equal(tc.in, orig) {
			t.Errorf("%s: the input changed", tc.name)
		}
	}
}

func TestCheckModuleImportKinds(t *testing.T) {
	t.Parallel()
	// An import section with one import of every kind, hand-assembled.
	imp := func(field string, desc ...byte) []byte {
		b := append([]byte{1, 'm', byte(len(field))}, field...)
		return append(b, desc...)
	}
	var body []byte
	body = append(body, 6)
	body = append(body, imp("f", 0x00, 0x00)...)                         // func, type 0
	body = append(body, imp("t", 0x01, 0x70, 0x01, 1, 2)...)             // table funcref, min 1 max 2
	body = append(body, imp("m", 0x02, 0x00, 3)...)                      // memory, min 3
	body = append(body, imp("g", 0x03, 0x7f, 0x00)...)                   // global i32 const
	body = append(body, imp("e", 0x04, 0x00, 0x00)...)                   // tag
	body = append(body, imp("w", 0x02, 0x05, 0x80, 0x01, 0x90, 0x01)...) // memory64, min 128 max 144
	code := append([]byte("\x00asm\x01\x00\x00\x00\x02"), byte(len(body)))
	code = append(code, body...)
	layout, err := checkModule(code)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []byte
	for _, i := range layout.imports {
		kinds = append(kinds, i.kind)
	}
	if want := []byte{importFunc, importTable, importMemory, importGlobal, importTag, importMemory}; !slices.Equal(kinds, want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}
	for _, kind := range kinds {
		if kindName(kind) == "" {
			t.Errorf("kind %d has no name", kind)
		}
	}
}

func TestCheckModuleErrors(t *testing.T) {
	t.Parallel()
	header := "\x00asm\x01\x00\x00\x00"
	for name, code := range map[string]string{
		"empty":                 "",
		"bad magic":             "\x00wasm\x01\x00\x00",
		"section without size":  header + "\x05",
		"section past the end":  header + "\x05\x10\x01",
		"size too long":         header + "\x05\xff\xff\xff\xff\xff\x01",
		"size over 32 bits":     header + "\x05\xff\xff\xff\xff\x7f",
		"memory count missing":  header + "\x05\x00",
		"memory limits missing": header + "\x05\x01\x01",
		"bad limits flags":      header + "\x05\x03\x01\x08\x01",
		"max missing":           header + "\x05\x02\x01\x01",
		"import count too big":  header + "\x02\x02\x7f\x00",
		"import name past end":  header + "\x02\x03\x01\x05m",
		"unknown import kind":   header + "\x02\x06\x01\x01m\x01f\x09",
		"import desc missing":   header + "\x02\x05\x01\x01m\x01f",
	} {
		if _, err := checkModule([]byte(code)); err == nil {
			t.Errorf("%s: checkModule succeeded", name)
		}
	}
}

// FuzzCheckModule feeds arbitrary bytes to checkModule: it must not panic,
// what it accepts starts with the wasm header, and what it returns passes
// again unchanged.
func FuzzCheckModule(f *testing.F) {
	for _, name := range sandboxtest.ModuleNames() {
		f.Add(sandboxtest.Module(name))
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x05\x01\x01m\x01f"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, code []byte) {
		layout, err := checkModule(code)
		if err != nil {
			return
		}
		if string(code[:8]) != string(wasmMagic) {
			t.Fatalf("accepted %q without the header", code)
		}
		if again, err := checkModule(layout.code); err != nil || !bytes.Equal(again.code, layout.code) {
			t.Fatalf("the kept code does not pass again unchanged: %v", err)
		}
	})
}
