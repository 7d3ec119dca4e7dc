package seal

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	ad := AD{Project: "alpha", Record: "t_01", Field: "payload"}
	for _, tt := range []struct {
		name string
		pt   []byte
	}{
		{"empty", nil},
		{"small", []byte(`{"card":"4111-1111-1111-1111"}`)},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe}},
		{"large", bytes.Repeat([]byte("marker-"), 150_000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := b.ks.Seal(ctx, "alpha", day0, ad, tt.pt)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.pt) > 4 && bytes.Contains(env, tt.pt[:len(tt.pt)/2]) {
				t.Fatal("envelope contains the plaintext")
			}
			again, err := b.ks.Seal(ctx, "alpha", day0, ad, tt.pt)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(env, again) {
				t.Fatal("two seals of the same plaintext are identical")
			}
			got, err := b.ks.Open(ctx, "alpha", ad, env)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.pt) {
				t.Fatalf("round trip changed the data (%d bytes, want %d)", len(got), len(tt.pt))
			}
		})
	}
}

func TestOpenADMismatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	ad := AD{Project: "alpha", Record: "t_01", Field: "payload"}
	env, err := b.ks.Seal(ctx, "alpha", day0, ad, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	// beta has its own key for the same day: the "moved to another project"
	// case must fail on key identity, not only on a missing key.
	if _, err := b.ks.EpochKey(ctx, "beta", day0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ad   AD
	}{
		{"other record", AD{Project: "alpha", Record: "t_02", Field: "payload"}},
		{"other field", AD{Project: "alpha", Record: "t_01", Field: "result"}},
		{"other project with keys", AD{Project: "beta", Record: "t_01", Field: "payload"}},
		{"other project without keys", AD{Project: "gamma", Record: "t_01", Field: "payload"}},
		// Same concatenation, different split: length prefixes tell them apart.
		{"shifted boundary", AD{Project: "alpha", Record: "t_01p", Field: "ayload"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pt, err := b.ks.Open(ctx, tt.ad.Project, tt.ad, env)
			wantCode(t, err, CodeIntegrity)
			if pt != nil {
				t.Fatal("Open returned data with an error")
			}
		})
	}
}

func TestSealOpenBadArguments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	good := AD{Project: "alpha", Record: "t_1", Field: "payload"}
	env, err := b.ks.Seal(ctx, "alpha", day0, good, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		project string
		ad      AD
		field   string
	}{
		{"invalid project", "Alpha!", AD{Project: "Alpha!", Record: "t_1", Field: "payload"}, "project"},
		{"ad project differs", "alpha", AD{Project: "beta", Record: "t_1", Field: "payload"}, "ad.project"},
		{"empty record", "alpha", AD{Project: "alpha", Field: "payload"}, "ad.record"},
		{"empty field", "alpha", AD{Project: "alpha", Record: "t_1"}, "ad.field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for op, err := range map[string]error{
				"seal": func() error { _, err := b.ks.Seal(ctx, tt.project, day0, tt.ad, []byte("x")); return err }(),
				"open": func() error { _, err := b.ks.Open(ctx, tt.project, tt.ad, env); return err }(),
			} {
				var we *ward.Error
				if ward.CodeOf(err) != ward.CodeInvalidArgument || !errors.As(err, &we) || we.Field != tt.field {
					t.Errorf("%s: err %v, want invalid_argument on %s", op, err, tt.field)
				}
			}
		})
	}
}

