package wasm

import (
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// nodeCost is what each file or directory costs against a memFS byte limit
// on top of its name and contents, so a task cannot exhaust host memory with
// millions of empty files.
const nodeCost = 128

// errNoSpace is returned when a write would pass the byte limit. WASI has
// ENOSPC but wazero's sys.Errno cannot carry it (anything unknown becomes
// EIO), so the guest sees EIO.
const errNoSpace = experimentalsys.EIO

// memFS is an in-memory file system for one run: the read-only /ward tree
// built from Spec.Files, or the size-capped writable /tmp. Nothing of it
// outlives the run. It implements wazero's experimental sys.FS for what
// wasi_snapshot_preview1 and Go's os package need; links are not supported.
type memFS struct {
	experimentalsys.UnimplementedFS

	mu       sync.Mutex
	root     *memNode
	readOnly bool
	limit    int64 // bytes; <= 0 means no writes fit
	used     int64
	nextIno  uint64
	now      func() time.Time
}

// memNode is a file or a directory.
type memNode struct {
	ino      uint64
	dir      bool
	perm     fs.FileMode
	data     []byte              // file contents
	children map[string]*memNode // directory entries
	mtim     int64
	atim     int64
	opens    int  // open handles
	unlinked bool // removed from its directory while open
}

// newMemFS returns an empty file system whose root is a directory.
func newMemFS(readOnly bool, limit int64, now func() time.Time) *memFS {
	m := &memFS{readOnly: readOnly, limit: limit, now: now}
	m.root = m.newNode(true, 0o755)
	return m
}

// newReadOnlyFS returns a read-only file system holding files, keyed by
// slash-separated relative path. The contents are shared, not copied:
// nothing can write to them. Paths must be valid (see fs.ValidPath).
func newReadOnlyFS(files map[string][]byte, now func() time.Time) (*memFS, error) {
	m := newMemFS(true, 0, now)
	m.root.perm = 0o555
	for name, data := range files {
		if !fs.ValidPath(name) || name == "." {
			return nil, &fs.PathError{Op: "add", Path: name, Err: fs.ErrInvalid}
		}
		dir := m.root
		parts := strings.Split(name, "/")
		for _, part := range parts[:len(parts)-1] {
			child := dir.children[part]
			if child == nil {
				child = m.newNode(true, 0o555)
				dir.children[part] = child
			} else if !child.dir {
				return nil, &fs.PathError{Op: "add", Path: name, Err: fs.ErrExist}
			}
			dir = child
		}
		base := parts[len(parts)-1]
		if dir.children[base] != nil {
			return nil, &fs.PathError{Op: "add", Path: name, Err: fs.ErrExist}
		}
		f := m.newNode(false, 0o444)
		f.data = data
		dir.children[base] = f
	}
	return m, nil
}

func (m *memFS) newNode(dir bool, perm fs.FileMode) *memNode {
	m.nextIno++
	t := m.now().UnixNano()
	n := &memNode{ino: m.nextIno, dir: dir, perm: perm & fs.ModePerm, mtim: t, atim: t}
	if dir {
		n.children = map[string]*memNode{}
	}
	return n
}

// charge reserves delta bytes (negative to release) and reports whether
// they fit.
func (m *memFS) charge(delta int64) bool {
	if delta > 0 && m.used+delta > m.limit {
		return false
	}
	m.used += delta
	return true
}

// drop releases what the node named name, just removed from its directory,
// holds against the limit. Directories are removed only when empty. The
// contents of a file that is still open stay charged until its last handle
// closes, as they stay readable through it.
func (m *memFS) drop(name string, n *memNode) {
	m.charge(-int64(nodeCost + len(name)))
	if n.opens > 0 {
		n.unlinked = true
		return
	}
	m.charge(-int64(len(n.data)))
	n.data = nil
}

// clean turns a path from wazero into its parts; it never escapes the root.
// A trailing slash means the path must name a directory.
func clean(p string) (parts []string, mustDir bool) {
	mustDir = strings.HasSuffix(p, "/")
	p = path.Clean("/" + p)[1:]
	if p == "" {
		return nil, mustDir
	}
	return strings.Split(p, "/"), mustDir
}

// walk returns the node at parts, or ENOENT/ENOTDIR.
func (m *memFS) walk(parts []string) (*memNode, experimentalsys.Errno) {
	n := m.root
	for _, part := range parts {
		if !n.dir {
			return nil, experimentalsys.ENOTDIR
		}
		child := n.children[part]
		if child == nil {
			return nil, experimentalsys.ENOENT
		}
		n = child
	}
	return n, 0
}

// lookup resolves p to its node.
func (m *memFS) lookup(p string) (*memNode, experimentalsys.Errno) {
	parts, mustDir := clean(p)
	n, errno := m.walk(parts)
	if errno != 0 {
		return nil, errno
	}
	if mustDir && !n.dir {
		return nil, experimentalsys.ENOTDIR
	}
	return n, 0
}

// parentOf resolves the directory holding p and p's last element. The root
// has no parent: EINVAL.
func (m *memFS) parentOf(p string) (*memNode, string, experimentalsys.Errno) {
	parts, _ := clean(p)
	if len(parts) == 0 {
		return nil, "", experimentalsys.EINVAL
	}
	dir, errno := m.walk(parts[:len(parts)-1])
	if errno != 0 {
		return nil, "", errno
	}
	if !dir.dir {
		return nil, "", experimentalsys.ENOTDIR
	}
	return dir, parts[len(parts)-1], 0
}

// OpenFile implements sys.FS.
func (m *memFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	m.mu.Lock()
	defer m.mu.Unlock()
	access := flag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY)
	write := access != experimentalsys.O_RDONLY
	if m.readOnly && (write || flag&(experimentalsys.O_TRUNC|experimentalsys.O_APPEND) != 0) {
		return nil, experimentalsys.EROFS
	}
	n, errno := m.lookup(p)
	switch {
	case errno == experimentalsys.ENOENT && flag&experimentalsys.O_CREAT != 0:
		if m.readOnly {
			return nil, experimentalsys.EROFS
		}
		if flag&experimentalsys.O_DIRECTORY != 0 || strings.HasSuffix(p, "/") {
			return nil, experimentalsys.EINVAL
		}
		dir, base, errno := m.parentOf(p)
		if errno != 0 {
			return nil, errno
		}
		if !m.charge(int64(nodeCost + len(base))) {
			return nil, errNoSpace
		}
		n = m.newNode(false, perm)
		dir.children[base] = n
		dir.mtim = n.mtim
	case errno != 0:
		return nil, errno
	case flag&experimentalsys.O_CREAT != 0 && flag&experimentalsys.O_EXCL != 0:
		return nil, experimentalsys.EEXIST
	case n.dir && write:
		return nil, experimentalsys.EISDIR
	case !n.dir && flag&experimentalsys.O_DIRECTORY != 0:
		return nil, experimentalsys.ENOTDIR
	case !n.dir && write && flag&experimentalsys.O_TRUNC != 0:
		m.charge(-int64(len(n.data)))
		n.data = nil
		n.mtim = m.now().UnixNano()
	}
	n.opens++
	return &memFile{
		fs:     m,
		node:   n,
		read:   access != experimentalsys.O_WRONLY,
		write:  write,
		append: flag&experimentalsys.O_APPEND != 0,
	}, 0
}

