// Package registry pulls container images from OCI registries for
// `ward deploy --image`.
//
// Pull fetches one image for one platform and returns it as an OCI image
// layout tar that image.Intake accepts, together with the digest of the
// image's manifest.
//
// # Choices
//
//   - The manifest, config and layer blobs are stored byte for byte as the
//     registry served them, so the returned digest is the registry digest of
//     the platform's manifest and equals the digest image.Intake computes.
//   - A reference pinned by digest gets exactly that manifest. When the digest
//     names a multi-platform index, the index (verified against the digest)
//     is resolved to the manifest for the platform, and the digest returned
//     is that platform manifest's, not the index's.
//   - Among an index's manifests the first whose os and architecture equal
//     the platform's is taken (and its variant, when the platform names one).
//     An index with a single manifest that names no platform is taken as it
//     is. Nested indexes are followed four deep. A single image whose config
//     names another os or architecture is refused, as the server would.
//   - Every blob is checked while it is read: it must be exactly as long as
//     its descriptor says and hash to its digest, or Pull fails with
//     digest_mismatch. Foreign layers (descriptors naming URLs) are refused
//     rather than fetched from elsewhere.
//   - MaxBytes bounds the returned archive, tar framing included, and is
//     checked against the sizes the manifest declares before any layer is
//     downloaded.
//   - The archive holds oci-layout, index.json (one descriptor: the
//     manifest's media type, digest and size), then the manifest, config and
//     layer blobs in manifest order, each digest once, as regular files with
//     mode 0644, owner 0 and modification time 0: the same image always gives
//     the same bytes.
//   - Credentials come from the keychain (by default the docker config that
//     `docker login` writes, and its credential helpers); no error message
//     carries them, nor the text of a reference that failed to parse.
package registry

import (
	"context"
	"net/http"
	"runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wardhq/ward"
)

// Options for Pull; zero values take defaults.
type Options struct {
	// Platform is "os/arch" or "os/arch/variant"; default "linux/" +
	// runtime.GOARCH. It chooses the manifest from a multi-platform index.
	Platform string
	// Insecure allows plain HTTP, for a local registry.
	Insecure bool
	// Keychain finds credentials for the registry; default
	// authn.DefaultKeychain (the docker config and its credential helpers).
	Keychain authn.Keychain
	// MaxBytes caps the archive Pull returns, that is all blobs together
	// plus the tar framing; default ward.MaxImageBytes, the server's
	// upload cap. Over it Pull fails with body_too_large before
	// downloading any layer.
	MaxBytes int64
	// Transport carries the HTTP requests; default remote.DefaultTransport.
	Transport http.RoundTripper
}

// maxPlatformLen bounds the bytes of one part of a platform string. Pull
// also applies image.Intake's limits: image.MaxJSON, MaxLayers and
// MaxIndexDepth.
const maxPlatformLen = 32

// Pull fetches the image that ref names ("host/repo:tag",
// "host/repo@sha256:…"; a reference without a host names Docker Hub) for
// the platform and returns it as an OCI image layout tar together with the
// "sha256:…" digest of its manifest. A reference pinned by digest gets
// exactly that manifest; when it pins a multi-platform index, the index is
// resolved to the platform's manifest and the digest returned is that
// manifest's.
//
// Errors are *ward.Error with codes invalid_argument (a malformed reference
// or platform), not_found, unauthenticated, invalid_image (no manifest for
// the platform, or not a container image), digest_mismatch, body_too_large
// and unavailable (the registry cannot be reached or failed); when ctx ends
// first, the error is ctx.Err().
func Pull(ctx context.Context, ref string, opts Options) (archive []byte, digest string, err error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	plat, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, "", err
	}
	r, err := parseRef(ref, opts.Insecure)
	if err != nil {
		return nil, "", err
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = ward.MaxImageBytes
	}
	p := &puller{ctx: ctx, ref: r, opts: opts, platform: plat}
	auth, err := authn.Resolve(ctx, opts.Keychain, r.Context())
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		return nil, "", ward.Errorf(ward.CodeUnauthenticated,
			"cannot read the credentials for %s: check the docker config (~/.docker/config.json) and its credential helpers", p.host())
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(auth),
	}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	if p.remote, err = remote.NewPuller(ropts...); err != nil {
		return nil, "", ward.Errorf(ward.CodeInternal, "setting up the registry client: %v", err)
	}
	return p.pull()
}

// defaultPlatform is the platform Pull chooses when Options names none.
func defaultPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// parsePlatform parses "os/arch" or "os/arch/variant"; "" is the default.
func parsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return defaultPlatform(), nil
	}
	var parts [3]string
	n := 0
	for i, start := 0, 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '/' {
			continue
		}
		if n == len(parts) {
			return v1.Platform{}, badPlatform()
		}
		parts[n] = s[start:i]
		n++
		start = i + 1
	}
	if n < 2 {
		return v1.Platform{}, badPlatform()
	}
	for _, part := range parts[:n] {
		if !platformPart(part) {
			return v1.Platform{}, badPlatform()
		}
	}
	return v1.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}, nil
}

func badPlatform() error {
	return ward.Errorf(ward.CodeInvalidArgument, "the platform must be os/arch or os/arch/variant, such as linux/amd64 or linux/arm/v7")
}

// platformPart reports whether s is a valid os, architecture or variant:
// 1–32 lowercase letters, digits, '_', '.' or '-'.
func platformPart(s string) bool {
	if s == "" || len(s) > maxPlatformLen {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// formatPlatform writes a platform as os/arch[/variant].
func formatPlatform(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// parseRef parses an image reference. Its error never repeats the input,
// which may hold a mistyped credential.
func parseRef(ref string, insecure bool) (name.Reference, error) {
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidArgument,
			"the image reference is malformed: want host/repository:tag or host/repository@sha256:<hex>")
	}
	if d, ok := r.(name.Digest); ok {
		h, err := v1.NewHash(d.DigestStr())
		if err != nil || h.Algorithm != "sha256" {
			return nil, ward.Errorf(ward.CodeInvalidArgument,
				"the image reference is malformed: a digest must be sha256:<64 hex digits>")
		}
	}
	return r, nil
}
