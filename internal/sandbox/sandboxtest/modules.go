package sandboxtest

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/sandbox"
)

// modules holds the WAT sources in modules/ and their assembled .wasm,
// committed side by side (TestModulesAssembled checks they agree).
//
//go:embed modules/*.wat modules/*.wasm
var modules embed.FS

// goSources holds the Go programs built at test time: testdata/go for
// GOOS=wasip1 and for Linux, testdata/golinux for Linux only.
//
//go:embed testdata/go testdata/golinux
var goSources embed.FS

// Module returns the assembled WebAssembly module modules/<name>.wasm, or
// nil if there is none. The WAT modules are:
//
//	echo       copies stdin to stdout, exits 0 (the platform's benchmark task)
//	env        writes its environment to stdout, one NAME=value per line
//	loop       never ends
//	trap       executes unreachable
//	recurse    recurses until the call stack overflows
//	oob        reads past the end of its memory
//	membomb    grows memory until refused, then traps
//	flood      writes to stdout forever, ignoring errors
//	exit3      exits with status 3
//	logflood   writes stdin to stderr 1024 times, each copy split in two writes
//	bigmem     declares 32 MiB of initial memory (exported), exits 0
//	hiddenmem  declares 32 MiB of initial memory (not exported), exits 0
//	shapes     uses many kinds of declarations (globals, element and data
//	           segment forms, several tables), exits 0
//	tablegrow  grows a table declared without a maximum; exits 0 if refused
//	nostart    valid, but no _start: not a WASI command
//	badimport  imports env.host_call
//	sleep      sleeps 500 ms, writes "slept", exits 0
func Module(name string) []byte {
	b, err := modules.ReadFile("modules/" + name + ".wasm")
	if err != nil {
		return nil
	}
	return b
}

// ModuleNames returns the names of all WAT modules.
func ModuleNames() []string {
	entries, _ := fs.Glob(modules, "modules/*.wat") // the pattern is valid
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = strings.TrimSuffix(path.Base(e), ".wat")
	}
	return names
}

// moduleSource returns the WAT source of a module.
func moduleSource(name string) ([]byte, error) {
	return modules.ReadFile("modules/" + name + ".wat")
}

// ArtifactOf returns code as an artifact with its "sha256:<hex>" digest.
func ArtifactOf(code []byte) sandbox.Artifact {
	return sandbox.Artifact{Digest: ward.Digest(code), Code: code}
}

// Names of the Go programs in testdata/go, built by GoModule.
const (
	GoMemBomb  = "gomembomb"  // allocates and holds 1 MiB slices until the runtime gives up
	GoPanic    = "gopanic"    // panics (exit status 2)
	GoProbe    = "goprobe"    // reports files, /tmp, network and env as key=value lines
	GoHello    = "gohello"    // reads {"name":…} from stdin, writes {"greeting":"hello, …"}
	GoEcho     = "goecho"     // copies stdin to stdout
	GoEnv      = "goenv"      // writes its environment, one NAME=value per line
	GoLoop     = "goloop"     // never ends
	GoFlood    = "goflood"    // writes to stdout forever, ignoring errors
	GoExit3    = "goexit3"    // exits with status 3
	GoLogFlood = "gologflood" // writes stdin to stderr 1024 times, each copy in two writes
	GoSlowLog  = "goslowlog"  // logs a line and its secrets, sleeps stdin's milliseconds (default 1000), logs another
)

// Names of the Linux-only Go programs in testdata/golinux.
const (
	GoForkBomb  = "goforkbomb"  // starts sleeping copies of itself until refused, reports how many
	GoContainer = "gocontainer" // reports ids, capabilities and what it can do to the host; runs /suid
	GoSUID      = "gosuid"      // reports its ids and capabilities (installed setuid root)
)