// Stat implements sys.FS.
func (m *memFS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, errno := m.lookup(p)
	if errno != 0 {
		return sys.Stat_t{}, errno
	}
	return n.stat(), 0
}

// Lstat implements sys.FS; there are no links, so it is Stat.
func (m *memFS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) { return m.Stat(p) }

// Mkdir implements sys.FS.
func (m *memFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readOnly {
		return experimentalsys.EROFS
	}
	dir, base, errno := m.parentOf(p)
	if errno == experimentalsys.EINVAL { // the root
		return experimentalsys.EEXIST
	}
	if errno != 0 {
		return errno
	}
	if dir.children[base] != nil {
		return experimentalsys.EEXIST
	}
	if !m.charge(int64(nodeCost + len(base))) {
		return errNoSpace
	}
	n := m.newNode(true, perm)
	dir.children[base] = n
	dir.mtim = n.mtim
	return 0
}

// Chmod implements sys.FS.
func (m *memFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readOnly {
		return experimentalsys.EROFS
	}
	n, errno := m.lookup(p)
	if errno != 0 {
		return errno
	}
	n.perm = perm & fs.ModePerm
	return 0
}

// Rename implements sys.FS.
func (m *memFS) Rename(from, to string) experimentalsys.Errno {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readOnly {
		return experimentalsys.EROFS
	}
	fromDir, fromBase, errno := m.parentOf(from)
	if errno != 0 {
		return errno
	}
	n := fromDir.children[fromBase]
	if n == nil {
		return experimentalsys.ENOENT
	}
	toDir, toBase, errno := m.parentOf(to)
	if errno != 0 {
		return errno
	}
	if fromDir == toDir && fromBase == toBase {
		return 0
	}
	if n.dir && (toDir == n || contains(n, toDir)) {
		return experimentalsys.EINVAL // into its own subtree
	}
	if old := toDir.children[toBase]; old != nil {
		switch {
		case n.dir && !old.dir:
			return experimentalsys.ENOTDIR
		case !n.dir && old.dir:
			return experimentalsys.EISDIR
		case old.dir && len(old.children) > 0:
			return experimentalsys.ENOTEMPTY
		}
		m.drop(toBase, old)
	}
	// Only the name's length changes what the node costs.
	if delta := int64(len(toBase) - len(fromBase)); !m.charge(delta) {
		return errNoSpace
	}
	delete(fromDir.children, fromBase)
	toDir.children[toBase] = n
	t := m.now().UnixNano()
	fromDir.mtim, toDir.mtim = t, t
	return 0
}

