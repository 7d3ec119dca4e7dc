package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/image"
)

// maxListed bounds the platforms an error lists.
const maxListed = 16

// mediaTypeOf returns the media type of a manifest or index: its own
// mediaType field, else hint (the Content-Type the registry sent or the
// descriptor's media type) when that is one Pull knows, else what its
// shape says. Only image manifests and indexes are accepted.
func mediaTypeOf(raw []byte, hint, ref string) (types.MediaType, error) {
	if len(raw) > image.MaxJSON {
		return "", ward.Errorf(ward.CodeInvalidImage, "the manifest of %s is over %d bytes", ref, image.MaxJSON)
	}
	var probe struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     types.MediaType  `json:"mediaType"`
		Manifests     *json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return "", ward.Errorf(ward.CodeInvalidImage, "the manifest of %s is not valid JSON", ref)
	}
	hint, _, _ = strings.Cut(hint, ";") // a Content-Type may carry parameters
	h := types.MediaType(strings.TrimSpace(hint))
	mt := probe.MediaType
	switch {
	case mt != "":
	case probe.SchemaVersion == 1:
		mt = types.DockerManifestSchema1
	case h.IsIndex() || h.IsImage():
		mt = h
	case probe.Manifests != nil:
		mt = types.OCIImageIndex
	default:
		mt = types.OCIManifestSchema1
	}
	switch {
	case mt.IsIndex() || mt.IsImage():
		return mt, nil
	case mt.IsSchema1():
		return "", ward.Errorf(ward.CodeInvalidImage,
			"%s has a Docker schema 1 manifest, which is not supported: push the image again with a current tool", ref)
	default:
		return "", ward.Errorf(ward.CodeInvalidImage, "%s is not a container image (its manifest is of type %s)", ref, quote(string(mt)))
	}
}

// chooseManifest returns the descriptor of the manifest for the platform
// among an index's: the first whose os and architecture (and variant, when
// want names one) are want's; or the only one, when it names no platform.
func chooseManifest(raw []byte, want v1.Platform, ref string) (v1.Descriptor, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, ward.Errorf(ward.CodeInvalidImage, "the image index of %s is not valid", ref)
	}
	if idx.SchemaVersion != 2 {
		return v1.Descriptor{}, ward.Errorf(ward.CodeInvalidImage,
			"the image index of %s has schemaVersion %d, not 2", ref, idx.SchemaVersion)
	}
	if len(idx.Manifests) == 0 {
		return v1.Descriptor{}, ward.Errorf(ward.CodeInvalidImage, "the image index of %s lists no manifests", ref)
	}
	var chosen *v1.Descriptor
	if len(idx.Manifests) == 1 && idx.Manifests[0].Platform == nil {
		chosen = &idx.Manifests[0]
	}
	for i := range idx.Manifests {
		if chosen != nil {
			break
		}
		if p := idx.Manifests[i].Platform; p != nil && platformMatches(*p, want) {
			chosen = &idx.Manifests[i]
		}
	}
	if chosen == nil {
		return v1.Descriptor{}, noPlatform(idx.Manifests, want, ref)
	}
	if err := checkDescriptor(*chosen, "the manifest", ref); err != nil {
		return v1.Descriptor{}, err
	}
	if chosen.Size > image.MaxJSON {
		return v1.Descriptor{}, ward.Errorf(ward.CodeInvalidImage, "the manifest of %s is over %d bytes", ref, image.MaxJSON)
	}
	return *chosen, nil
}

// platformMatches reports whether an index entry's platform is want: same
// os and architecture, and same variant when want names one.
func platformMatches(p, want v1.Platform) bool {
	return p.OS == want.OS && p.Architecture == want.Architecture &&
		(want.Variant == "" || p.Variant == want.Variant)
}

// noPlatform is the error for an index without the platform's manifest; it
// lists the platforms the index has (not attestations' unknown/unknown).
func noPlatform(list []v1.Descriptor, want v1.Platform, ref string) error {
	var have []string
	for _, d := range list {
		if d.Platform == nil || d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown" {
			continue
		}
		s := showPlatform(*d.Platform)
		if !slices.Contains(have, s) {
			have = append(have, s)
		}
	}
	slices.Sort(have)
	if len(have) == 0 {
		return ward.Errorf(ward.CodeInvalidImage,
			"%s has no image for %s: its index names no platforms", ref, formatPlatform(want))
	}
	more := ""
	if len(have) > maxListed {
		more = fmt.Sprintf(" and %d more", len(have)-maxListed)
		have = have[:maxListed]
	}
	return ward.Errorf(ward.CodeInvalidImage,
		"%s has no image for %s; it has %s%s", ref, formatPlatform(want), strings.Join(have, ", "), more)
}

