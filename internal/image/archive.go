package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/wardhq/ward"
)

// readOuter reads the outer archive into a map from cleaned file names to
// their contents, which are slices of archive. Directories are left out;
// symbolic links become aliases of the regular files they name.
func readOuter(archive []byte) (map[string][]byte, error) {
	br := bytes.NewReader(archive)
	tr := tar.NewReader(br)
	files := make(map[string][]byte)
	links := make(map[string]string)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, tar.ErrInsecurePath) {
			err = nil // names are checked below
		}
		if err == io.EOF {
			if n == 0 {
				return nil, invalid("the archive is empty")
			}
			break
		}
		if err != nil {
			if n == 0 {
				return nil, invalid("the archive is not a tar archive")
			}
			return nil, invalid("the archive is not a valid tar archive (after %d entries)", n)
		}
		if n >= maxOuterEntries {
			return nil, invalid("the archive has more than %d entries", maxOuterEntries)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader || hdr.Typeflag == tar.TypeDir {
			continue // directories are implied by the files' names
		}
		name, ok := cleanOuter(hdr.Name)
		if !ok {
			return nil, invalid("archive entry %s is not a relative path inside the archive", q(hdr.Name))
		}
		if _, dup := files[name]; dup {
			return nil, invalid("archive entry %s appears twice", q(name))
		}
		if _, dup := links[name]; dup {
			return nil, invalid("archive entry %s appears twice", q(name))
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			if sparse(hdr) {
				return nil, invalid("archive entry %s is a sparse file", q(name))
			}
			start := int64(len(archive)) - int64(br.Len())
			if hdr.Size > int64(len(archive))-start {
				return nil, invalid("archive entry %s is cut short", q(name))
			}
			files[name] = archive[start : start+hdr.Size : start+hdr.Size]
		case tar.TypeSymlink:
			links[name] = hdr.Linkname
		default:
			return nil, invalid("archive entry %s is a %s, not a file or directory", q(name), typeName(hdr.Typeflag))
		}
	}
	for name, target := range links {
		data, err := resolveAlias(name, target, files, links)
		if err != nil {
			return nil, err
		}
		files[name] = data
	}
	return files, nil
}

// resolveAlias follows a symbolic link of the outer archive to the regular
// file it names.
func resolveAlias(name, target string, files map[string][]byte, links map[string]string) ([]byte, error) {
	at := name
	for hops := 0; hops < 8; hops++ {
		if strings.HasPrefix(target, "/") {
			break
		}
		p, ok := cleanOuter(path.Join(path.Dir(at), target))
		if !ok {
			break
		}
		if data, ok := files[p]; ok {
			return data, nil
		}
		next, ok := links[p]
		if !ok {
			break
		}
		at, target = p, next
	}
	return nil, invalid("archive entry %s is a symlink that does not lead to a file in the archive", q(name))
}

