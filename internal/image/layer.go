package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path"
	"strings"
)

// Whiteout names (OCI image spec, "Representing Changes").
const (
	whPrefix = ".wh."
	whMeta   = ".wh..wh."
	whOpaque = ".wh..wh..opq"
)

// Node kinds of the merged view, and of layer records.
const (
	kindDir     = 'd'
	kindFile    = 'f'
	kindSymlink = 'l'
	kindLink    = 'h' // records only: a hard link, which takes its target's kind
)

// scanner checks an image's layers in order, keeping the limits left and a
// view of the root filesystem the layers so far make.
type scanner struct {
	maxBytes   int64
	maxEntries int
	maxNames   int
	bytes      int64 // uncompressed bytes so far
	entries    int
	names      int // bytes of entry names and link targets so far, which the checks keep
	root       *node
}

// node is a path of the merged view.
type node struct {
	kind     byte
	children map[string]*node // directories only
}

// record is one layer entry that creates something, in tar order.
type record struct {
	name string
	kind byte
	link string // cleaned hard link target
}

func newScanner(opts IntakeOptions) *scanner {
	return &scanner{maxBytes: opts.MaxUnpackedBytes, maxEntries: opts.MaxEntries, maxNames: maxNameBytes, root: &node{kind: kindDir}}
}

// errTooLarge is returned by countingReader past the byte limit.
var errTooLarge = errors.New("image: layers too large")

// countingReader counts bytes read and fails once they pass a limit.
type countingReader struct {
	r     io.Reader
	n     int64 // bytes read
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n > c.limit {
		return 0, errTooLarge
	}
	if rest := c.limit - c.n + 1; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return n, errTooLarge
	}
	return n, err
}

// layer checks layer n (1-based): its uncompressed content must hash to
// diffID, every entry must be safe, and the limits must hold. With keep it
// also returns the uncompressed content.
func (s *scanner) layer(n int, data []byte, gz bool, diffID string, keep bool) (checked, error) {
	out := checked{layer: layer{data: data, gzip: gz}}
	var src io.Reader = bytes.NewReader(data)
	if gz {
		zr, err := gzip.NewReader(src)
		if err != nil {
			return out, invalid("layer %d is not a valid gzip stream", n)
		}
		defer zr.Close()
		src = zr
	}
	cr := &countingReader{r: src, limit: s.maxBytes - s.bytes}
	h := sha256.New()
	var w io.Writer = h
	var kept *bytes.Buffer
	if keep {
		kept = new(bytes.Buffer)
		w = io.MultiWriter(h, kept)
	}
	stream := io.TeeReader(cr, w)
	tr := tar.NewReader(stream)
	var recs []record
	var formatErr error
	for {
		hdr, err := tr.Next()
		if errors.Is(err, tar.ErrInsecurePath) {
			err = nil // names are checked below
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			formatErr = err
			break
		}
		s.entries++
		if s.entries > s.maxEntries {
			return out, invalid("the image is too large: its layers hold more than %d entries", s.maxEntries)
		}
		if s.names += len(hdr.Name) + len(hdr.Linkname); s.names > s.maxNames {
			return out, invalid("the image is too large: its entry names add up to more than %d bytes", s.maxNames)
		}
		rec, err := out.entry(n, hdr)
		if err != nil {
			return out, err
		}
		if rec != nil {
			recs = append(recs, *rec)
		}
	}
	// The diff_id covers the whole stream, padding after the tar's end
	// included; reading it to the end also checks gzip's checksum.
	_, drainErr := io.Copy(io.Discard, stream)
	s.bytes += cr.n
	out.size = cr.n
	if cr.n > cr.limit {
		return out, invalid("the image is too large: its layers unpack to more than %d bytes", s.maxBytes)
	}
	sum := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if drainErr == nil && sum != diffID {
		return out, mismatch("layer %d does not match its diff_id %s", n, diffID)
	}
	if formatErr != nil || drainErr != nil {
		if gz {
			return out, invalid("layer %d is not a valid gzip-compressed tar", n)
		}
		return out, invalid("layer %d is not a valid tar", n)
	}
	if err := s.apply(n, &out.layer, recs); err != nil {
		return out, err
	}
	if keep {
		out.uncompressed = kept.Bytes()
	}
	return out, nil
}

