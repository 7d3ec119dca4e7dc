package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/image"
)

// puller is one Pull in progress.
type puller struct {
	ctx      context.Context
	ref      name.Reference
	opts     Options
	platform v1.Platform
	remote   *remote.Puller
}

// host names the registry in messages.
func (p *puller) host() string { return p.ref.Context().RegistryStr() }

// name names the image in messages: the reference in its full form.
func (p *puller) name() string { return p.ref.Name() }

func (p *puller) pull() ([]byte, string, error) {
	raw, mt, err := p.manifest()
	if err != nil {
		return nil, "", err
	}
	pl, err := planImage(raw, mt, p.name())
	if err != nil {
		return nil, "", err
	}
	if pl.archiveSize > p.opts.MaxBytes {
		return nil, "", tooLarge(p.name(), pl.archiveSize, p.opts.MaxBytes)
	}

	w := newLayoutWriter(pl.archiveSize)
	if err := w.file("oci-layout", []byte(ociLayout)); err != nil {
		return nil, "", err
	}
	if err := w.file("index.json", pl.indexJSON); err != nil {
		return nil, "", err
	}
	if err := w.file(blobPath(pl.digest), raw); err != nil {
		return nil, "", err
	}
	// The config comes first among the fetched blobs, so a config for the
	// wrong platform stops the pull before any layer is downloaded.
	var config bytes.Buffer
	for i, b := range pl.blobs {
		if err := w.header(blobPath(b.desc.Digest), b.desc.Size); err != nil {
			return nil, "", err
		}
		out := io.Writer(w.tw)
		if i == 0 {
			out = io.MultiWriter(w.tw, &config)
		}
		if err := p.copyBlob(out, b.desc, b.what); err != nil {
			return nil, "", err
		}
		if i == 0 {
			if err := checkConfig(config.Bytes(), p.platform, p.name()); err != nil {
				return nil, "", err
			}
		}
	}
	archive, err := w.close()
	if err != nil {
		return nil, "", err
	}
	if int64(len(archive)) > p.opts.MaxBytes {
		return nil, "", tooLarge(p.name(), int64(len(archive)), p.opts.MaxBytes)
	}
	return archive, pl.digest.String(), nil
}

// manifest fetches the manifest the reference names and, while it is an
// index, the manifest for the platform among the index's, verifying each
// against the digest that named it. It returns the image manifest's raw
// bytes and media type.
func (p *puller) manifest() ([]byte, types.MediaType, error) {
	desc, err := p.remote.Get(p.ctx, p.ref)
	if err != nil {
		return nil, "", p.fail(err, "")
	}
	raw := desc.Manifest
	if d, ok := p.ref.(name.Digest); ok && ward.Digest(raw) != d.DigestStr() {
		return nil, "", ward.Errorf(ward.CodeDigestMismatch,
			"registry %s served a manifest for %s whose digest is %s", p.host(), p.name(), ward.Digest(raw))
	}
	mt, err := mediaTypeOf(raw, string(desc.MediaType), p.name())
	if err != nil {
		return nil, "", err
	}
	for depth := 0; mt.IsIndex(); depth++ {
		if depth >= image.MaxIndexDepth {
			return nil, "", ward.Errorf(ward.CodeInvalidImage,
				"%s has image indexes nested more than %d deep", p.name(), image.MaxIndexDepth)
		}
		child, err := chooseManifest(raw, p.platform, p.name())
		if err != nil {
			return nil, "", err
		}
		cd, err := p.remote.Get(p.ctx, p.ref.Context().Digest(child.Digest.String()))
		if err != nil {
			return nil, "", p.fail(err, "the manifest for "+formatPlatform(p.platform))
		}
		raw = cd.Manifest
		if got := ward.Digest(raw); got != child.Digest.String() || int64(len(raw)) != child.Size {
			return nil, "", ward.Errorf(ward.CodeDigestMismatch,
				"registry %s served a manifest for %s of %d bytes with digest %s; the index says %d bytes with digest %s",
				p.host(), p.name(), len(raw), got, child.Size, child.Digest)
		}
		hint := string(child.MediaType)
		if hint == "" {
			hint = string(cd.MediaType)
		}
		if mt, err = mediaTypeOf(raw, hint, p.name()); err != nil {
			return nil, "", err
		}
	}
	return raw, mt, nil
}

// copyBlob fetches the blob d names and writes it to w, checking while it
// reads that the blob is exactly d.Size bytes long and hashes to d.Digest.
// what names the blob in messages ("the config", "layer 2").
func (p *puller) copyBlob(w io.Writer, d v1.Descriptor, what string) error {
	layer, err := p.remote.Layer(p.ctx, p.ref.Context().Digest(d.Digest.String()))
	if err != nil {
		return p.fail(err, what)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return p.fail(err, what)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(rc, d.Size))
	// The registry client checks the digest too and may fail first, at the
	// blob's end; its verdict is a mismatch all the same.
	switch {
	case err != nil && !isMismatch(err):
		return p.fail(err, what)
	case n != d.Size:
		return ward.Errorf(ward.CodeDigestMismatch,
			"%s of %s (%s) is %d bytes long, not the %d bytes the manifest says", what, p.name(), d.Digest, n, d.Size)
	case err != nil || hex.EncodeToString(h.Sum(nil)) != d.Digest.Hex:
		return ward.Errorf(ward.CodeDigestMismatch,
			"%s of %s does not match its digest %s", what, p.name(), d.Digest)
	}
	// The content is right; a registry that sends more than that is not.
	var extra [1]byte
	if n, err := io.ReadFull(rc, extra[:]); n > 0 || err != nil && isMismatch(err) {
		return ward.Errorf(ward.CodeDigestMismatch,
			"%s of %s (%s) is longer than the %d bytes the manifest says", what, p.name(), d.Digest, d.Size)
	}
	return nil
}

// checkConfig checks that an image config is JSON and names the platform.
func checkConfig(raw []byte, want v1.Platform, ref string) error {
	var c struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return ward.Errorf(ward.CodeInvalidImage, "the config of %s is not valid JSON", ref)
	}
	if c.OS == "" || c.Architecture == "" {
		return ward.Errorf(ward.CodeInvalidImage,
			"the config of %s names no os or architecture; want %s", ref, formatPlatform(want))
	}
	if c.OS != want.OS || c.Architecture != want.Architecture ||
		want.Variant != "" && c.Variant != "" && c.Variant != want.Variant {
		got := v1.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant}
		return ward.Errorf(ward.CodeInvalidImage,
			"%s is an image for %s, not %s", ref, showPlatform(got), formatPlatform(want))
	}
	return nil
}

// tooLarge is the error for an archive over MaxBytes.
func tooLarge(ref string, size, limit int64) error {
	return ward.Errorf(ward.CodeBodyTooLarge,
		"%s is %d bytes as an archive, over the limit of %d bytes", ref, size, limit)
}
