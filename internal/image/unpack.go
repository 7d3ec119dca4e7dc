package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// UnpackOptions say how to write the root filesystem.
type UnpackOptions struct {
	IDShift uint32 // added to every file's uid and gid (user-namespace mapping); 0 = unchanged
	Chown   bool   // set owners (needs root); when false owners are left as the caller's
}

// Unpack writes the image's root filesystem (its layers applied in order,
// with whiteouts) into dir, which must exist and be empty. Every write goes
// through an os.Root of dir, so nothing is written outside it whatever the
// layers hold; device nodes are never created. Permission bits, setuid,
// setgid and sticky included, and modification times of files and
// directories are kept; with Chown, owners are the entries' ids plus
// IDShift, and directories the layers do not list (and the root) belong to
// IDShift:IDShift. Unpack stops with ctx's error between entries once ctx
// is done; dir is then left half written, for the caller to remove. Nothing
// else may write to dir meanwhile.
func (img *Image) Unpack(ctx context.Context, dir string, opts UnpackOptions) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("image: unpack: %w", err)
	}
	defer root.Close()
	if err := checkEmpty(root); err != nil {
		return err
	}
	u := &unpacker{
		root:  root,
		opts:  opts,
		dirs:  make(map[string]dirMeta),
		known: make(map[string]bool),
		buf:   make([]byte, 128<<10),
	}
	if opts.Chown {
		if err := u.chown(".", 0, 0); err != nil {
			return fmt.Errorf("image: unpack: the root: %w", err)
		}
	}
	for i, l := range img.layers {
		if err := u.layer(ctx, i+1, l); err != nil {
			return err
		}
	}
	return u.finish()
}

// checkEmpty fails unless the root directory is empty.
func checkEmpty(root *os.Root) error {
	f, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("image: unpack: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && err != io.EOF {
		return fmt.Errorf("image: unpack: %w", err)
	}
	if len(names) > 0 {
		return errors.New("image: unpack: the target directory is not empty")
	}
	return nil
}

// unpacker holds the state of one Unpack.
type unpacker struct {
	root  *os.Root
	opts  UnpackOptions
	dirs  map[string]dirMeta // directories' final modes and times, applied last
	known map[string]bool    // paths known to be directories now
	buf   []byte
}

// dirMeta is what finish applies to a directory: it is written 0700 until
// then so that its entries can be written whatever its own mode.
type dirMeta struct {
	mode  fs.FileMode
	mtime time.Time // zero: leave as is
}

