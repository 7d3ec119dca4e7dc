package registry

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wardhq/ward"
)

// staticKeychain answers every lookup with the same authenticator or error.
type staticKeychain struct {
	auth authn.Authenticator
	err  error
}

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, k.err }

// anonymous is a keychain without credentials, so tests do not read the
// machine's docker config.
var anonymous = staticKeychain{auth: authn.Anonymous}

// testOptions are Options for a local plain-HTTP test registry.
func testOptions() Options { return Options{Insecure: true, Keychain: anonymous} }

// quietRegistry is an in-memory registry that does not log.
func quietRegistry() http.Handler {
	return ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
}

// serve starts a plain-HTTP test server for h and returns its host:port.
func serve(t testing.TB, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "http://")
}

// httptestTLS starts a TLS test server for h.
func httptestTLS(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// testImage returns a random image for a platform with a command, so
// image.Intake takes it when the platform is this machine's.
func testImage(t testing.TB, seed int64, osName, arch string) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS = osName
	cf.Architecture = arch
	cf.Config.Cmd = []string{"/bin/app", "--serve"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// push writes img to host/repo:tag and returns its manifest digest.
func push(t testing.TB, host, repo string, img v1.Image, opts ...remote.Option) string {
	t.Helper()
	ref, err := name.ParseReference(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push: %v", err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// platformImage is one image of a test index.
type platformImage struct {
	platform v1.Platform
	img      v1.Image
	digest   string
}

// pushIndex writes a multi-platform index of one image per platform to
// host/repo:tag and returns the images and the index digest.
func pushIndex(t testing.TB, host, repo string, platforms []v1.Platform) ([]platformImage, string) {
	t.Helper()
	var adds []mutate.IndexAddendum
	var imgs []platformImage
	for i, p := range platforms {
		img := testImage(t, int64(100+i), p.OS, p.Architecture)
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		p := p
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		imgs = append(imgs, platformImage{platform: p, img: img, digest: d.String()})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	ref, err := name.ParseReference(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("push index: %v", err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return imgs, d.String()
}

// entry is one file of an archive.
type entry struct {
	hdr  tar.Header
	data []byte
}

// readArchive reads a tar into its entries, in order.
func readArchive(t testing.TB, archive []byte) []entry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	var out []entry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading the archive: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{hdr: *hdr, data: data})
	}
}

// wantCode fails t unless err is a *ward.Error with the code.
func wantCode(t testing.TB, err error, code ward.Code) *ward.Error {
	t.Helper()
	var we *ward.Error
	if !errors.As(err, &we) {
		t.Fatalf("error = %v (%T), want a *ward.Error with code %s", err, err, code)
	}
	if we.Code != code {
		t.Fatalf("code = %s (%v), want %s", we.Code, we, code)
	}
	t.Logf("%s: %s", we.Code, we.Message)
	return we
}

// requestLog records the paths of the requests a handler serves.
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.paths = append(l.paths, r.Method+" "+r.URL.Path)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// count returns how many recorded requests contain s.
func (l *requestLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, p := range l.paths {
		if strings.Contains(p, s) {
			n++
		}
	}
	return n
}

// framing is how rewrite sends a body.
type framing int

const (
	withLength  framing = iota // with a Content-Length
	chunked                    // chunked, without a Content-Length
	chunkedHeld                // chunked, holding the response open after the body until the client goes
)

// rewrite serves h, but passes the body of GET responses whose path ends
// in suffix through change and sends it framed as f says.
func rewrite(h http.Handler, suffix string, change func([]byte) []byte, f framing) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, suffix) {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			body = change(bytes.Clone(body))
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if f != withLength {
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			half := len(body) / 2
			_, _ = w.Write(body[:half])
			_ = http.NewResponseController(w).Flush()
			_, _ = w.Write(body[half:])
			if f == chunkedHeld {
				_ = http.NewResponseController(w).Flush()
				<-r.Context().Done()
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// firstLayer returns the digest and size of an image's first layer.
func firstLayer(t testing.TB, img v1.Image) (string, int64) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0].Digest.String(), m.Layers[0].Size
}

// dialTo is a transport that sends every connection to addr, whatever host
// a request names, so tests can use registry names that are not loopback
// addresses while all traffic stays on this machine.
func dialTo(addr string, tlsConfig *tls.Config) http.RoundTripper {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: tlsConfig,
	}
}

// cutBody answers GETs whose path ends in suffix with a 200 that promises
// the whole blob and sends half of it before closing the connection.
func cutBody(h http.Handler, suffix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, suffix) {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		writeHalf(buf, body)
	})
}

func writeHalf(buf *bufio.ReadWriter, body []byte) {
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", len(body))
	_, _ = buf.Write(body[:len(body)/2])
	_ = buf.Flush()
}
