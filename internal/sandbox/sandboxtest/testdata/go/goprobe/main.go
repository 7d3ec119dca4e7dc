// Command goprobe reports what a task can reach, one "key=value" line per
// probe on stdout; "ok" means the operation succeeded, anything else is
// the error. PROBE_TMP_BYTES is how many bytes to try to put in /tmp/big.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	report("payload", readFile("/ward/payload"))
	report("secret", readFile("/ward/secrets/api-key"))
	report("wardls", list("/ward"))
	report("wardcreate", result(os.WriteFile("/ward/new", []byte("x"), 0o644)))
	report("wardmodify", result(openWrite("/ward/payload")))
	report("wardremove", result(os.Remove("/ward/payload")))
	report("stale", stale())
	report("tmp", tmpRoundTrip())
	report("tmpops", tmpOps())
	report("tmpbig", tmpBig())
	report("tmpafter", result(os.WriteFile("/tmp/after", make([]byte, 64<<10), 0o644)))
	report("rootwrite", result(os.WriteFile("/written", []byte("x"), 0o644)))
	report("passwd", readFile("/etc/passwd"))
	report("root", list("/"))
	report("dial", dial())
	report("env", strings.Join(os.Environ(), ","))
}

func report(key, value string) { fmt.Printf("%s=%s\n", key, value) }

func result(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

func readFile(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return "error: " + err.Error()
	}
	return strconv.Quote(string(b))
}

func list(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "error: " + err.Error()
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			name += "/"
		}
		names = append(names, name)
	}
	return strings.Join(names, ",")
}

func openWrite(name string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// stale reports whether /tmp holds a marker left by an earlier run, then
// leaves one.
func stale() string {
	_, err := os.Stat("/tmp/marker")
	seen := "no"
	if err == nil {
		seen = "yes"
	}
	if err := os.WriteFile("/tmp/marker", []byte("x"), 0o644); err != nil {
		return "error: " + err.Error()
	}
	return seen
}

func tmpRoundTrip() string {
	want := []byte("hello from the task\n")
	f, err := os.CreateTemp("", "probe-*.txt")
	if err != nil {
		return "error: " + err.Error()
	}
	defer f.Close()
	if _, err := f.Write(want); err != nil {
		return "error: " + err.Error()
	}
	if _, err := f.Seek(0, 0); err != nil {
		return "error: " + err.Error()
	}
	got := make([]byte, 64)
	n, err := f.Read(got)
	if err != nil {
		return "error: " + err.Error()
	}
	if !bytes.Equal(got[:n], want) {
		return fmt.Sprintf("mismatch: %q", got[:n])
	}
	info, err := f.Stat()
	if err != nil {
		return "error: " + err.Error()
	}
	if info.Size() != int64(len(want)) {
		return fmt.Sprintf("size %d", info.Size())
	}
	return "ok"
}

func tmpOps() string {
	steps := []func() error{
		func() error { return os.MkdirAll("/tmp/a/b", 0o755) },
		func() error { return os.WriteFile("/tmp/a/b/f", []byte("data"), 0o644) },
		func() error { return os.Rename("/tmp/a/b/f", "/tmp/a/g") },
		func() error {
			got := list("/tmp/a")
			if got != "b/,g" {
				return fmt.Errorf("listing %q", got)
			}
			return nil
		},
		func() error {
			b, err := os.ReadFile("/tmp/a/g")
			if err == nil && string(b) != "data" {
				err = fmt.Errorf("read %q", b)
			}
			return err
		},
		func() error {
			if _, err := os.Stat("/tmp/a/b/f"); !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("renamed file still there: %v", err)
			}
			return nil
		},
		func() error { return os.Chtimes("/tmp/a/g", time.Unix(1, 0), time.Unix(2, 0)) },
		func() error { return os.RemoveAll("/tmp/a") },
		func() error {
			if _, err := os.Stat("/tmp/a"); !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removed dir still there: %v", err)
			}
			return nil
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return fmt.Sprintf("step %d: %v", i, err)
		}
	}
	return "ok"
}

// tmpBig writes PROBE_TMP_BYTES bytes to /tmp/big in 64 KiB chunks, then
// removes the file either way.
func tmpBig() string {
	size, _ := strconv.Atoi(os.Getenv("PROBE_TMP_BYTES"))
	defer os.Remove("/tmp/big")
	f, err := os.Create("/tmp/big")
	if err != nil {
		return "error: " + err.Error()
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for written := 0; written < size; {
		n, err := f.Write(chunk[:min(len(chunk), size-written)])
		written += n
		if err != nil {
			return fmt.Sprintf("error after %d bytes: %v", written, err)
		}
	}
	return "ok"
}

func dial() string {
	var results []string
	for _, addr := range []string{"127.0.0.1:80", "1.1.1.1:443"} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			results = append(results, addr+" connected")
			continue
		}
		results = append(results, "error")
	}
	slices.Sort(results)
	return strings.Join(slices.Compact(results), ",")
}