// layer applies layer n: its whiteouts and opaque markers first, as they
// hide lower layers only, then its entries in order.
func (u *unpacker) layer(ctx context.Context, n int, l layer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, w := range l.whiteouts {
		if err := u.remove(w); err != nil {
			return fmt.Errorf("image: unpack layer %d: whiteout of %s: %w", n, q(w), err)
		}
	}
	for _, d := range l.opaques {
		if err := u.clear(d); err != nil {
			return fmt.Errorf("image: unpack layer %d: opaque directory %s: %w", n, q(d), err)
		}
	}
	var r io.Reader = bytes.NewReader(l.data)
	if l.gzip {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("image: unpack layer %d: %w", n, err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, tar.ErrInsecurePath) {
			err = nil
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("image: unpack layer %d: %w", n, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := cleanEntry(n, hdr.Name)
		if err != nil {
			return err
		}
		if wk, _, err := whiteoutOf(name); err != nil || wk != whNone {
			if err != nil {
				return fmt.Errorf("image: unpack layer %d: entry %s: %w", n, q(name), err)
			}
			continue // applied above, or AUFS metadata
		}
		if err := u.entry(name, hdr, tr); err != nil {
			return fmt.Errorf("image: unpack layer %d: entry %s: %w", n, q(name), err)
		}
	}
}

// entry writes one entry.
func (u *unpacker) entry(name string, hdr *tar.Header, data io.Reader) error {
	mode := tarMode(hdr.Mode)
	if hdr.Typeflag == tar.TypeDir && name == "." {
		u.dirs["."] = dirMeta{mode: mode, mtime: hdr.ModTime}
		return u.chown(".", hdr.Uid, hdr.Gid)
	}
	if name == "." {
		return errors.New("only a directory may stand for the root")
	}
	if err := u.parents(name); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		err := u.root.Mkdir(name, 0o700)
		if errors.Is(err, fs.ErrExist) {
			fi, lerr := u.root.Lstat(name)
			if lerr != nil {
				return lerr
			}
			if fi.IsDir() {
				err = nil // a directory over a directory keeps its entries
			} else if err = u.remove(name); err == nil {
				err = u.root.Mkdir(name, 0o700)
			}
		}
		if err != nil {
			return err
		}
		u.known[name] = true
		u.dirs[name] = dirMeta{mode: mode, mtime: hdr.ModTime}
		return u.chown(name, hdr.Uid, hdr.Gid)
	case tar.TypeReg:
		f, err := u.create(name)
		if err != nil {
			return err
		}
		// The struct hides f's ReadFrom, which would take a buffer of its
		// own for every file.
		_, err = io.CopyBuffer(struct{ io.Writer }{f}, data, u.buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := u.chown(name, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		if err := u.root.Chmod(name, mode); err != nil { // after chown, which clears setuid
			return err
		}
		return u.root.Chtimes(name, hdr.AccessTime, hdr.ModTime)
	case tar.TypeSymlink:
		if err := u.replace(name, func() error { return u.root.Symlink(hdr.Linkname, name) }); err != nil {
			return err
		}
		return u.chown(name, hdr.Uid, hdr.Gid)
	case tar.TypeLink:
		target, err := cleanEntry(0, hdr.Linkname)
		if err != nil {
			return err
		}
		return u.replace(name, func() error { return u.root.Link(target, name) })
	default:
		return fmt.Errorf("a %s is not unpacked", typeName(hdr.Typeflag))
	}
}

// create creates name as a new empty file, replacing what is there.
func (u *unpacker) create(name string) (*os.File, error) {
	var f *os.File
	err := u.replace(name, func() (err error) {
		f, err = u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		return err
	})
	return f, err
}

// replace runs mk, which creates name; if something is there already, it
// removes it and runs mk again.
func (u *unpacker) replace(name string, mk func() error) error {
	err := mk()
	if errors.Is(err, fs.ErrExist) {
		if err = u.remove(name); err == nil {
			err = mk()
		}
	}
	return err
}

// remove removes name and anything under it, if it exists.
func (u *unpacker) remove(name string) error {
	fi, err := u.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		delete(u.known, name)
	} else {
		clear(u.known) // a directory or link some known path may lie under
	}
	return u.root.RemoveAll(name)
}

// clear removes the entries of directory d, if it is one.
func (u *unpacker) clear(d string) error {
	fi, err := u.root.Lstat(d)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil || !fi.IsDir() {
		return err
	}
	f, err := u.root.Open(d)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	clear(u.known)
	for _, c := range names {
		if err := u.root.RemoveAll(path.Join(d, c)); err != nil {
			return err
		}
	}
	return nil
}

// parents makes the directories that hold name, as directories of mode
// 0755 owned by the image's root. A symlink on the way is left for the
// os.Root to follow (only inside dir).
func (u *unpacker) parents(name string) error {
	dir := path.Dir(name)
	if dir == "." || u.known[dir] {
		return nil
	}
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		p := dir[:i]
		if u.known[p] {
			continue
		}
		err := u.root.Mkdir(p, 0o700)
		switch {
		case err == nil:
			u.dirs[p] = dirMeta{mode: 0o755}
			if err := u.chown(p, 0, 0); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
		default:
			return err
		}
		u.known[p] = true
	}
	return nil
}

// chown sets name's owner to uid, gid plus the shift, when asked to.
func (u *unpacker) chown(name string, uid, gid int) error {
	if !u.opts.Chown {
		return nil
	}
	su, sg := int64(uid)+int64(u.opts.IDShift), int64(gid)+int64(u.opts.IDShift)
	if uid < 0 || gid < 0 || su > maxID || sg > maxID {
		return errors.New("the owner is out of range once shifted")
	}
	return u.root.Lchown(name, int(su), int(sg))
}

// finish applies the directories' modes and times, deepest first so that
// a directory's own mode never stops the work inside it.
func (u *unpacker) finish() error {
	paths := make([]string, 0, len(u.dirs))
	for p := range u.dirs {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		di, dj := depth(paths[i]), depth(paths[j])
		if di != dj {
			return di > dj
		}
		return paths[i] < paths[j]
	})
	for _, p := range paths {
		fi, err := u.root.Lstat(p)
		if err != nil || !fi.IsDir() {
			continue // removed or replaced by a later layer
		}
		m := u.dirs[p]
		if err := u.root.Chmod(p, m.mode); err != nil {
			return fmt.Errorf("image: unpack: directory %s: %w", q(p), err)
		}
		if !m.mtime.IsZero() {
			if err := u.root.Chtimes(p, time.Time{}, m.mtime); err != nil {
				return fmt.Errorf("image: unpack: directory %s: %w", q(p), err)
			}
		}
	}
	return nil
}

// depth is the number of parts of a cleaned path, "." having none.
func depth(p string) int {
	if p == "." {
		return 0
	}
	return strings.Count(p, "/") + 1
}

// tarMode converts a tar entry's mode to permission and special bits.
func tarMode(m int64) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