// contains reports whether target is in dir's subtree.
func contains(dir, target *memNode) bool {
	for _, c := range dir.children {
		if c == target || (c.dir && contains(c, target)) {
			return true
		}
	}
	return false
}

// Rmdir implements sys.FS.
func (m *memFS) Rmdir(p string) experimentalsys.Errno {
	return m.remove(p, func(n *memNode) experimentalsys.Errno {
		switch {
		case !n.dir:
			return experimentalsys.ENOTDIR
		case len(n.children) > 0:
			return experimentalsys.ENOTEMPTY
		}
		return 0
	})
}

// Unlink implements sys.FS.
func (m *memFS) Unlink(p string) experimentalsys.Errno {
	return m.remove(p, func(n *memNode) experimentalsys.Errno {
		if n.dir {
			return experimentalsys.EISDIR
		}
		return 0
	})
}

// remove deletes the node at p once allowed says it may go.
func (m *memFS) remove(p string, allowed func(*memNode) experimentalsys.Errno) experimentalsys.Errno {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readOnly {
		return experimentalsys.EROFS
	}
	dir, base, errno := m.parentOf(p)
	if errno != 0 {
		return errno
	}
	n := dir.children[base]
	if n == nil {
		return experimentalsys.ENOENT
	}
	if errno := allowed(n); errno != 0 {
		return errno
	}
	delete(dir.children, base)
	m.drop(base, n)
	dir.mtim = m.now().UnixNano()
	return 0
}

// Utimens implements sys.FS.
func (m *memFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readOnly {
		return experimentalsys.EROFS
	}
	n, errno := m.lookup(p)
	if errno != 0 {
		return errno
	}
	n.setTimes(atim, mtim)
	return 0
}

func (n *memNode) setTimes(atim, mtim int64) {
	if atim != experimentalsys.UTIME_OMIT {
		n.atim = atim
	}
	if mtim != experimentalsys.UTIME_OMIT {
		n.mtim = mtim
	}
}

func (n *memNode) stat() sys.Stat_t {
	st := sys.Stat_t{Ino: n.ino, Mode: n.perm, Nlink: 1, Size: int64(len(n.data)), Atim: n.atim, Mtim: n.mtim, Ctim: n.mtim}
	if n.dir {
		st.Mode |= fs.ModeDir
		st.Size = 0
	}
	return st
}

// memFile is an open file or directory of a memFS.
type memFile struct {
	experimentalsys.UnimplementedFile

	fs     *memFS
	node   *memNode
	read   bool
	write  bool
	append bool
	closed bool
	pos    int64
	// dirents is the listing being read by Readdir, taken at the first
	// call after opening or rewinding.
	dirents []experimentalsys.Dirent
	listed  bool
}

// Ino implements sys.File.
func (f *memFile) Ino() (sys.Inode, experimentalsys.Errno) { return f.node.ino, 0 }

// IsDir implements sys.File.
func (f *memFile) IsDir() (bool, experimentalsys.Errno) { return f.node.dir, 0 }

// IsAppend implements sys.File.
func (f *memFile) IsAppend() bool { return f.append }

// SetAppend implements sys.File.
func (f *memFile) SetAppend(enable bool) experimentalsys.Errno {
	if f.node.dir {
		return experimentalsys.EISDIR
	}
	f.append = enable
	return 0
}

// Stat implements sys.File.
func (f *memFile) Stat() (sys.Stat_t, experimentalsys.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return sys.Stat_t{}, experimentalsys.EBADF
	}
	return f.node.stat(), 0
}

// checkIO is the common refusal of data I/O: a closed file or one not
// opened for the access (allowed), a directory, a negative offset or size.
// f.fs.mu must be held.
func (f *memFile) checkIO(allowed bool, off int64) experimentalsys.Errno {
	switch {
	case f.closed || !allowed:
		return experimentalsys.EBADF
	case f.node.dir:
		return experimentalsys.EISDIR
	case off < 0:
		return experimentalsys.EINVAL
	}
	return 0
}

// Read implements sys.File.
func (f *memFile) Read(buf []byte) (int, experimentalsys.Errno) {
	n, errno := f.Pread(buf, f.pos)
	f.pos += int64(n)
	return n, errno
}

