package sandboxtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestModulesAssembled checks that every committed .wasm is what wat2wasm
// makes of its .wat source.
func TestModulesAssembled(t *testing.T) {
	t.Parallel()
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		if os.Getenv("WARD_TEST_WABT") != "" {
			t.Fatal("WARD_TEST_WABT is set but wat2wasm (wabt) is not on PATH")
		}
		t.Skip("wat2wasm (wabt) is not on PATH; cannot check the committed .wasm files against their sources")
	}
	names := ModuleNames()
	if len(names) == 0 {
		t.Fatal("no modules embedded")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := moduleSource(name)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			in, out := filepath.Join(dir, name+".wat"), filepath.Join(dir, name+".wasm")
			if err := os.WriteFile(in, src, 0o644); err != nil {
				t.Fatal(err)
			}
			if msg, err := exec.Command(wat2wasm, in, "-o", out).CombinedOutput(); err != nil {
				t.Fatalf("wat2wasm %s: %v: %s", name, err, msg)
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if got := Module(name); !bytes.Equal(got, want) {
				t.Errorf("modules/%s.wasm is stale: run wat2wasm modules/%[1]s.wat -o modules/%[1]s.wasm", name)
			}
		})
	}
}

func TestModule(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"echo", "env", "loop", "trap", "recurse", "oob", "membomb", "flood", "exit3", "logflood", "bigmem", "hiddenmem", "shapes", "tablegrow", "nostart", "badimport"} {
		if code := Module(name); !bytes.HasPrefix(code, []byte("\x00asm\x01\x00\x00\x00")) {
			t.Errorf("Module(%q) = %.16q, want a WebAssembly binary", name, code)
		}
		if !slices.Contains(ModuleNames(), name) {
			t.Errorf("ModuleNames() lacks %q", name)
		}
	}
	if code := Module("no-such-module"); code != nil {
		t.Errorf("Module(no-such-module) = %d bytes, want nil", len(code))
	}
}

func TestArtifactOf(t *testing.T) {
	t.Parallel()
	a := ArtifactOf([]byte("abc"))
	const want = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if a.Digest != want || string(a.Code) != "abc" {
		t.Errorf("ArtifactOf(abc) = %+v, want digest %s", a, want)
	}
}

func TestGoModules(t *testing.T) {
	t.Parallel()
	for _, name := range []string{GoMemBomb, GoPanic, GoProbe, GoHello, GoSlowLog} {
		if code := GoModule(t, name); !bytes.HasPrefix(code, []byte("\x00asm")) {
			t.Errorf("GoModule(%s) = %.16q, want a WebAssembly binary", name, code)
		}
	}
	mods := WasmModules(t)
	if got := len(mods.all()); got != 12 {
		t.Errorf("WasmModules supplies %d artifacts, want 12", got)
	}
}
