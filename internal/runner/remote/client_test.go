package remote

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
)

func TestNewClientChecksURLs(t *testing.T) {
	t.Parallel()
	for _, bad := range [][]string{nil, {"http://a:1"}, {"https://"}, {"a:1"}, {"https://a:1", "ftp://b"}} {
		if _, err := NewClient(bad, &tls.Config{}, nil); ward.CodeOf(err) != ward.CodeInvalidArgument {
			t.Errorf("NewClient(%q): %v, want invalid_argument", bad, err)
		}
	}
	if _, err := NewClient([]string{"https://a:1/"}, &tls.Config{}, nil); err != nil {
		t.Fatal(err)
	}
}

// A server that cannot be reached is left for the next; one answering
// (even with an error) is kept.
func TestClientMovesOnFromAnUnreachableServer(t *testing.T) {
	t.Parallel()
	c, err := NewClient([]string{"https://a:1", "https://b:2/"}, &tls.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.base() != "https://a:1" {
		t.Fatalf("first base %q", c.base())
	}
	c.failed("https://a:1")
	if c.base() != "https://b:2" {
		t.Fatalf("after a failure: %q", c.base())
	}
	c.failed("https://a:1") // a late failure of the old one changes nothing
	if c.base() != "https://b:2" {
		t.Fatalf("after a stale failure: %q", c.base())
	}
	c.failed("https://b:2")
	if c.base() != "https://a:1" {
		t.Fatalf("wrap around: %q", c.base())
	}
}

func TestDecodeError(t *testing.T) {
	t.Parallel()
	err := decodeError(409, []byte(`{"error":{"code":"stale_lease","message":"gone"}}`))
	if !errors.Is(err, ward.ErrStaleLease) || err.Error() != "gone" {
		t.Fatalf("decoded %v", err)
	}
	if err := decodeError(502, []byte(`<html>`)); err == nil || ward.CodeOf(err) != ward.CodeInternal {
		t.Fatalf("non-JSON answer: %v", err)
	}
}

func FuzzDecodeError(f *testing.F) {
	f.Add(409, []byte(`{"error":{"code":"stale_lease","message":"gone"}}`))
	f.Add(500, []byte(`{"error":{}}`))
	f.Add(401, []byte(`null`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if err := decodeError(status, body); err == nil {
			t.Fatal("an error answer decoded to no error")
		}
	})
}

// TestLeaseCarriesRuntimes checks the lease request on the wire: the
// runtimes a runner can run travel with it (and are left out when it names
// none), and the server decodes them, strictly, into a LeaseRequest.
func TestLeaseCarriesRuntimes(t *testing.T) {
	t.Parallel()
	type seen struct {
		raw map[string]json.RawMessage
		req runner.LeaseRequest
		err error
	}
	got := make(chan seen, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != PathLease {
			http.NotFound(w, r)
			return
		}
		var s seen
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = json.Unmarshal(body, &s.raw)
		}
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields() // as the server decodes it
			err = dec.Decode(&s.req)
		}
		s.err = err
		got <- s
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(LeaseResponse{Jobs: []runner.Job{{TaskID: "t_1", LeaseID: "l_1"}}})
	}))
	defer srv.Close()
	c, err := NewClient([]string{srv.URL}, srv.Client().Transport.(*http.Transport).TLSClientConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, runtimes := range [][]ward.Runtime{{ward.RuntimeWasm, ward.RuntimeOCI}, nil} {
		jobs, err := c.Lease(t.Context(), &runner.LeaseRequest{RunnerID: "r_1", Max: 3, FreeMemoryMB: 256, Wait: time.Second, Runtimes: runtimes})
		if err != nil || len(jobs) != 1 || jobs[0].TaskID != "t_1" {
			t.Fatalf("Lease(%v) = %+v, %v", runtimes, jobs, err)
		}
		s := <-got
		if s.err != nil {
			t.Fatalf("Lease(%v): the server could not decode the request: %v", runtimes, s.err)
		}
		if !slices.Equal(s.req.Runtimes, runtimes) || s.req.Max != 3 || s.req.FreeMemoryMB != 256 || s.req.Wait != time.Second {
			t.Fatalf("Lease(%v): the server read %+v", runtimes, s.req)
		}
		if _, ok := s.raw["runtimes"]; ok != (len(runtimes) > 0) {
			t.Fatalf("Lease(%v): runtimes on the wire %t, want %t", runtimes, ok, len(runtimes) > 0)
		}
		if _, ok := s.raw["RunnerID"]; ok || s.req.RunnerID != "" {
			t.Fatalf("Lease(%v): the runner ID went on the wire", runtimes)
		}
	}
}
