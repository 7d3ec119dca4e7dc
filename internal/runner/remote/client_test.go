package remote

import (
	"crypto/tls"
	"errors"
	"testing"

	"github.com/wardhq/ward"
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