// showPlatform formats a platform a registry sent, quoting it when its
// parts are not plain names.
func showPlatform(p v1.Platform) string {
	s := formatPlatform(p)
	for _, part := range []string{p.OS, p.Architecture} {
		if !platformPart(part) {
			return quote(s)
		}
	}
	if p.Variant != "" && !platformPart(p.Variant) {
		return quote(s)
	}
	return s
}

// quote quotes a string from a registry for a message, cut to 64 bytes.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

// checkDescriptor checks the digest algorithm and size of a descriptor.
func checkDescriptor(d v1.Descriptor, what, ref string) error {
	if d.Digest.Algorithm != "sha256" {
		return ward.Errorf(ward.CodeInvalidImage,
			"%s of %s has a %s digest; only sha256 is supported", what, ref, quote(d.Digest.Algorithm))
	}
	if d.Size < 0 {
		return ward.Errorf(ward.CodeInvalidImage, "%s of %s has a negative size", what, ref)
	}
	if len(d.URLs) > 0 {
		return ward.Errorf(ward.CodeInvalidImage,
			"%s of %s is foreign (it names URLs); foreign layers are not supported", what, ref)
	}
	return nil
}

// plan is what Pull fetches for an image and how large its archive is.
type plan struct {
	digest      v1.Hash // of the manifest
	indexJSON   []byte
	blobs       []blob // the config first, then the layers; each digest once
	archiveSize int64  // bytes of the archive, tar framing included
}

// blob is one blob to fetch.
type blob struct {
	desc v1.Descriptor
	what string // "the config", "layer 2"
}

// planImage parses an image manifest of media type mt and plans its
// archive.
func planImage(raw []byte, mt types.MediaType, ref string) (*plan, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidImage, "the manifest of %s is not valid", ref)
	}
	if m.SchemaVersion != 2 {
		return nil, ward.Errorf(ward.CodeInvalidImage,
			"the manifest of %s has schemaVersion %d, not 2", ref, m.SchemaVersion)
	}
	if !m.Config.MediaType.IsConfig() {
		return nil, ward.Errorf(ward.CodeInvalidImage,
			"%s is not a container image (its config is of type %s)", ref, quote(string(m.Config.MediaType)))
	}
	if err := checkDescriptor(m.Config, "the config", ref); err != nil {
		return nil, err
	}
	if m.Config.Size > image.MaxJSON {
		return nil, ward.Errorf(ward.CodeInvalidImage, "the config of %s is over %d bytes", ref, image.MaxJSON)
	}
	if len(m.Layers) == 0 {
		return nil, ward.Errorf(ward.CodeInvalidImage, "%s has no layers", ref)
	}
	if len(m.Layers) > image.MaxLayers {
		return nil, ward.Errorf(ward.CodeInvalidImage, "%s has %d layers, more than %d", ref, len(m.Layers), image.MaxLayers)
	}

	digest := v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(ward.Digest(raw), "sha256:")}
	if m.Config.Digest == digest {
		return nil, ward.Errorf(ward.CodeInvalidImage, "the config of %s is its manifest", ref)
	}
	index, err := json.Marshal(indexFile{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []descriptorFile{{MediaType: mt, Digest: digest.String(), Size: int64(len(raw))}},
	})
	if err != nil {
		return nil, ward.Errorf(ward.CodeInternal, "encoding index.json: %v", err)
	}
	pl := &plan{digest: digest, indexJSON: index}
	sizes := map[v1.Hash]int64{digest: int64(len(raw))}
	pl.blobs = append(pl.blobs, blob{desc: m.Config, what: "the config"})
	sizes[m.Config.Digest] = m.Config.Size
	for i, d := range m.Layers {
		what := fmt.Sprintf("layer %d", i+1)
		if err := checkDescriptor(d, what, ref); err != nil {
			return nil, err
		}
		if size, seen := sizes[d.Digest]; seen {
			if size != d.Size {
				return nil, ward.Errorf(ward.CodeInvalidImage,
					"the manifest of %s gives blob %s two sizes, %d and %d", ref, d.Digest, size, d.Size)
			}
			continue
		}
		sizes[d.Digest] = d.Size
		pl.blobs = append(pl.blobs, blob{desc: d, what: what})
	}

	size := entrySize(int64(len(ociLayout))) + entrySize(int64(len(index))) + entrySize(int64(len(raw))) + tarTrailer
	for _, b := range pl.blobs {
		size = addSat(size, entrySize(b.desc.Size))
	}
	pl.archiveSize = size
	return pl, nil
}

// addSat adds two non-negative sizes, saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// indexFile and descriptorFile are the JSON of the archive's index.json.
type indexFile struct {
	SchemaVersion int              `json:"schemaVersion"`
	MediaType     types.MediaType  `json:"mediaType"`
	Manifests     []descriptorFile `json:"manifests"`
}

type descriptorFile struct {
	MediaType types.MediaType `json:"mediaType"`
	Digest    string          `json:"digest"`
	Size      int64           `json:"size"`
}
