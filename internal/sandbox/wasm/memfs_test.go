package wasm

import (
	"io"
	"io/fs"
	"maps"
	"slices"
	"testing"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

var epoch = time.Unix(1_700_000_000, 0)

func fixedClock() time.Time { return epoch }

const (
	rdonly = experimentalsys.O_RDONLY
	rdwr   = experimentalsys.O_RDWR
	wronly = experimentalsys.O_WRONLY
	creat  = experimentalsys.O_CREAT
	excl   = experimentalsys.O_EXCL
	trunc  = experimentalsys.O_TRUNC
	apnd   = experimentalsys.O_APPEND
	odir   = experimentalsys.O_DIRECTORY
)

// errnoIs fails t unless got is want.
func errnoIs(t *testing.T, what string, got, want experimentalsys.Errno) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: errno %v (%d), want %v (%d)", what, got, got, want, want)
	}
}

func open(t *testing.T, m *memFS, p string, flag experimentalsys.Oflag) experimentalsys.File {
	t.Helper()
	f, errno := m.OpenFile(p, flag, 0o644)
	errnoIs(t, "open "+p, errno, 0)
	return f
}

func readAll(t *testing.T, f experimentalsys.File) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 3)
	for {
		n, errno := f.Read(buf)
		errnoIs(t, "read", errno, 0)
		if n == 0 {
			return string(out)
		}
		out = append(out, buf[:n]...)
	}
}

func names(t *testing.T, m *memFS, dir string) []string {
	t.Helper()
	f := open(t, m, dir, rdonly|odir)
	defer f.Close()
	var got []string
	for {
		ents, errno := f.Readdir(2)
		errnoIs(t, "readdir "+dir, errno, 0)
		for _, e := range ents {
			n := e.Name
			if e.IsDir() {
				n += "/"
			}
			got = append(got, n)
		}
		if len(ents) < 2 {
			return got
		}
	}
}

func TestMemFSReadWrite(t *testing.T) {
	t.Parallel()
	m := newMemFS(false, 1<<20, fixedClock)
	f := open(t, m, "a.txt", rdwr|creat|excl)
	if n, errno := f.Write([]byte("hello world")); n != 11 || errno != 0 {
		t.Fatalf("write = %d, %v", n, errno)
	}
	if pos, errno := f.Seek(0, io.SeekStart); pos != 0 || errno != 0 {
		t.Fatalf("seek = %d, %v", pos, errno)
	}
	if got := readAll(t, f); got != "hello world" {
		t.Fatalf("read back %q", got)
	}
	if pos, _ := f.Seek(-5, io.SeekEnd); pos != 6 {
		t.Fatalf("seek from end = %d, want 6", pos)
	}
	if pos, _ := f.Seek(1, io.SeekCurrent); pos != 7 {
		t.Fatalf("seek from current = %d, want 7", pos)
	}
	_, errno := f.Seek(-100, io.SeekCurrent)
	errnoIs(t, "seek before start", errno, experimentalsys.EINVAL)
	_, errno = f.Seek(0, 7)
	errnoIs(t, "seek with bad whence", errno, experimentalsys.EINVAL)

	// Pwrite past the end zero-fills the gap; Pread reads at an offset.
	if n, errno := f.Pwrite([]byte("!"), 13); n != 1 || errno != 0 {
		t.Fatalf("pwrite = %d, %v", n, errno)
	}
	buf := make([]byte, 4)
	if n, _ := f.Pread(buf, 10); string(buf[:n]) != "d\x00\x00!" {
		t.Fatalf("pread = %q", buf[:n])
	}
	if n, errno := f.Pread(buf, 100); n != 0 || errno != 0 {
		t.Fatalf("pread past the end = %d, %v; want 0, 0", n, errno)
	}
	st, errno := f.Stat()
	errnoIs(t, "fstat", errno, 0)
	if st.Size != 14 || st.Mode != 0o644 || st.Mtim != epoch.UnixNano() || st.Ino == 0 {
		t.Fatalf("fstat = %+v", st)
	}
	errnoIs(t, "truncate", f.Truncate(5), 0)
	errnoIs(t, "truncate grow", f.Truncate(8), 0)
	if n, _ := f.Pread(buf, 4); string(buf[:n]) != "o\x00\x00\x00" {
		t.Fatalf("after truncate and grow: %q, want the cut bytes zeroed", buf[:n])
	}
	errnoIs(t, "negative truncate", f.Truncate(-1), experimentalsys.EINVAL)
	errnoIs(t, "close", f.Close(), 0)
	_, errno = f.Read(buf)
	errnoIs(t, "read after close", errno, experimentalsys.EBADF)
	errnoIs(t, "second close", f.Close(), 0)

	// Append mode writes at the end whatever the offset.
	f = open(t, m, "a.txt", wronly|apnd)
	if !f.IsAppend() {
		t.Fatal("IsAppend = false")
	}
	f.Write([]byte("XY"))
	f.Close()
	f = open(t, m, "a.txt", rdonly)
	if got := readAll(t, f); got != "hello\x00\x00\x00XY" {
		t.Fatalf("after append: %q", got)
	}
	_, errno = f.Write([]byte("no"))
	errnoIs(t, "write to a read-only handle", errno, experimentalsys.EBADF)
	errnoIs(t, "truncate a read-only handle", f.Truncate(0), experimentalsys.EBADF)
	f.Close()

	// O_TRUNC empties; O_EXCL refuses an existing file; a write-only
	// handle cannot read.
	f = open(t, m, "a.txt", wronly|trunc)
	_, errno = f.Read(buf)
	errnoIs(t, "read a write-only handle", errno, experimentalsys.EBADF)
	f.Close()
	if st, _ := m.Stat("a.txt"); st.Size != 0 {
		t.Fatalf("size after O_TRUNC = %d", st.Size)
	}
	_, errno = m.OpenFile("a.txt", wronly|creat|excl, 0o644)
	errnoIs(t, "O_EXCL on an existing file", errno, experimentalsys.EEXIST)
}

