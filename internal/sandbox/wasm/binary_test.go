package wasm

import (
	"slices"
	"testing"

	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
)

func TestScanModule(t *testing.T) {
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
		layout, err := scanModule(sandboxtest.Module(tc.module))
		if err != nil {
			t.Errorf("%s: %v", tc.module, err)
			continue
		}
		if !slices.Equal(layout.imports, tc.imports) || layout.minPages != tc.minPages {
			t.Errorf("%s: layout = %+v, want imports %v and %d pages", tc.module, layout, tc.imports, tc.minPages)
		}
	}
}

func TestScanModuleImportKinds(t *testing.T) {
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
	layout, err := scanModule(code)
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

func TestScanModuleErrors(t *testing.T) {
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
		if _, err := scanModule([]byte(code)); err == nil {
			t.Errorf("%s: scanModule succeeded", name)
		}
	}
}

// FuzzScanModule feeds arbitrary bytes to the section scanner: it must not
// panic, and what it accepts must start with the wasm header.
func FuzzScanModule(f *testing.F) {
	for _, name := range sandboxtest.ModuleNames() {
		f.Add(sandboxtest.Module(name))
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x05\x01\x01m\x01f"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, code []byte) {
		if _, err := scanModule(code); err == nil && string(code[:8]) != string(wasmMagic) {
			t.Fatalf("accepted %q without the header", code)
		}
	})
}