// goPrograms builds the Go programs for wasip1 once per test binary:
// building them takes seconds, and they never change while it runs.
var goPrograms = sync.OnceValues(func() (map[string][]byte, error) {
	return buildGoPrograms("wasip1", "wasm", "testdata/go")
})

// linuxPrograms builds every Go program for Linux on this machine's
// architecture, statically linked, once per test binary.
var linuxPrograms = sync.OnceValues(func() (map[string][]byte, error) {
	return buildGoPrograms("linux", runtime.GOARCH, "testdata/go", "testdata/golinux")
})

// GoModule returns the Go program name (see GoMemBomb and friends) built
// with GOOS=wasip1 GOARCH=wasm. It skips tb when no Go toolchain can build
// it.
func GoModule(tb testing.TB, name string) []byte {
	tb.Helper()
	progs, err := goPrograms()
	if err != nil {
		tb.Skipf("Go programs for wasip1 are unavailable: %v", err)
	}
	code, ok := progs[name]
	if !ok {
		tb.Fatalf("sandboxtest: no Go program %q", name)
	}
	return code
}

// buildGoPrograms builds every program of the source directories in a
// temporary module for goos/goarch and returns the binaries by name.
func buildGoPrograms(goos, goarch string, dirs ...string) (map[string][]byte, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("no go command: %w", err)
	}
	dir, err := os.MkdirTemp("", "ward-sandboxtest-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	var names []string
	for _, d := range dirs {
		src, err := fs.Sub(goSources, d)
		if err != nil {
			return nil, fmt.Errorf("go sources: %w", err)
		}
		if err := os.CopyFS(filepath.Join(dir, "src"), src); err != nil {
			return nil, fmt.Errorf("copy go sources: %w", err)
		}
		entries, err := fs.ReadDir(src, ".")
		if err != nil {
			return nil, fmt.Errorf("go sources: %w", err)
		}
		for _, e := range entries {
			names = append(names, e.Name())
		}
	}
	gomod := "module sandboxtest.invalid/programs\n\ngo 1.24\n"
	if err := os.WriteFile(filepath.Join(dir, "src", "go.mod"), []byte(gomod), 0o644); err != nil {
		return nil, fmt.Errorf("write go.mod: %w", err)
	}
	out := filepath.Join(dir, "out") + string(filepath.Separator)
	cmd := exec.Command(goBin, "build", "-o", out, "./...")
	cmd.Dir = filepath.Join(dir, "src")
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w: %s", err, msg)
	}
	progs := map[string][]byte{}
	for _, name := range names {
		code, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			return nil, fmt.Errorf("go build output: %w", err)
		}
		progs[name] = code
	}
	if len(progs) == 0 {
		return nil, errors.New("go build produced nothing")
	}
	return progs, nil
}

// WasmModules returns the modules the conformance suite runs against a
// WebAssembly sandbox: the WAT modules, and the Go programs when a Go
// toolchain can build them (otherwise their tests skip, and the reason is
// logged).
func WasmModules(tb testing.TB) Modules {
	tb.Helper()
	mods := Modules{
		Echo:     ArtifactOf(Module("echo")),
		Env:      ArtifactOf(Module("env")),
		Loop:     ArtifactOf(Module("loop")),
		Trap:     ArtifactOf(Module("trap")),
		MemBomb:  ArtifactOf(Module("membomb")),
		Flood:    ArtifactOf(Module("flood")),
		Exit3:    ArtifactOf(Module("exit3")),
		LogFlood: ArtifactOf(Module("logflood")),
	}
	progs, err := goPrograms()
	if err != nil {
		tb.Logf("sandboxtest: Go programs unavailable, their tests will skip: %v", err)
		return mods
	}
	mods.GoMemBomb = ArtifactOf(progs[GoMemBomb])
	mods.GoPanic = ArtifactOf(progs[GoPanic])
	mods.GoProbe = ArtifactOf(progs[GoProbe])
	mods.SlowLog = ArtifactOf(progs[GoSlowLog])
	return mods
}