func TestMemFSTree(t *testing.T) {
	t.Parallel()
	m := newMemFS(false, 1<<20, fixedClock)
	errnoIs(t, "mkdir a", m.Mkdir("a", 0o755), 0)
	errnoIs(t, "mkdir a/b", m.Mkdir("a/b", 0o755), 0)
	errnoIs(t, "mkdir a again", m.Mkdir("a", 0o755), experimentalsys.EEXIST)
	errnoIs(t, "mkdir root", m.Mkdir(".", 0o755), experimentalsys.EEXIST)
	errnoIs(t, "mkdir under a missing dir", m.Mkdir("x/y", 0o755), experimentalsys.ENOENT)
	open(t, m, "a/f", wronly|creat).Close()
	open(t, m, "a/b/../e", wronly|creat).Close() // cleaned to a/e
	errnoIs(t, "mkdir under a file", m.Mkdir("a/f/x", 0o755), experimentalsys.ENOTDIR)

	if got := names(t, m, "a"); !slices.Equal(got, []string{"b/", "e", "f"}) {
		t.Fatalf("readdir a = %q", got)
	}
	if got := names(t, m, "."); !slices.Equal(got, []string{"a/"}) {
		t.Fatalf("readdir root = %q", got)
	}
	// Rewinding a directory lists it again, including new entries.
	d := open(t, m, "a", rdonly)
	all, _ := d.Readdir(0)
	open(t, m, "a/g", wronly|creat).Close()
	if _, errno := d.Seek(0, io.SeekStart); errno != 0 {
		t.Fatalf("rewind: %v", errno)
	}
	again, _ := d.Readdir(-1)
	if len(all) != 3 || len(again) != 4 {
		t.Fatalf("listed %d then %d entries, want 3 then 4", len(all), len(again))
	}
	_, errno := d.Seek(1, io.SeekStart)
	errnoIs(t, "seek a directory elsewhere", errno, experimentalsys.EINVAL)
	_, errno = d.Read(make([]byte, 1))
	errnoIs(t, "read a directory", errno, experimentalsys.EISDIR)
	d.Close()

	st, errno := m.Stat("a/b/")
	if errno != 0 || !st.Mode.IsDir() {
		t.Fatalf("stat a/b/ = %v, %v", st.Mode, errno)
	}
	_, errno = m.Stat("a/f/")
	errnoIs(t, "stat a file with a trailing slash", errno, experimentalsys.ENOTDIR)
	_, errno = m.Lstat("a/missing")
	errnoIs(t, "lstat a missing file", errno, experimentalsys.ENOENT)
	_, errno = m.Stat("a/f/x")
	errnoIs(t, "stat below a file", errno, experimentalsys.ENOTDIR)
	_, errno = m.OpenFile("a", wronly, 0)
	errnoIs(t, "open a directory for writing", errno, experimentalsys.EISDIR)
	_, errno = m.OpenFile("a/f", rdonly|odir, 0)
	errnoIs(t, "O_DIRECTORY on a file", errno, experimentalsys.ENOTDIR)
	_, errno = m.OpenFile("a/new/", wronly|creat, 0o644)
	errnoIs(t, "create with a trailing slash", errno, experimentalsys.EINVAL)
	_, errno = m.OpenFile("missing", rdonly, 0)
	errnoIs(t, "open a missing file", errno, experimentalsys.ENOENT)

	// Rename: files over files, directories over empty directories.
	errnoIs(t, "rename file", m.Rename("a/f", "a/b/f2"), 0)
	errnoIs(t, "rename onto itself", m.Rename("a/e", "a/e"), 0)
	errnoIs(t, "rename file over file", m.Rename("a/e", "a/g"), 0)
	errnoIs(t, "rename missing", m.Rename("a/nope", "a/x"), experimentalsys.ENOENT)
	errnoIs(t, "rename into a missing dir", m.Rename("a/g", "zz/g"), experimentalsys.ENOENT)
	errnoIs(t, "rename dir into itself", m.Rename("a", "a/b/a"), experimentalsys.EINVAL)
	errnoIs(t, "rename file over dir", m.Rename("a/g", "a/b"), experimentalsys.EISDIR)
	errnoIs(t, "mkdir c", m.Mkdir("c", 0o755), 0)
	errnoIs(t, "rename dir over file", m.Rename("c", "a/g"), experimentalsys.ENOTDIR)
	errnoIs(t, "rename dir over non-empty dir", m.Rename("c", "a"), experimentalsys.ENOTEMPTY)
	errnoIs(t, "rename dir over empty dir", m.Rename("a", "c"), 0)
	if got := names(t, m, "c"); !slices.Equal(got, []string{"b/", "g"}) {
		t.Fatalf("after renames, readdir c = %q", got)
	}

	// Remove.
	errnoIs(t, "rmdir non-empty", m.Rmdir("c"), experimentalsys.ENOTEMPTY)
	errnoIs(t, "rmdir a file", m.Rmdir("c/g"), experimentalsys.ENOTDIR)
	errnoIs(t, "rmdir missing", m.Rmdir("c/zz"), experimentalsys.ENOENT)
	errnoIs(t, "rmdir root", m.Rmdir("."), experimentalsys.EINVAL)
	errnoIs(t, "unlink a dir", m.Unlink("c/b"), experimentalsys.EISDIR)
	errnoIs(t, "unlink missing", m.Unlink("c/zz"), experimentalsys.ENOENT)
	errnoIs(t, "unlink", m.Unlink("c/b/f2"), 0)
	errnoIs(t, "unlink", m.Unlink("c/g"), 0)
	errnoIs(t, "rmdir", m.Rmdir("c/b"), 0)
	errnoIs(t, "rmdir", m.Rmdir("c"), 0)
	if got := names(t, m, "."); len(got) != 0 {
		t.Fatalf("after removing everything, root lists %q", got)
	}
	if m.used != 0 {
		t.Errorf("after removing everything, %d bytes are still charged", m.used)
	}

	// Chmod and times.
	open(t, m, "t", wronly|creat).Close()
	errnoIs(t, "chmod", m.Chmod("t", 0o600|fs.ModeSetuid), 0)
	errnoIs(t, "utimens", m.Utimens("t", 5, experimentalsys.UTIME_OMIT), 0)
	st, _ = m.Stat("t")
	if st.Mode != 0o600 || st.Atim != 5 || st.Mtim != epoch.UnixNano() {
		t.Errorf("after chmod and utimens: %+v", st)
	}
	errnoIs(t, "chmod missing", m.Chmod("zz", 0o600), experimentalsys.ENOENT)
	errnoIs(t, "utimens missing", m.Utimens("zz", 1, 1), experimentalsys.ENOENT)
	f := open(t, m, "t", rdonly)
	errnoIs(t, "futimens", f.Utimens(experimentalsys.UTIME_OMIT, 9), 0)
	if st, _ := f.Stat(); st.Mtim != 9 || st.Atim != 5 {
		t.Errorf("after futimens: %+v", st)
	}
	errnoIs(t, "link", m.Link("t", "u"), experimentalsys.ENOSYS)
	errnoIs(t, "symlink", m.Symlink("t", "u"), experimentalsys.ENOSYS)
}

