package oci

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/gobuild"
	"github.com/wardhq/ward/internal/image"
	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
)

// newSandbox returns a sandbox with its own state directory and cgroup
// parent, closed and swept when t ends. Without WARD_TEST_OCI=1 it skips
// where containers cannot run; with it, that is a failure.
func newSandbox(t testing.TB, opts Options) *Sandbox {
	t.Helper()
	required := os.Getenv("WARD_TEST_OCI") == "1"
	if !required {
		if _, err := exec.LookPath("runc"); err != nil || os.Geteuid() != 0 {
			t.Skip("container tests need runc and root; set WARD_TEST_OCI=1 to require them")
		}
	}
	opts.StateDir = t.TempDir()
	// The containers' root user is unprivileged on the host: it must be
	// able to pass through the state directory's parents.
	if err := os.Chmod(filepath.Dir(opts.StateDir), 0o711); err != nil {
		t.Fatal(err)
	}
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if opts.CgroupParent == "" {
		opts.CgroupParent = "/ward-test/" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
	}
	sb, err := New(t.Context(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sb
}

func TestConformance(t *testing.T) {
	sb := newSandbox(t, Options{})
	t.Logf("user namespaces: %v", sb.UserNamespaces())
	sandboxtest.Run(t, sb, sandboxtest.OCIModules(t))
}

func TestNoUserNamespace(t *testing.T) {
	sb := newSandbox(t, Options{NoUserNS: true})
	mods := sandboxtest.OCIModules(t)
	sandboxtest.Run(t, sb, sandboxtest.Modules{
		Echo: mods.Echo, Env: mods.Env, GoProbe: mods.GoProbe,
		Container: mods.Container, ContainerRoot: mods.ContainerRoot, ImplicitEnv: mods.ImplicitEnv,
	})
}

// TestOvercommit runs tasks under a parent cgroup sized below the sum of
// their limits: the task the node's shortage kills ends with
// node_pressure, the one that outgrows its own limit with memory_limit.
func TestOvercommit(t *testing.T) {
	sb := newSandbox(t, Options{NodeMemoryMB: 96})
	hog := sandboxtest.GoImage(t, "gohog")
	if err := sb.Prepare(t.Context(), hog); err != nil {
		t.Fatal(err)
	}
	run := func(mib string, limitMB int) sandbox.Outcome {
		out, err := sb.Run(t.Context(), &sandbox.Spec{
			Digest: hog.Digest, Stdin: []byte(mib), MemoryMB: limitMB, Timeout: time.Minute,
			Env: map[string]string{"HOG_HOLD_MS": "3000"},
		})
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		return out
	}

	// Alone and within its limit, a task holding 60 MiB succeeds.
	if out := run("60", 80); out.Code != "" {
		t.Fatalf("one hog within the node's budget: code %q (%s)", out.Code, out.Message)
	}
	// Its own limit: memory_limit, whatever the node has.
	if out := run("60", 32); out.Code != ward.CodeMemoryLimit {
		t.Errorf("a hog over its own limit: code %q (%s), want memory_limit", out.Code, out.Message)
	}
	// Two hogs of 60 MiB, each within its own 80 MiB limit, on a node of
	// 96 MiB: one is killed for the node's sake.
	var wg sync.WaitGroup
	outs := make([]sandbox.Outcome, 2)
	for i := range outs {
		wg.Go(func() { outs[i] = run("60", 80) })
	}
	wg.Wait()
	t.Logf("two 60 MiB hogs on a 96 MiB node: %q (%s) and %q (%s)", outs[0].Code, outs[0].Message, outs[1].Code, outs[1].Message)
	var pressure, ok int
	for _, o := range outs {
		switch o.Code {
		case ward.CodeNodePressure:
			pressure++
		case "":
			ok++
		default:
			t.Errorf("a hog ended with %q (%s), want node_pressure or success", o.Code, o.Message)
		}
	}
	if pressure < 1 {
		t.Errorf("outcomes %q and %q: want at least one node_pressure", outs[0].Code, outs[1].Code)
	}
}

// TestSweep leaves a container, a task directory and a cgroup behind, as a
// crashed runner would, and checks that the next sandbox removes them.
func TestSweep(t *testing.T) {
	sb := newSandbox(t, Options{})
	loop := sandboxtest.GoImage(t, sandboxtest.GoLoop)
	if err := sb.Prepare(t.Context(), loop); err != nil {
		t.Fatal(err)
	}
	// Start a container and forget it: take the runc process away from
	// the sandbox by running it detached, as if the runner died.
	sp := &sandbox.Spec{Digest: loop.Digest, MemoryMB: 16, Timeout: time.Minute}
	lim, err := sp.Limits(sb.opts.MaxMemMB)
	if err != nil {
		t.Fatal(err)
	}
	c := &container{s: sb, id: newID(), p: sb.prepared[loop.Digest], spec: sp, lim: lim}
	if err := c.setup(); err != nil {
		t.Fatal(err)
	}
	// The container keeps runc's standard streams: give it none, so that
	// waiting for runc does not wait for the container.
	cmd := exec.Command(sb.runtime, "--root", sb.runcDir, "--log", filepath.Join(c.dir, "runc.log"), "run", "--detach", "--bundle", c.dir, c.id)
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run --detach: %v: %s", err, runtimeError(filepath.Join(c.dir, "runc.log")))
	}
	if _, err := os.Stat(filepath.Join(sb.runcDir, c.id)); err != nil {
		t.Fatalf("the container is not in runc's state: %v", err)
	}

	// A second sandbox on the directory waits for the first to let go.
	if _, err := New(t.Context(), sb.opts); ward.CodeOf(err) != ward.CodeUnavailable {
		t.Fatalf("a second sandbox on a state directory in use: %v, want unavailable", err)
	}
	sb.lock.Close() // the process holding it died
	again, err := New(t.Context(), sb.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(context.Background())
	if _, err := os.Stat(filepath.Join(sb.runcDir, c.id)); !os.IsNotExist(err) {
		t.Errorf("the container survived the sweep: %v", err)
	}
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Errorf("the task directory survived the sweep: %v", err)
	}
	if _, err := os.Stat(sb.cg.path("memory", c.id)); !os.IsNotExist(err) {
		t.Errorf("the task cgroup survived the sweep: %v", err)
	}
}

// TestCacheSurvivesRestart checks that a sandbox on the state directory
// of an earlier one runs the images that one unpacked, without the archive.
func TestCacheSurvivesRestart(t *testing.T) {
	sb := newSandbox(t, Options{})
	echo := sandboxtest.GoImage(t, sandboxtest.GoEcho)
	if err := sb.Prepare(t.Context(), echo); err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	again, err := New(t.Context(), sb.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(context.Background())
	spec := &sandbox.Spec{Digest: echo.Digest, Stdin: []byte("again"), MemoryMB: 64, Timeout: time.Minute}
	out, err := again.Run(t.Context(), spec)
	if err != nil || !out.Succeeded() || string(out.Stdout) != "again" {
		t.Fatalf("Run of an image an earlier sandbox unpacked = %q (%s), %v; want again", out.Stdout, out.Message, err)
	}
	// Preparing it again needs no archive: nothing is fetched or verified.
	if err := again.Prepare(t.Context(), sandbox.Artifact{Digest: echo.Digest}); err != nil {
		t.Errorf("Prepare of a cached image without its archive: %v", err)
	}
	other := sandboxtest.ArtifactOf([]byte("never unpacked"))
	if _, err := again.Run(t.Context(), &sandbox.Spec{Digest: other.Digest, MemoryMB: 64, Timeout: time.Minute}); ward.CodeOf(err) != ward.CodeNotFound {
		t.Errorf("Run of a digest not in the cache: %v, want not_found", err)
	}
}

func TestCgroupsMountinfo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	info := filepath.Join(dir, "mountinfo")
	content := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	if err := os.WriteFile(info, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts, all, err := v1Mounts(info)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"}
	for k, v := range want {
		if mounts[k] != v {
			t.Errorf("mount of %s = %q, want %q", k, mounts[k], v)
		}
	}
	if len(all) != 4 {
		t.Errorf("hierarchies = %q, want the 4 cgroup v1 mounts", all)
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	_, err := New(t.Context(), Options{StateDir: t.TempDir(), Runtime: "ward-no-such-runtime"})
	if ward.CodeOf(err) != ward.CodeUnavailable {
		t.Errorf("New with a missing runtime: %v, want code unavailable", err)
	}
}

func TestWriteFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ward")
	files := map[string][]byte{"payload": []byte("p"), "secrets/key": []byte("k"), "a/b/c": []byte("deep")}
	if err := writeFiles(dir, files, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.Mode().Perm() != 0o400 {
			t.Errorf("%s: mode %v, %v; want 0400", name, info.Mode(), err)
		}
	}
	for _, d := range []string{".", "secrets", "a", "a/b"} {
		if info, err := os.Stat(filepath.Join(dir, d)); err != nil || info.Mode().Perm() != 0o500 {
			t.Errorf("dir %s: mode %v, %v; want 0500", d, info.Mode(), err)
		}
	}
	for _, bad := range []string{"../x", "/etc/x", "."} {
		if err := writeFiles(filepath.Join(t.TempDir(), "ward"), map[string][]byte{bad: nil}, os.Getuid(), os.Getgid()); err == nil {
			t.Errorf("file name %q accepted", bad)
		}
	}
}

// TestCompatSyscallsRefused runs a 32-bit x86 build of a program: the
// seccomp filter knows only the host's own ABI, so it cannot run.
func TestCompatSyscallsRefused(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the 32-bit ABI checked here is amd64's")
	}
	sb := newSandbox(t, Options{})
	dir := t.TempDir()
	writeFile := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("go.mod", "module example.com/hello32\n\ngo 1.24\n")
	writeFile("main.go", "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"ran\") }\n")
	exe, err := gobuild.Linux(t.Context(), gobuild.Options{Dir: dir}, "386")
	if err != nil {
		t.Skipf("no 386 build: %v", err)
	}
	img, err := image.Build(image.BuildOptions{Files: []image.File{{Path: "/task", Mode: 0o755, Data: exe}}, Entrypoint: []string{"/task"}})
	if err != nil {
		t.Fatal(err)
	}
	a := sandbox.Artifact{Digest: img.Digest, Code: img.Archive}
	if err := sb.Prepare(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	out, err := sb.Run(t.Context(), &sandbox.Spec{Digest: a.Digest, MemoryMB: 64, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// The filter kills the process at its first system call: SIGSYS.
	if out.Code != ward.CodeExitStatus || out.ExitCode == nil || *out.ExitCode != 128+int(syscall.SIGSYS) || len(out.Stdout) != 0 {
		t.Errorf("a 32-bit program: code %q, exit %v, stdout %q; want killed by SIGSYS before any output", out.Code, out.ExitCode, out.Stdout)
	}
}