// cleanOuter cleans a name of the outer archive: relative, inside it.
func cleanOuter(name string) (string, bool) {
	if name == "" || strings.HasPrefix(name, "/") || strings.IndexByte(name, 0) >= 0 || len(name) > maxPathLen {
		return "", false
	}
	c := path.Clean(name)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

// sparse reports whether a tar header describes a sparse file, whose data
// is not stored as one run of bytes.
func sparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// typeName names a tar entry type for messages.
func typeName(t byte) string {
	switch t {
	case tar.TypeReg:
		return "file"
	case tar.TypeDir:
		return "directory"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeGNUSparse:
		return "sparse file"
	default:
		return "entry of type " + q(string(t))
	}
}

// layout reads an OCI image layout.
type layout struct {
	files  map[string][]byte
	arch   string          // the architecture to choose
	hashed map[string]bool // blob digests already checked
}

// fromLayout reads the image of an OCI image layout, choosing the manifest
// for linux/arch, and checks every blob it uses against its descriptor.
func fromLayout(files map[string][]byte, arch string) (*candidate, error) {
	l := &layout{files: files, arch: arch, hashed: make(map[string]bool)}
	raw, ok := files["oci-layout"]
	if !ok {
		return nil, invalid("the archive has no oci-layout file")
	}
	var lay struct {
		ImageLayoutVersion string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(raw, &lay); err != nil {
		return nil, invalid("oci-layout is not valid JSON")
	}
	if lay.ImageLayoutVersion != "1.0.0" {
		return nil, invalid("oci-layout names version %s, not 1.0.0", q(lay.ImageLayoutVersion))
	}
	raw, ok = files["index.json"]
	if !ok {
		return nil, invalid("the archive has no index.json")
	}
	if len(raw) > MaxJSON {
		return nil, invalid("index.json is too large")
	}
	var idx indexJSON
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, invalid("index.json is not valid JSON")
	}
	if idx.SchemaVersion != 2 {
		return nil, invalid("index.json has schemaVersion %d, not 2", idx.SchemaVersion)
	}
	md, mt, mraw, err := l.pick(idx.Manifests, 0)
	if err != nil {
		return nil, err
	}
	var m manifestJSON
	if err := json.Unmarshal(mraw, &m); err != nil {
		return nil, invalid("manifest %s is not valid JSON", md.Digest)
	}
	if m.SchemaVersion != 2 {
		return nil, invalid("manifest %s has schemaVersion %d, not 2", md.Digest, m.SchemaVersion)
	}
	if m.MediaType != "" && m.MediaType != mt {
		return nil, invalid("manifest %s says its media type is %s, its descriptor %s", md.Digest, q(m.MediaType), q(mt))
	}
	if m.Config.MediaType != mtOCIConfig && m.Config.MediaType != mtDockerConfig {
		return nil, invalid("config media type %s is not a container image config", q(m.Config.MediaType))
	}
	if len(m.Layers) > MaxLayers {
		return nil, invalid("the image has %d layers, more than %d", len(m.Layers), MaxLayers)
	}
	if len(m.Layers) == 0 {
		return nil, invalid("the image has no layers")
	}
	config, err := l.blob(m.Config, "config")
	if err != nil {
		return nil, err
	}
	if len(config) > MaxJSON {
		return nil, invalid("the image config is too large")
	}
	c := &candidate{
		manifest:       mraw,
		manifestDigest: md.Digest,
		manifestType:   mt,
		config:         config,
		configDigest:   m.Config.Digest,
		layers:         make([]layerBlob, len(m.Layers)),
	}
	for i, d := range m.Layers {
		gz, err := layerCompression(d.MediaType)
		if err != nil {
			return nil, err
		}
		if len(d.URLs) > 0 {
			return nil, invalid("layer %d is foreign (it names URLs); foreign layers are not supported", i+1)
		}
		data, err := l.blob(d, "layer")
		if err != nil {
			return nil, err
		}
		c.layers[i] = layerBlob{digest: d.Digest, data: data, gzip: gz}
	}
	return c, nil
}

// pick chooses the manifest for linux/l.arch among an index's descriptors,
// following nested indexes, and returns its descriptor, media type and
// content.
func (l *layout) pick(list []descriptor, depth int) (descriptor, string, []byte, error) {
	if len(list) == 0 {
		return descriptor{}, "", nil, invalid("the image index lists no manifests")
	}
	var d *descriptor
	if len(list) == 1 && list[0].Platform == nil {
		d = &list[0]
	} else {
		named := 0
		for i := range list {
			p := list[i].Platform
			if p == nil {
				continue
			}
			named++
			if p.OS == "linux" && p.Architecture == l.arch {
				d = &list[i]
				break
			}
		}
		if d == nil && named == 0 {
			return descriptor{}, "", nil, invalid("the image index lists %d images and names no platform; upload one image", len(list))
		}
		if d == nil {
			return descriptor{}, "", nil, invalid("the image index has no image for linux/%s (it has %s)", l.arch, platformList(list))
		}
	}
	raw, err := l.blob(*d, "manifest")
	if err != nil {
		return descriptor{}, "", nil, err
	}
	if len(raw) > MaxJSON {
		return descriptor{}, "", nil, invalid("manifest %s is too large", d.Digest)
	}
	mt := d.MediaType
	if mt == "" {
		var probe struct {
			MediaType string           `json:"mediaType"`
			Manifests *json.RawMessage `json:"manifests"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return descriptor{}, "", nil, invalid("manifest %s is not valid JSON", d.Digest)
		}
		switch {
		case probe.MediaType != "":
			mt = probe.MediaType
		case probe.Manifests != nil:
			mt = mtOCIIndex
		default:
			mt = mtOCIManifest
		}
	}
	switch mt {
	case mtOCIManifest, mtDockerManifest:
		return *d, mt, raw, nil
	case mtOCIIndex, mtDockerList:
		if depth >= MaxIndexDepth {
			return descriptor{}, "", nil, invalid("image indexes are nested more than %d deep", MaxIndexDepth)
		}
		var idx indexJSON
		if err := json.Unmarshal(raw, &idx); err != nil {
			return descriptor{}, "", nil, invalid("image index %s is not valid JSON", d.Digest)
		}
		if idx.SchemaVersion != 2 {
			return descriptor{}, "", nil, invalid("image index %s has schemaVersion %d, not 2", d.Digest, idx.SchemaVersion)
		}
		return l.pick(idx.Manifests, depth+1)
	default:
		return descriptor{}, "", nil, invalid("manifest media type %s is not supported", q(mt))
	}
}

// platformList names the platforms of an index's descriptors for a
// message: a few of them, plain words only.
func platformList(list []descriptor) string {
	var names []string
	seen := make(map[string]bool)
	more := false
	for _, d := range list {
		if d.Platform == nil {
			continue
		}
		n := platformName(d.Platform.OS, d.Platform.Architecture)
		switch {
		case seen[n]:
		case len(names) == 4 || strings.Contains(n, `"`):
			more = true
		default:
			seen[n] = true
			names = append(names, n)
		}
	}
	if more {
		names = append(names, "…")
	}
	return strings.Join(names, ", ")
}

// blob returns the blob a descriptor names, checked against its digest and
// size.
func (l *layout) blob(d descriptor, what string) ([]byte, error) {
	h, ok := ward.DigestHex(d.Digest)
	if !ok {
		return nil, invalid("%s digest %s is not sha256:<64 hex>", what, q(d.Digest))
	}
	data, ok := l.files["blobs/sha256/"+h]
	if !ok {
		return nil, invalid("%s blob %s is missing from the archive", what, d.Digest)
	}
	if int64(len(data)) != d.Size {
		return nil, mismatch("%s blob %s is %d bytes; its descriptor says %d", what, d.Digest, len(data), d.Size)
	}
	if !l.hashed[h] {
		if ward.Digest(data) != d.Digest {
			return nil, mismatch("%s blob %s does not match its digest", what, d.Digest)
		}
		l.hashed[h] = true
	}
	return data, nil
}

// fromDockerSave reads the image of a docker save archive (manifest.json),
// either with legacy <id>/layer.tar files or with blobs/sha256 files.
func fromDockerSave(files map[string][]byte) (*candidate, error) {
	raw := files["manifest.json"]
	if len(raw) > MaxJSON {
		return nil, invalid("manifest.json is too large")
	}
	var items []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid("manifest.json is not valid JSON")
	}
	if len(items) != 1 {
		return nil, invalid("manifest.json lists %d images; upload exactly one", len(items))
	}
	it := items[0]
	name, ok := cleanOuter(it.Config)
	if !ok {
		return nil, invalid("manifest.json names config %s, not a path inside the archive", q(it.Config))
	}
	config, ok := files[name]
	if !ok {
		return nil, invalid("config %s is missing from the archive", q(name))
	}
	if len(config) > MaxJSON {
		return nil, invalid("the image config is too large")
	}
	id, ok := idFromName(name)
	if !ok {
		return nil, invalid("config name %s does not carry its digest", q(name))
	}
	if ward.Digest(config) != "sha256:"+id {
		return nil, mismatch("config %s does not match the digest in its name", q(name))
	}
	if len(it.Layers) > MaxLayers {
		return nil, invalid("the image has %d layers, more than %d", len(it.Layers), MaxLayers)
	}
	if len(it.Layers) == 0 {
		return nil, invalid("the image has no layers")
	}
	c := &candidate{config: config, configDigest: "sha256:" + id, docker: true, layers: make([]layerBlob, len(it.Layers))}
	for i, ln := range it.Layers {
		name, ok := cleanOuter(ln)
		if !ok {
			return nil, invalid("manifest.json names layer %s, not a path inside the archive", q(ln))
		}
		data, ok := files[name]
		if !ok {
			return nil, invalid("layer %d (%s) is missing from the archive", i+1, q(name))
		}
		if h, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && ward.IsSHA256Hex(h) && ward.Digest(data) != "sha256:"+h {
			return nil, mismatch("layer %d (%s) does not match its digest", i+1, q(name))
		}
		switch {
		case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
			c.layers[i] = layerBlob{data: data, gzip: true}
		case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			return nil, invalid("layer %d is zstd-compressed; zstd layers are not supported", i+1)
		default:
			c.layers[i] = layerBlob{data: data}
		}
	}
	return c, nil
}