// Pread implements sys.File.
func (f *memFile) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if errno := f.checkIO(f.read, off); errno != 0 {
		return 0, errno
	}
	if off >= int64(len(f.node.data)) {
		return 0, 0
	}
	return copy(buf, f.node.data[off:]), 0
}

// fileOffset is int64. Seek's first parameter is spelled with it because
// go vet (stdmethods) wants any Seek(int64, int) to return error, while
// wazero's sys.File.Seek returns sys.Errno.
type fileOffset = int64

// Seek implements sys.File. A directory can only be rewound.
func (f *memFile) Seek(offset fileOffset, whence int) (int64, experimentalsys.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, experimentalsys.EBADF
	}
	if f.node.dir {
		if offset != 0 || whence != io.SeekStart {
			return 0, experimentalsys.EINVAL
		}
		f.dirents, f.listed = nil, false
		return 0, 0
	}
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.pos
	case io.SeekEnd:
		base = int64(len(f.node.data))
	default:
		return 0, experimentalsys.EINVAL
	}
	pos := base + offset
	if pos < 0 || (offset > 0 && pos < base) {
		return 0, experimentalsys.EINVAL
	}
	f.pos = pos
	return pos, 0
}

// Readdir implements sys.File. Entries come sorted by name.
func (f *memFile) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	switch {
	case f.closed:
		return nil, experimentalsys.EBADF
	case !f.node.dir:
		return nil, experimentalsys.ENOTDIR
	}
	if !f.listed {
		f.listed = true
		names := make([]string, 0, len(f.node.children))
		for name := range f.node.children {
			names = append(names, name)
		}
		slices.Sort(names)
		f.dirents = make([]experimentalsys.Dirent, len(names))
		for i, name := range names {
			c := f.node.children[name]
			f.dirents[i] = experimentalsys.Dirent{Ino: c.ino, Name: name, Type: c.stat().Mode.Type()}
		}
	}
	if n <= 0 || n > len(f.dirents) {
		n = len(f.dirents)
	}
	out := f.dirents[:n:n]
	f.dirents = f.dirents[n:]
	return out, 0
}

// Write implements sys.File.
func (f *memFile) Write(buf []byte) (int, experimentalsys.Errno) {
	f.fs.mu.Lock()
	off := f.pos
	if f.append {
		off = int64(len(f.node.data))
	}
	f.fs.mu.Unlock()
	n, errno := f.Pwrite(buf, off)
	f.pos = off + int64(n)
	return n, errno
}

// Pwrite implements sys.File. A write that does not fit the byte limit
// writes what fits; a write of which nothing fits fails.
func (f *memFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if errno := f.checkIO(f.write, off); errno != 0 {
		return 0, errno
	}
	if len(buf) == 0 {
		return 0, 0
	}
	size := int64(len(f.node.data))
	end := off + int64(len(buf))
	if end < off {
		return 0, experimentalsys.EINVAL
	}
	if grow := end - size; grow > 0 {
		if room := f.fs.limit - f.fs.used; grow > room {
			// Write what fits, like a short write(2); when nothing
			// fits, fail.
			end = size + room
			if end <= off {
				return 0, errNoSpace
			}
			buf = buf[:end-off]
			grow = room
		}
		f.fs.charge(grow)
		f.node.resize(end)
	}
	copy(f.node.data[off:], buf)
	f.node.mtim = f.fs.now().UnixNano()
	return len(buf), 0
}

// Truncate implements sys.File.
func (f *memFile) Truncate(size int64) experimentalsys.Errno {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if errno := f.checkIO(f.write, size); errno != 0 {
		return errno
	}
	if !f.fs.charge(size - int64(len(f.node.data))) {
		return errNoSpace
	}
	f.node.resize(size)
	f.node.mtim = f.fs.now().UnixNano()
	return 0
}

// resize sets the file's length to size, zero-filling any growth.
func (n *memNode) resize(size int64) {
	switch l := int64(len(n.data)); {
	case size <= l:
		clear(n.data[size:])
		n.data = n.data[:size]
	case size <= int64(cap(n.data)):
		n.data = n.data[:size]
	default:
		n.data = slices.Grow(n.data, int(size-l))[:size]
	}
}

// Utimens implements sys.File.
func (f *memFile) Utimens(atim, mtim int64) experimentalsys.Errno {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return experimentalsys.EBADF
	}
	if f.fs.readOnly {
		return experimentalsys.EROFS
	}
	f.node.setTimes(atim, mtim)
	return 0
}

// Close implements sys.File.
func (f *memFile) Close() experimentalsys.Errno {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0
	}
	f.closed = true
	f.dirents = nil
	if f.node.opens--; f.node.opens == 0 && f.node.unlinked {
		f.fs.charge(-int64(len(f.node.data)))
		f.node.data = nil
	}
	return 0
}