func TestMemFSLimit(t *testing.T) {
	t.Parallel()
	const limit = 4096
	m := newMemFS(false, limit, fixedClock)
	f := open(t, m, "big", wronly|creat)
	room := limit - (nodeCost + len("big"))
	// A write that does not fit writes what fits, then nothing fits.
	n, errno := f.Write(make([]byte, limit))
	if n != room || errno != 0 {
		t.Fatalf("first write = %d, %v; want a short write of %d", n, errno, room)
	}
	n, errno = f.Write([]byte("x"))
	if n != 0 || errno != errNoSpace {
		t.Fatalf("write when full = %d, %v; want 0, %v", n, errno, errNoSpace)
	}
	_, errno = f.Pwrite([]byte("x"), limit*2)
	errnoIs(t, "pwrite far past the end when full", errno, errNoSpace)
	errnoIs(t, "truncate to grow when full", f.Truncate(int64(room+1)), errNoSpace)
	// Overwriting in place needs no room.
	if n, errno := f.Pwrite([]byte("abc"), 0); n != 3 || errno != 0 {
		t.Fatalf("overwrite = %d, %v", n, errno)
	}
	_, errno = m.OpenFile("other", wronly|creat, 0o644)
	errnoIs(t, "create when full", errno, errNoSpace)
	errnoIs(t, "mkdir when full", m.Mkdir("d", 0o755), errNoSpace)

	// An unlinked file's bytes stay charged while it is open.
	errnoIs(t, "unlink", m.Unlink("big"), 0)
	if m.used != int64(room) {
		t.Errorf("after unlinking an open file, %d bytes charged, want %d", m.used, room)
	}
	f.Close()
	if m.used != 0 {
		t.Errorf("after closing the unlinked file, %d bytes charged, want 0", m.used)
	}
	g := open(t, m, "again", wronly|creat)
	if n, errno := g.Write(make([]byte, 1000)); n != 1000 || errno != 0 {
		t.Fatalf("write after freeing = %d, %v", n, errno)
	}
	// Truncating releases bytes.
	errnoIs(t, "truncate", g.Truncate(0), 0)
	if m.used != int64(nodeCost+len("again")) {
		t.Errorf("after truncate, %d bytes charged", m.used)
	}
	// Renaming to a longer name is charged for the name.
	g.Write(make([]byte, limit-int(m.used)))
	errnoIs(t, "rename to a longer name when full", m.Rename("again", "again-longer"), errNoSpace)
	errnoIs(t, "rename to a shorter name when full", m.Rename("again", "a"), 0)
}