// idFromName returns the content digest a docker save config's name
// carries: "<hex>.json" or "blobs/sha256/<hex>".
func idFromName(name string) (string, bool) {
	if h, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && ward.IsSHA256Hex(h) {
		return h, true
	}
	if h, ok := strings.CutSuffix(name, ".json"); ok && ward.IsSHA256Hex(h) {
		return h, true
	}
	return "", false
}

// blobFile is one blob of a canonical archive.
type blobFile struct {
	digest string
	data   []byte
}

// epoch is the modification time of every canonical archive entry.
var epoch = time.Unix(0, 0)

// writeCanonical writes a canonical archive: oci-layout, index.json and
// the blobs, sorted by name, with fixed times, modes and owners. It
// returns the archive and, for each blob digest, the start and end of its
// data in the archive.
func writeCanonical(index []byte, blobs []blobFile) ([]byte, map[string][2]int) {
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].digest < blobs[j].digest })
	size := 4096 + len(index)
	for _, b := range blobs {
		size += 1024 + len(b.data)
	}
	var buf bytes.Buffer
	buf.Grow(size)
	tw := tar.NewWriter(&buf)
	offsets := make(map[string][2]int, len(blobs))
	dir := func(name string) {
		mustWrite(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch}))
	}
	file := func(name string, data []byte) [2]int {
		mustWrite(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644, ModTime: epoch}))
		start := buf.Len()
		_, err := tw.Write(data)
		mustWrite(err)
		return [2]int{start, start + len(data)}
	}
	dir("blobs/")
	dir("blobs/sha256/")
	for _, b := range blobs {
		if _, done := offsets[b.digest]; done {
			continue
		}
		offsets[b.digest] = file("blobs/sha256/"+strings.TrimPrefix(b.digest, "sha256:"), b.data)
	}
	file("index.json", index)
	file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	mustWrite(tw.Close())
	return buf.Bytes(), offsets
}

// mustWrite panics on an error writing a tar into memory, which only a
// bug (a header the writer cannot encode) can cause.
func mustWrite(err error) {
	if err != nil {
		panic("image: writing a canonical archive: " + err.Error())
	}
}
