package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/wardhq/ward"
)

// Fragments of the registry client's messages for content that does not
// match what named it. Its verification errors have no exported type; the
// tests serve each case so a change of wording shows.
var mismatchMessages = []string{
	"does not match requested digest", // a manifest fetched by digest
	"error verifying sha256 checksum", // a blob's content, at its end
	"error verifying size",            // a blob's length, at its end
}

// fail turns an error of a registry request into a *ward.Error, or the
// context's error when ctx has ended. blob names what was fetched ("the
// config", "layer 2", "the manifest for linux/amd64"), or is "" for the
// manifest the reference names.
func (p *puller) fail(err error, blob string) error {
	if ctxErr := p.ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var we *ward.Error
	if errors.As(err, &we) {
		return we
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return p.statusError(te, blob)
	}
	if isMismatch(err) {
		what := "the manifest"
		if blob != "" {
			what = blob
		}
		return ward.Errorf(ward.CodeDigestMismatch,
			"registry %s served %s of %s with content that does not match its digest", p.host(), what, p.name())
	}
	return p.networkError(err)
}

// isMismatch reports whether err is the registry client's verdict that
// content does not match its digest or size.
func isMismatch(err error) bool {
	msg := err.Error()
	return slices.ContainsFunc(mismatchMessages, func(s string) bool { return strings.Contains(msg, s) })
}

// statusError maps a registry's error answer to a code.
func (p *puller) statusError(te *transport.Error, blob string) error {
	has := func(codes ...transport.ErrorCode) bool {
		for _, d := range te.Errors {
			if slices.Contains(codes, d.Code) {
				return true
			}
		}
		return false
	}
	repo := p.ref.Context().Name()
	switch {
	case te.StatusCode == http.StatusUnauthorized || has(transport.UnauthorizedErrorCode):
		return ward.Errorf(ward.CodeUnauthenticated,
			"registry %s wants credentials to pull %s (or the repository does not exist): log in with `%s`",
			p.host(), repo, p.loginCommand())
	case te.StatusCode == http.StatusForbidden || has(transport.DeniedErrorCode):
		return ward.Errorf(ward.CodeUnauthenticated,
			"registry %s denied access to %s: log in with `%s` as a user who may pull it",
			p.host(), repo, p.loginCommand())
	case te.StatusCode == http.StatusNotFound ||
		has(transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode):
		if blob != "" {
			return ward.Errorf(ward.CodeNotFound, "registry %s does not have %s of %s", p.host(), blob, p.name())
		}
		return ward.Errorf(ward.CodeNotFound, "image %s not found", p.name())
	case te.StatusCode == http.StatusTooManyRequests || has(transport.TooManyRequestsErrorCode):
		return ward.Errorf(ward.CodeUnavailable,
			"registry %s is limiting the rate of pulls: try again later, or log in with `%s`", p.host(), p.loginCommand())
	case has(transport.NameInvalidErrorCode, transport.TagInvalidErrorCode):
		return ward.Errorf(ward.CodeInvalidArgument, "registry %s rejected the reference %s", p.host(), p.name())
	case te.StatusCode >= 500:
		return ward.Errorf(ward.CodeUnavailable, "registry %s failed (HTTP %d)", p.host(), te.StatusCode)
	default:
		return ward.Errorf(ward.CodeUnavailable, "registry %s answered HTTP %d", p.host(), te.StatusCode)
	}
}

// loginCommand is the command that stores credentials for the registry.
func (p *puller) loginCommand() string {
	if p.host() == name.DefaultRegistry {
		return "docker login"
	}
	return "docker login " + p.host()
}

// networkError describes a failure to talk to the registry.
func (p *puller) networkError(err error) error {
	var (
		recErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		dnsErr  *net.DNSError
		opErr   *net.OpError
	)
	switch {
	case errors.As(err, &recErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		hint := ""
		if !p.opts.Insecure {
			hint = "; for a plain-HTTP registry, allow insecure access"
		}
		return ward.Errorf(ward.CodeUnavailable, "registry %s does not speak HTTPS%s", p.host(), hint)
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &host):
		return ward.Errorf(ward.CodeUnavailable, "the TLS certificate of registry %s is not trusted", p.host())
	case errors.As(err, &dnsErr):
		return ward.Errorf(ward.CodeUnavailable, "cannot resolve the host of registry %s", p.host())
	case errors.As(err, &opErr):
		return ward.Errorf(ward.CodeUnavailable, "cannot reach registry %s: %s", p.host(), cause(opErr))
	case errors.Is(err, context.DeadlineExceeded):
		return ward.Errorf(ward.CodeUnavailable, "registry %s timed out", p.host())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return ward.Errorf(ward.CodeUnavailable, "the connection to registry %s broke off", p.host())
	default:
		return ward.Errorf(ward.CodeUnavailable, "pulling from registry %s failed: %s", p.host(), short(err))
	}
}

// cause is the innermost part of a network operation's error ("connection
// refused"), without addresses.
func cause(e *net.OpError) string {
	var errno syscall.Errno
	if errors.As(e.Err, &errno) {
		return errno.Error()
	}
	var ne net.Error
	if errors.As(e.Err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return fmt.Sprintf("%s failed", e.Op)
}

// short cuts an error's text for a message.
func short(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