func TestMemFSReadOnly(t *testing.T) {
	t.Parallel()
	payload := []byte(`{"x":1}`)
	m, err := newReadOnlyFS(map[string][]byte{
		"payload":        payload,
		"secrets/a":      []byte("A"),
		"secrets/deep/b": []byte("B"),
	}, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, m, "."); !slices.Equal(got, []string{"payload", "secrets/"}) {
		t.Fatalf("root lists %q", got)
	}
	if got := names(t, m, "secrets"); !slices.Equal(got, []string{"a", "deep/"}) {
		t.Fatalf("secrets lists %q", got)
	}
	f := open(t, m, "secrets/deep/b", rdonly)
	if got := readAll(t, f); got != "B" {
		t.Fatalf("read %q", got)
	}
	st, _ := f.Stat()
	if st.Mode != 0o444 {
		t.Errorf("file mode = %v, want 0444", st.Mode)
	}
	_, errno := f.Write([]byte("x"))
	errnoIs(t, "write a read-only handle", errno, experimentalsys.EBADF)
	errnoIs(t, "futimens", f.Utimens(1, 1), experimentalsys.EROFS)
	f.Close()
	for _, flag := range []experimentalsys.Oflag{wronly, rdwr, rdonly | trunc, rdonly | apnd, wronly | creat} {
		_, errno := m.OpenFile("payload", flag, 0o644)
		errnoIs(t, "open payload for writing", errno, experimentalsys.EROFS)
	}
	_, errno = m.OpenFile("new", rdonly|creat, 0o644)
	errnoIs(t, "create", errno, experimentalsys.EROFS)
	errnoIs(t, "mkdir", m.Mkdir("d", 0o755), experimentalsys.EROFS)
	errnoIs(t, "unlink", m.Unlink("payload"), experimentalsys.EROFS)
	errnoIs(t, "rmdir", m.Rmdir("secrets/deep"), experimentalsys.EROFS)
	errnoIs(t, "rename", m.Rename("payload", "p"), experimentalsys.EROFS)
	errnoIs(t, "chmod", m.Chmod("payload", 0o777), experimentalsys.EROFS)
	errnoIs(t, "utimens", m.Utimens("payload", 1, 1), experimentalsys.EROFS)
	if payload[0] != '{' {
		t.Error("the payload was modified")
	}

	for _, files := range []map[string][]byte{
		{"/abs": nil},
		{"../up": nil},
		{".": nil},
		{"": nil},
		{"a//b": nil},
		{"a": nil, "a/b": nil},
	} {
		if _, err := newReadOnlyFS(files, fixedClock); err == nil {
			t.Errorf("newReadOnlyFS(%q) succeeded", slices.Collect(maps.Keys(files)))
		}
	}
}