// entry checks one layer entry on its own: its name, type and link
// target. Whiteouts are added to the layer; entries that create something
// are returned as a record.
func (l *checked) entry(n int, hdr *tar.Header) (*record, error) {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil, nil
	}
	name, err := cleanEntry(n, hdr.Name)
	if err != nil {
		return nil, err
	}
	if sparse(hdr) {
		return nil, invalid("layer %d: entry %s is a sparse file; sparse files are not supported", n, q(name))
	}
	wk, target, err := whiteoutOf(name)
	if err != nil {
		return nil, invalid("layer %d: entry %s: %v", n, q(name), err)
	}
	switch wk {
	case whSkip:
		return nil, nil
	case whFile:
		l.whiteouts = append(l.whiteouts, target)
		return nil, nil
	case whDir:
		l.opaques = append(l.opaques, target)
		return nil, nil
	}
	if hdr.Uid < 0 || hdr.Uid > maxID || hdr.Gid < 0 || hdr.Gid > maxID {
		return nil, invalid("layer %d: entry %s has an owner id out of range", n, q(name))
	}
	rec := &record{name: name}
	switch hdr.Typeflag {
	case tar.TypeDir:
		rec.kind = kindDir
		return rec, nil
	case tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return nil, unsafe("layer %d: entry %s is a %s; images may not hold devices or fifos", n, q(name), typeName(hdr.Typeflag))
	default:
		return nil, invalid("layer %d: entry %s is a %s, which is not supported", n, q(name), typeName(hdr.Typeflag))
	}
	if name == "." {
		return nil, unsafe("layer %d: a %s entry would replace the image root", n, typeName(hdr.Typeflag))
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		rec.kind = kindFile
	case tar.TypeSymlink:
		t := hdr.Linkname
		if t == "" || len(t) > maxPathLen || strings.IndexByte(t, 0) >= 0 {
			return nil, invalid("layer %d: symlink %s has an empty, overlong or malformed target", n, q(name))
		}
		if !strings.HasPrefix(t, "/") && escapes(path.Join(path.Dir(name), t)) {
			return nil, unsafe("layer %d: symlink %s -> %s leaves the image root", n, q(name), q(t))
		}
		rec.kind = kindSymlink
	case tar.TypeLink:
		t, err := cleanEntry(n, hdr.Linkname)
		if err != nil {
			return nil, unsafe("layer %d: hard link %s -> %s leaves the image root or is malformed", n, q(name), q(hdr.Linkname))
		}
		rec.kind, rec.link = kindLink, t
	}
	return rec, nil
}

// apply applies a checked layer to the merged view in the order Unpack
// does: whiteouts and opaque markers first, then the entries in tar order.
// It rejects entries that go through a symlink or under a non-directory,
// and hard links to anything but an existing non-directory.
func (s *scanner) apply(n int, l *layer, recs []record) error {
	for _, w := range l.whiteouts {
		parent, err := s.parent(n, w, false)
		if err != nil {
			return err
		}
		if parent != nil {
			delete(parent.children, path.Base(w))
		}
	}
	for _, d := range l.opaques {
		if d == "." {
			s.root.children = nil
			continue
		}
		parent, err := s.parent(n, d, false)
		if err != nil {
			return err
		}
		if parent == nil {
			continue
		}
		switch nd := parent.children[path.Base(d)]; {
		case nd == nil:
		case nd.kind == kindSymlink:
			return unsafe("layer %d: the opaque marker of %s goes through a symlink", n, q(d))
		case nd.kind == kindDir:
			nd.children = nil
		}
	}
	for _, r := range recs {
		if r.name == "." {
			continue // the root's own directory entry
		}
		parent, err := s.parent(n, r.name, true)
		if err != nil {
			return err
		}
		base := path.Base(r.name)
		switch r.kind {
		case kindDir:
			if old := parent.children[base]; old == nil || old.kind != kindDir {
				parent.set(base, &node{kind: kindDir})
			}
		case kindFile, kindSymlink:
			parent.set(base, &node{kind: r.kind})
		case kindLink:
			delete(parent.children, base) // Unpack removes the old entry first
			t := s.lookup(r.link)
			if t == nil {
				return unsafe("layer %d: hard link %s -> %s names no earlier entry of the image", n, q(r.name), q(r.link))
			}
			if t.kind == kindDir {
				return unsafe("layer %d: hard link %s -> %s names a directory", n, q(r.name), q(r.link))
			}
			parent.set(base, &node{kind: t.kind})
		}
	}
	return nil
}

