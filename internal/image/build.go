package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strings"

	"github.com/wardhq/ward"
)

// File is one file of an image Build makes.
type File struct {
	Path     string      // absolute path in the image, e.g. "/task"
	Mode     fs.FileMode // permission bits plus fs.ModeSetuid/ModeSetgid/ModeSticky/ModeDir/ModeSymlink as needed
	Data     []byte      // the content; a symlink's target; empty for a directory
	UID, GID int
}

// BuildOptions describe a single-layer image.
type BuildOptions struct {
	Files      []File
	Entrypoint []string
	Env        []string
	User       string
	WorkingDir string
	Arch       string // the image's architecture as GOARCH names it; "" is runtime.GOARCH
}

// Build returns a minimal single-layer image (no base image) holding the
// files, for linux/Arch. It is deterministic: the same options always give
// the same digest and archive bytes (fixed times, sorted entries, missing
// parent directories added as 0755 root:root, an uncompressed layer). Bad
// options are invalid_argument errors; the image passes Intake's checks
// (for linux/Arch) or Build fails with their code. An image for another
// architecture than this machine's is for upload: Intake and Open here
// refuse it.
func Build(opts BuildOptions) (*Image, error) {
	arch := opts.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	if len(arch) > 32 || strings.Trim(arch, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "image: build: architecture %s is not a GOARCH name", q(arch))
	}
	layer, err := buildLayer(opts.Files)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Config       struct {
			User       string   `json:"User,omitempty"`
			Env        []string `json:"Env,omitempty"`
			Entrypoint []string `json:"Entrypoint,omitempty"`
			WorkingDir string   `json:"WorkingDir,omitempty"`
		} `json:"config"`
		RootFS struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	cfg.Architecture, cfg.OS = arch, "linux"
	cfg.Config.User, cfg.Config.Env = opts.User, opts.Env
	cfg.Config.Entrypoint, cfg.Config.WorkingDir = opts.Entrypoint, opts.WorkingDir
	layerDigest := ward.Digest(layer)
	cfg.RootFS.Type, cfg.RootFS.DiffIDs = "layers", []string{layerDigest}
	config, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("image: build: %w", err)
	}
	manifest, err := json.Marshal(manifestJSON{
		SchemaVersion: 2,
		MediaType:     mtOCIManifest,
		Config:        descriptor{MediaType: mtOCIConfig, Digest: ward.Digest(config), Size: int64(len(config))},
		Layers:        []descriptor{{MediaType: mtOCILayer, Digest: layerDigest, Size: int64(len(layer))}},
	})
	if err != nil {
		return nil, fmt.Errorf("image: build: %w", err)
	}
	digest := ward.Digest(manifest)
	index, err := json.Marshal(indexJSON{
		SchemaVersion: 2,
		MediaType:     mtOCIIndex,
		Manifests: []descriptor{{
			MediaType: mtOCIManifest,
			Digest:    digest,
			Size:      int64(len(manifest)),
			Platform:  &platform{Architecture: arch, OS: "linux"},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("image: build: %w", err)
	}
	archive, _ := writeCanonical(index, []blobFile{
		{digest: digest, data: manifest},
		{digest: ward.Digest(config), data: config},
		{digest: layerDigest, data: layer},
	})
	return Open(archive, digest, IntakeOptions{arch: arch})
}

// buildLayer returns the layer tar of the files, their missing parent
// directories added, sorted by path.
func buildLayer(files []File) ([]byte, error) {
	byPath := make(map[string]File, len(files))
	for i, f := range files {
		if err := checkFile(f); err != nil {
			return nil, ward.Errorf(ward.CodeInvalidArgument, "image: build: file %d (%s): %v", i+1, q(f.Path), err)
		}
		if _, dup := byPath[f.Path]; dup {
			return nil, ward.Errorf(ward.CodeInvalidArgument, "image: build: file %s is listed twice", q(f.Path))
		}
		byPath[f.Path] = f
	}
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "/"; dir = path.Dir(dir) {
			d, ok := byPath[dir]
			if !ok {
				byPath[dir] = File{Path: dir, Mode: fs.ModeDir | 0o755}
				continue
			}
			if !d.Mode.IsDir() {
				return nil, ward.Errorf(ward.CodeInvalidArgument, "image: build: file %s lies under %s, which is not a directory", q(f.Path), q(dir))
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		f := byPath[p]
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    modeBits(f.Mode),
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: epoch,
		}
		switch {
		case f.Mode.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		case f.Mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(f.Data)
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, ward.Errorf(ward.CodeInvalidArgument, "image: build: file %s: %v", q(p), err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("image: build: %w", err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image: build: %w", err)
	}
	return buf.Bytes(), nil
}

// checkFile checks one File of BuildOptions.
func checkFile(f File) error {
	p := f.Path
	switch {
	case !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/":
		return fmt.Errorf("the path must be absolute, clean and not the root")
	case len(p) > maxPathLen || strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("the path is too long or holds a NUL byte")
	case strings.Contains(p, "/"+whPrefix):
		return fmt.Errorf("the path names a whiteout (%s)", whPrefix)
	case f.UID < 0 || f.UID > maxID || f.GID < 0 || f.GID > maxID:
		return fmt.Errorf("the owner is out of range")
	}
	for _, part := range strings.Split(p[1:], "/") {
		if len(part) > maxComponentLen {
			return fmt.Errorf("a part of the path is longer than %d bytes", maxComponentLen)
		}
	}
	typ := f.Mode.Type()
	switch {
	case typ == fs.ModeDir:
		if len(f.Data) > 0 {
			return fmt.Errorf("a directory has no data")
		}
	case typ == fs.ModeSymlink:
		if len(f.Data) == 0 {
			return fmt.Errorf("a symlink needs its target as data")
		}
	case typ != 0:
		return fmt.Errorf("mode %v is neither a file, a directory nor a symlink", f.Mode)
	}
	if f.Mode&^(fs.ModeType|fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		return fmt.Errorf("mode %v has bits other than permissions, setuid, setgid and sticky", f.Mode)
	}
	return nil
}

// modeBits converts permission and special bits to a tar entry's mode.
func modeBits(m fs.FileMode) int64 {
	bits := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}
