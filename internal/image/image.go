package image

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/wardhq/ward"
)

// Config is what ward uses of an image's config (the OCI image config's
// "config" object).
type Config struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
}

// Args returns Entrypoint followed by Cmd.
func (c Config) Args() []string {
	args := make([]string, 0, len(c.Entrypoint)+len(c.Cmd))
	args = append(args, c.Entrypoint...)
	return append(args, c.Cmd...)
}

// Image is a verified image in ward's canonical form. Its Archive is
// shared with the unexported layer data Unpack reads: it must not be
// modified.
type Image struct {
	Digest  string // "sha256:<hex>" of the image manifest: the image's identity
	Config  Config
	Archive []byte // the canonical archive: an OCI image layout as a tar

	layers   []layer
	unpacked int64 // uncompressed bytes over all layers
}

// UnpackedSize returns the uncompressed size of the image's layers added
// up: about the disk space its root filesystem takes.
func (img *Image) UnpackedSize() int64 { return img.unpacked }

// layer is one layer's data and what Unpack must remove before applying
// its entries.
type layer struct {
	data      []byte // the blob: a tar, gzip-compressed when gzip is set
	gzip      bool
	whiteouts []string // cleaned paths the layer's .wh.NAME entries remove
	opaques   []string // cleaned directories whose lower contents the layer hides
}

// IntakeOptions bound what Intake accepts; zero fields take defaults.
type IntakeOptions struct {
	MaxUnpackedBytes int64 // sum of all layers' uncompressed sizes; default 2 GiB
	MaxEntries       int   // tar entries over all layers; default 200000

	arch string // the architecture the image must be for; "" is runtime.GOARCH (Build sets another)
}

// Defaults for IntakeOptions.
const (
	DefaultMaxUnpackedBytes = 2 << 30
	DefaultMaxEntries       = 200000
)

// Fixed limits on what an image may hold; registry.Pull applies the
// exported ones too.
const (
	MaxJSON       = 4 << 20 // bytes of an index, manifest or config
	MaxLayers     = 500
	MaxIndexDepth = 4 // image indexes nested in one another
)

// Fixed limits on what an archive may hold.
const (
	maxNameBytes     = 64 << 20 // entry names and link targets over all layers
	maxOuterEntries  = 100000
	maxPathLen       = 4096
	maxComponentLen  = 255
	maxID            = 1<<32 - 2 // (uid_t)-1 means "no change" to chown
	maxMessageString = 80        // bytes of a name quoted in an error
)

