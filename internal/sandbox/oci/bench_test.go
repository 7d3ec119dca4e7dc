package oci

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
)

// BenchmarkTask compares one ward container task with a bare `runc run`
// of the same unpacked root filesystem and command (goecho, 1 KiB in and
// out), alternating the two in one loop so that both meet the same
// machine. A bare run has the namespaces of runc's example config and
// nothing of ward's: no user namespace, seccomp profile, task cgroup, /ward
// files, output caps or usage readings. It reports the time per task of
// each and their ratio (ward/bare).
func BenchmarkTask(b *testing.B) {
	sb := newSandbox(b, Options{})
	echo := sandboxtest.GoImage(b, sandboxtest.GoEcho)
	if err := sb.Prepare(b.Context(), echo); err != nil {
		b.Fatal(err)
	}
	p := sb.prepared[echo.Digest]
	bundle := b.TempDir()
	if err := os.Chmod(bundle, 0o700); err != nil {
		b.Fatal(err)
	}
	bare := &specs.Spec{
		Version: ociVersion,
		Root:    &specs.Root{Path: p.rootfs, Readonly: true},
		Process: &specs.Process{Args: p.args, Cwd: "/", Env: []string{"HOME=/tmp"}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=64k"}},
		},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
			{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace},
		}},
	}
	cfg, err := json.Marshal(bare)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o600); err != nil {
		b.Fatal(err)
	}
	stdin := bytes.Repeat([]byte("w"), 1024)
	root := b.TempDir()

	var wardTime, bareTime time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		out, err := sb.Run(b.Context(), &sandbox.Spec{Digest: echo.Digest, Stdin: stdin, MemoryMB: 64, Timeout: time.Minute})
		wardTime += time.Since(start)
		if err != nil || !bytes.Equal(out.Stdout, stdin) {
			b.Fatalf("ward task: %v, %q, %q", err, out.Code, out.Stderr)
		}

		start = time.Now()
		cmd := exec.Command(sb.runtime, "--root", root, "run", "--bundle", bundle, newID())
		cmd.Stdin = bytes.NewReader(stdin)
		got, err := cmd.Output()
		bareTime += time.Since(start)
		if err != nil || !bytes.Equal(got, stdin) {
			b.Fatalf("bare runc run: %v", err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(wardTime.Nanoseconds())/n, "ns/ward-task")
	b.ReportMetric(float64(bareTime.Nanoseconds())/n, "ns/bare-run")
	b.ReportMetric(float64(wardTime)/float64(bareTime), "ward/bare")
}