// parent returns the view's directory that holds name, creating missing
// directories when create is set (as Unpack does) and returning nil for a
// missing one otherwise.
func (s *scanner) parent(n int, name string, create bool) (*node, error) {
	cur := s.root
	dir := path.Dir(name)
	if dir == "." {
		return cur, nil
	}
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		start := strings.LastIndexByte(dir[:i], '/') + 1
		c := dir[start:i]
		child := cur.children[c]
		switch {
		case child == nil:
			if !create {
				return nil, nil
			}
			child = &node{kind: kindDir}
			cur.set(c, child)
		case child.kind == kindSymlink:
			return nil, unsafe("layer %d: entry %s goes through the symlink %s", n, q(name), q(dir[:i]))
		case child.kind != kindDir:
			return nil, invalid("layer %d: entry %s lies under %s, which is not a directory", n, q(name), q(dir[:i]))
		}
		cur = child
	}
	return cur, nil
}

// lookup returns the view's node at p, or nil if there is none or the way
// to it is not through directories only.
func (s *scanner) lookup(p string) *node {
	cur := s.root
	for _, c := range strings.Split(p, "/") {
		if cur.kind != kindDir {
			return nil
		}
		if cur = cur.children[c]; cur == nil {
			return nil
		}
	}
	return cur
}

func (nd *node) set(name string, child *node) {
	if nd.children == nil {
		nd.children = make(map[string]*node)
	}
	nd.children[name] = child
}

// cleanEntry cleans a layer entry name (or hard link target): a leading
// "/" is dropped, so absolute names are taken relative to the image root,
// and a name that still climbs above the root is unsafe. The root itself
// is ".".
func cleanEntry(n int, name string) (string, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", invalid("layer %d: an entry has an empty or malformed name", n)
	}
	if len(name) > maxPathLen {
		return "", invalid("layer %d: entry %s has a name longer than %d bytes", n, q(name), maxPathLen)
	}
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == "" {
		c = "."
	}
	if escapes(c) {
		return "", unsafe("layer %d: entry %s leaves the image root", n, q(name))
	}
	for rest := c; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "/")
		if len(part) > maxComponentLen {
			return "", invalid("layer %d: entry %s has a name part longer than %d bytes", n, q(name), maxComponentLen)
		}
	}
	return c, nil
}

// escapes reports whether a cleaned relative path climbs above its root.
func escapes(p string) bool {
	return p == ".." || strings.HasPrefix(p, "../")
}

// Whiteout kinds of a cleaned entry name.
const (
	whNone = iota // an ordinary entry
	whFile        // .wh.NAME: remove NAME of lower layers
	whDir         // .wh..wh..opq: hide the directory's lower contents
	whSkip        // AUFS metadata (.wh..wh.*): ignored
)

// whiteoutOf classifies a cleaned entry name and returns the path a
// whiteout removes or the directory an opaque marker hides.
func whiteoutOf(name string) (int, string, error) {
	if !strings.Contains(name, whPrefix) {
		return whNone, "", nil
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	for rest := dir; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "/")
		if strings.HasPrefix(part, whMeta) {
			return whSkip, "", nil
		}
		if strings.HasPrefix(part, whPrefix) {
			return 0, "", errors.New("a whiteout name is used as a directory")
		}
	}
	if dir == "" {
		dir = "."
	}
	switch {
	case base == whOpaque:
		return whDir, dir, nil
	case strings.HasPrefix(base, whMeta):
		return whSkip, "", nil
	case strings.HasPrefix(base, whPrefix):
		t := base[len(whPrefix):]
		if t == "" || t == "." || t == ".." {
			return 0, "", errors.New("the whiteout names nothing")
		}
		return whFile, path.Join(dir, t), nil
	}
	return whNone, "", nil
}