func (o IntakeOptions) withDefaults() IntakeOptions {
	if o.MaxUnpackedBytes <= 0 {
		o.MaxUnpackedBytes = DefaultMaxUnpackedBytes
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.arch == "" {
		o.arch = runtime.GOARCH
	}
	return o
}

// Media types ward reads or writes.
const (
	mtOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mtOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtOCIConfig      = "application/vnd.oci.image.config.v1+json"
	mtOCILayer       = "application/vnd.oci.image.layer.v1.tar"
	mtOCILayerGzip   = "application/vnd.oci.image.layer.v1.tar+gzip"
	mtOCILayerZstd   = "application/vnd.oci.image.layer.v1.tar+zstd"
	mtOCIForeign     = "application/vnd.oci.image.layer.nondistributable."
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mtDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mtDockerForeign  = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// Intake checks an uploaded archive — an OCI image layout as a tar, or a
// `docker save` archive (manifest.json format; when an archive holds both,
// as Docker 25 and later write, the OCI layout is used) — and returns the
// image in canonical form. Every failure is a *ward.Error with code
// invalid_image, digest_mismatch, unsafe_layer or image_no_command.
func Intake(archive []byte, opts IntakeOptions) (*Image, error) {
	opts = opts.withDefaults()
	files, err := readOuter(archive)
	if err != nil {
		return nil, err
	}
	_, hasLayout := files["oci-layout"]
	_, hasIndex := files["index.json"]
	_, hasManifest := files["manifest.json"]
	var c *candidate
	switch {
	case hasLayout || (hasIndex && !hasManifest):
		c, err = fromLayout(files, opts.arch)
	case hasManifest:
		c, err = fromDockerSave(files)
	default:
		return nil, invalid("the archive is neither an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)")
	}
	if err != nil {
		return nil, err
	}
	layers, err := c.check(opts)
	if err != nil {
		return nil, err
	}
	return c.canonical(layers)
}

// Open re-verifies a canonical archive (as produced by Intake or Build)
// against the digest it was stored under, with all of Intake's checks.
// The returned Image's Archive is archive itself.
func Open(archive []byte, digest string, opts IntakeOptions) (*Image, error) {
	opts = opts.withDefaults()
	files, err := readOuter(archive)
	if err != nil {
		return nil, err
	}
	c, err := fromLayout(files, opts.arch)
	if err != nil {
		return nil, err
	}
	if c.manifestDigest != digest {
		return nil, ward.Errorf(ward.CodeDigestMismatch, "the archive holds image %s, not %s", c.manifestDigest, q(digest))
	}
	layers, err := c.check(opts)
	if err != nil {
		return nil, err
	}
	return c.image(archive, layers), nil
}

// candidate is an image read from an archive, its blobs checked against
// their digests but its config and layers not yet checked.
type candidate struct {
	manifest       []byte // nil for a docker save archive
	manifestDigest string
	manifestType   string
	config         []byte
	configDigest   string
	cfg            configFile
	layers         []layerBlob
	docker         bool // from a docker save archive: synthesize a manifest
}

// layerBlob is one layer as the archive holds it.
type layerBlob struct {
	digest string // the blob's digest; "" for a docker save layer.tar
	data   []byte
	gzip   bool
}

// checked is a layer after check: what Unpack needs (its data as the
// archive checked holds it), plus its size and its uncompressed data when
// that must be stored.
type checked struct {
	layer
	size         int64
	uncompressed []byte // set for compressed docker save layers only
}

// check checks the config and every layer of c.
func (c *candidate) check(opts IntakeOptions) ([]checked, error) {
	if err := json.Unmarshal(c.config, &c.cfg); err != nil {
		return nil, invalid("the image config is not valid JSON")
	}
	if err := c.cfg.check(len(c.layers), opts.arch); err != nil {
		return nil, err
	}
	s := newScanner(opts)
	out := make([]checked, len(c.layers))
	for i, lb := range c.layers {
		keep := c.docker && lb.gzip
		l, err := s.layer(i+1, lb.data, lb.gzip, c.cfg.RootFS.DiffIDs[i], keep)
		if err != nil {
			return nil, err
		}
		out[i] = l
	}
	return out, nil
}

// canonical writes the canonical archive of a checked candidate and
// returns the image over it.
func (c *candidate) canonical(layers []checked) (*Image, error) {
	blobs := make([]blobFile, 0, len(layers)+2)
	blobs = append(blobs, blobFile{digest: c.configDigest, data: c.config})
	layerDigests := make([]string, len(layers))
	for i, l := range layers {
		data := c.layers[i].data
		if l.uncompressed != nil {
			data = l.uncompressed
		}
		d := c.layers[i].digest
		if c.docker {
			d = c.cfg.RootFS.DiffIDs[i] // stored uncompressed: the digest is the diff_id
		}
		layerDigests[i] = d
		blobs = append(blobs, blobFile{digest: d, data: data})
	}
	if c.docker {
		m := manifestJSON{
			SchemaVersion: 2,
			MediaType:     mtOCIManifest,
			Config:        descriptor{MediaType: mtOCIConfig, Digest: blobs[0].digest, Size: int64(len(c.config))},
			Layers:        make([]descriptor, len(layers)),
		}
		for i := range layers {
			m.Layers[i] = descriptor{MediaType: mtOCILayer, Digest: layerDigests[i], Size: int64(len(blobs[i+1].data))}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		c.manifest, c.manifestDigest, c.manifestType = b, ward.Digest(b), mtOCIManifest
	}
	blobs = append(blobs, blobFile{digest: c.manifestDigest, data: c.manifest})
	index, err := json.Marshal(indexJSON{
		SchemaVersion: 2,
		MediaType:     mtOCIIndex,
		Manifests: []descriptor{{
			MediaType: c.manifestType,
			Digest:    c.manifestDigest,
			Size:      int64(len(c.manifest)),
			Platform:  &platform{Architecture: c.cfg.Architecture, OS: c.cfg.OS},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	archive, offsets := writeCanonical(index, blobs)
	for i := range layers {
		off := offsets[layerDigests[i]]
		layers[i].data = archive[off[0]:off[1]:off[1]]
		layers[i].gzip = layers[i].gzip && layers[i].uncompressed == nil
	}
	return c.image(archive, layers), nil
}

// image returns the Image over archive with the checked layers, whose data
// must be archive's.
func (c *candidate) image(archive []byte, layers []checked) *Image {
	img := &Image{Digest: c.manifestDigest, Config: c.cfg.config(), Archive: archive, layers: make([]layer, len(layers))}
	for i, l := range layers {
		img.layers[i] = l.layer
		img.unpacked += l.size
	}
	return img
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType string    `json:"mediaType"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	URLs      []string  `json:"urls,omitempty"`
	Platform  *platform `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type indexJSON struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []descriptor `json:"manifests"`
}

type manifestJSON struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

// configFile is the part of an OCI (or Docker) image config ward reads.
type configFile struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		User       string   `json:"User"`
		Env        []string `json:"Env"`
		Entrypoint []string `json:"Entrypoint"`
		Cmd        []string `json:"Cmd"`
		WorkingDir string   `json:"WorkingDir"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func (f *configFile) config() Config {
	return Config{
		Entrypoint: f.Config.Entrypoint,
		Cmd:        f.Config.Cmd,
		Env:        f.Config.Env,
		WorkingDir: f.Config.WorkingDir,
		User:       f.Config.User,
	}
}

// check checks the config of an image with the given number of layers
// for linux/arch.
func (f *configFile) check(layers int, arch string) error {
	if f.OS != "linux" || f.Architecture != arch {
		return invalid("the image is for %s; this platform runs linux/%s", platformName(f.OS, f.Architecture), arch)
	}
	if f.RootFS.Type != "layers" {
		return invalid("the image config's rootfs type is %s, not \"layers\"", q(f.RootFS.Type))
	}
	if len(f.RootFS.DiffIDs) != layers {
		return invalid("the image config lists %d diff_ids for %d layers", len(f.RootFS.DiffIDs), layers)
	}
	for i, d := range f.RootFS.DiffIDs {
		if _, ok := ward.DigestHex(d); !ok {
			return invalid("the image config's diff_id %d is not sha256:<64 hex>", i+1)
		}
	}
	c := f.Config
	for _, field := range []struct {
		name string
		list []string
	}{{"Entrypoint", c.Entrypoint}, {"Cmd", c.Cmd}, {"Env", c.Env}, {"User", []string{c.User}}, {"WorkingDir", []string{c.WorkingDir}}} {
		for _, s := range field.list {
			if strings.IndexByte(s, 0) >= 0 {
				return invalid("the image config's %s holds a NUL byte", field.name)
			}
		}
	}
	if len(c.Entrypoint)+len(c.Cmd) == 0 {
		return ward.Errorf(ward.CodeNoCommand, "the image config names no command (Entrypoint and Cmd are empty)")
	}
	return nil
}

// layerCompression tells whether a layer media type is gzip-compressed, or
// why it is not supported.
func layerCompression(mediaType string) (gzip bool, err error) {
	switch {
	case mediaType == mtOCILayer:
		return false, nil
	case mediaType == mtOCILayerGzip, mediaType == mtDockerLayer:
		return true, nil
	case mediaType == mtOCILayerZstd || strings.HasSuffix(mediaType, "+zstd"):
		return false, invalid("zstd-compressed layers are not supported (media type %s); use gzip or plain tar", q(mediaType))
	case mediaType == mtDockerForeign || strings.HasPrefix(mediaType, mtOCIForeign):
		return false, invalid("foreign (non-distributable) layers are not supported (media type %s)", q(mediaType))
	default:
		return false, invalid("layer media type %s is not supported", q(mediaType))
	}
}

// platformName returns "os/arch" for a message, quoting either part when
// it is empty or not a plain word.
func platformName(os, arch string) string {
	word := func(s string) string {
		if s == "" || len(s) > 32 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			return q(s)
		}
		return s
	}
	return word(os) + "/" + word(arch)
}

// q quotes s for an error message, cut so that the quoted form stays
// within a few dozen bytes.
func q(s string) string {
	cut := false
	if len(s) > maxMessageString {
		s, cut = s[:maxMessageString], true
	}
	out := strconv.Quote(s)
	for len(out) > maxMessageString+2 {
		s, cut = s[:len(s)*3/4], true
		out = strconv.Quote(s)
	}
	if cut {
		out += "…"
	}
	return out
}

func invalid(format string, args ...any) error {
	return ward.Errorf(ward.CodeInvalidImage, format, args...)
}

func mismatch(format string, args ...any) error {
	return ward.Errorf(ward.CodeDigestMismatch, format, args...)
}

func unsafe(format string, args ...any) error {
	return ward.Errorf(ward.CodeUnsafeLayer, format, args...)
}
