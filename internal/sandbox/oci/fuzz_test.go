package oci

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzHostFiles feeds arbitrary content to the parsers of kernel and
// runtime files: mountinfo (cgroup v1 mounts), keyed cgroup files and
// runc's JSON log. None may panic; what they return must come from the
// input.
func FuzzHostFiles(f *testing.F) {
	f.Add("35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n", "oom 1\noom_kill 2\n", `{"level":"error","msg":"boom"}`+"\n")
	f.Add("x - cgroup\n - \n", "usage_usec\n 5\nmax -1\n", "not json\n{\"level\":\"info\"}")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, mountinfo, keyed, log string) {
		dir := t.TempDir()
		write := func(name, body string) string {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}
		mounts, all, err := v1Mounts(write("mountinfo", mountinfo))
		if err != nil && !strings.Contains(err.Error(), "token too long") {
			t.Fatalf("v1Mounts: %v", err)
		}
		for ctl, point := range mounts {
			if !slices.Contains(v1Controllers, ctl) || !slices.Contains(all, point) || !strings.Contains(mountinfo, point) {
				t.Fatalf("mount %s=%q not from the input", ctl, point)
			}
		}
		write("keyed", keyed)
		values, err := readKeyed(dir, "keyed")
		if err != nil {
			t.Fatal(err)
		}
		for k := range values {
			if !strings.Contains(keyed, k) {
				t.Fatalf("key %q not from the input", k)
			}
		}
		if msg := runtimeError(write("runc.log", log)); msg != "" && !strings.Contains(log, "{") {
			t.Fatalf("runtimeError = %q from a log without a JSON entry", msg)
		}
	})
}
