package alert

import (
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	t.Parallel()
	secret, body := []byte("signing-secret-0123"), []byte(`{"alert":"deep"}`)
	at := time.Unix(1_900_000_000, 0)
	h := Sign(secret, at, body)
	if !strings.HasPrefix(h, "t=1900000000,v1=") || len(h) != len("t=1900000000,v1=")+64 {
		t.Fatalf("Sign = %q", h)
	}
	if err := Verify(secret, h, body, at.Add(time.Minute), DefaultTolerance); err != nil {
		t.Fatalf("Verify(good) = %v", err)
	}
	// A second signature (a receiver rotating secrets) is accepted.
	if err := Verify(secret, "v1="+strings.Repeat("00", 32)+","+h, body, at, DefaultTolerance); err != nil {
		t.Fatalf("Verify(two signatures) = %v", err)
	}
	for name, c := range map[string]struct {
		secret []byte
		header string
		body   []byte
		now    time.Time
	}{
		"other secret":    {[]byte("other"), h, body, at},
		"other body":      {secret, h, []byte(`{"alert":"deeper"}`), at},
		"too old":         {secret, h, body, at.Add(DefaultTolerance + time.Second)},
		"from the future": {secret, h, body, at.Add(-DefaultTolerance - time.Second)},
		"other time":      {secret, strings.Replace(h, "t=1900000000", "t=1900000001", 1), body, at},
		"no signature":    {secret, "t=1900000000", body, at},
		"no time":         {secret, h[strings.Index(h, "v1="):], body, at},
		"two times":       {secret, "t=1," + h, body, at},
		"not hex":         {secret, "t=1900000000,v1=zz", body, at},
		"empty":           {secret, "", body, at},
	} {
		if err := Verify(c.secret, c.header, c.body, c.now, DefaultTolerance); err == nil {
			t.Errorf("%s: Verify accepted %q", name, c.header)
		}
	}
}

func FuzzVerify(f *testing.F) {
	secret, body := []byte("k"), []byte("{}")
	at := time.Unix(1_900_000_000, 0)
	f.Add(Sign(secret, at, body))
	f.Add("t=1,v1=00")
	f.Add(",,=,")
	f.Fuzz(func(t *testing.T, header string) {
		if err := Verify(secret, header, body, at, DefaultTolerance); err == nil {
			// Accepted: it carries a timestamp and the signature for it.
			if !strings.Contains(header, "t=") || !strings.Contains(header, "v1=") {
				t.Fatalf("accepted %q without t= and v1=", header)
			}
		}
	})
}