func TestOpenBitFlips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	ad := AD{Project: "alpha", Record: "t_01", Field: "payload"}
	env, err := b.ks.Seal(ctx, "alpha", day0, ad, []byte("a hundred bytes of payload would go here"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range env {
		for bit := range 8 {
			bad := bytes.Clone(env)
			bad[i] ^= 1 << bit
			pt, err := b.ks.Open(ctx, "alpha", ad, bad)
			if ward.CodeOf(err) != CodeIntegrity || pt != nil {
				t.Fatalf("flip byte %d bit %d: %q, %v; want integrity error", i, bit, pt, err)
			}
		}
	}
	for n := range len(env) {
		if _, err := b.ks.Open(ctx, "alpha", ad, env[:n]); ward.CodeOf(err) != CodeIntegrity {
			t.Fatalf("truncated to %d: %v; want integrity error", n, err)
		}
	}
	if _, err := b.ks.Open(ctx, "alpha", ad, append(bytes.Clone(env), 0)); ward.CodeOf(err) != CodeIntegrity {
		t.Fatalf("appended byte: %v; want integrity error", err)
	}
	// The intact envelope still opens: the failures above are the flips.
	if _, err := b.ks.Open(ctx, "alpha", ad, env); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	ad := AD{Project: "alpha", Record: "t_01", Field: "payload"}
	const marker = "canary-7f3a"
	env, err := b.ks.Seal(ctx, "alpha", day0, ad, []byte(marker))
	if err != nil {
		t.Fatal(err)
	}
	env[len(env)-1] ^= 1
	_, err = b.ks.Open(ctx, "alpha", ad, env)
	if err == nil || strings.Contains(err.Error(), marker) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	b := newBundle(f)
	ad := AD{Project: "alpha", Record: "t_01", Field: "payload"}
	valid, err := b.ks.Seal(ctx, "alpha", day0, ad, []byte("fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte{})
	f.Add([]byte{envelopeV2})
	f.Add(valid[:headerLen])
	f.Add(append([]byte{1}, valid[1:]...))
	f.Add(bytes.Repeat([]byte{0xff}, 120))
	f.Fuzz(func(t *testing.T, env []byte) {
		pt, err := b.ks.Open(ctx, "alpha", ad, env)
		if err == nil {
			if !bytes.Equal(env, valid) || string(pt) != "fuzz" {
				t.Fatalf("Open accepted a forged envelope (%d bytes)", len(env))
			}
			return
		}
		if c := ward.CodeOf(err); c != CodeIntegrity && c != CodeKeyDestroyed {
			t.Fatalf("unstable code %s: %v", c, err)
		}
		if pt != nil {
			t.Fatal("Open returned data with an error")
		}
	})
}

func BenchmarkSealOpen(b *testing.B) {
	ctx := context.Background()
	bb := newBundle(b)
	ad := AD{Project: "alpha", Record: "t_0123456789", Field: "payload"}
	pt := bytes.Repeat([]byte{'x'}, 100)
	if _, err := bb.ks.EpochKey(ctx, "alpha", day0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		env, err := bb.ks.Seal(ctx, "alpha", day0, ad, pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bb.ks.Open(ctx, "alpha", ad, env); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTokenMAC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	mac := func(project, pattern, value string) []byte {
		t.Helper()
		m, err := b.ks.TokenMAC(ctx, project, pattern, []byte(value))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := mac("alpha", "/email", `"ada@example.com"`)
	if len(first) != 32 {
		t.Fatalf("mac is %d bytes", len(first))
	}
	if !bytes.Equal(first, mac("alpha", "/email", `"ada@example.com"`)) {
		t.Fatal("the same value gave two tokens")
	}
	for name, other := range map[string][]byte{
		"other project": mac("beta", "/email", `"ada@example.com"`),
		"other pattern": mac("alpha", "/contact", `"ada@example.com"`),
		"other value":   mac("alpha", "/email", `"bob@example.com"`),
		"shifted split": mac("alpha", "/email\"", `ada@example.com"`),
	} {
		if bytes.Equal(first, other) {
			t.Errorf("%s gave the same token", name)
		}
	}
	// Retention does not change tokens; deleting the project does.
	if _, err := b.ks.DestroyBefore(ctx, "alpha", day0.AddDate(0, 0, 30)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, mac("alpha", "/email", `"ada@example.com"`)) {
		t.Fatal("retention changed the token")
	}
	if _, err := b.ks.DestroyProject(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, mac("alpha", "/email", `"ada@example.com"`)) {
		t.Fatal("a deleted project's token key came back")
	}
	if _, err := b.ks.TokenMAC(ctx, "Bad Name", "/x", nil); ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Fatalf("bad project: %v", err)
	}
}
