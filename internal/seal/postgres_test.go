package seal

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store/postgres/pgtest"
)

// TestKeystorePostgres runs the keystore's life on PostgreSQL: seal and
// open, two servers sharing it, destruction, rotation, a wrong root key.
func TestKeystorePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	root := newRoot(t, t.TempDir())
	// Two servers open it at once: one schema, one check value.
	var wg sync.WaitGroup
	kss := make([]*Keystore, 2)
	errs := make([]error, 2)
	for i := range kss {
		wg.Go(func() { kss[i], errs[i] = OpenKeystoreDSN(ctx, dsn, root, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		t.Cleanup(func() { kss[i].Close() })
	}
	a, b := kss[0], kss[1]
	ad := AD{Project: "alpha", Record: "t_1", Field: "payload"}
	env, err := a.Seal(ctx, "alpha", day0, ad, []byte("shared"))
	if err != nil {
		t.Fatal(err)
	}
	// The other server opens it with the same epoch key, and seals under it.
	if pt, err := b.Open(ctx, "alpha", ad, env); err != nil || string(pt) != "shared" {
		t.Fatalf("second server: %q %v", pt, err)
	}
	env2, err := b.Seal(ctx, "alpha", day0, ad, []byte("back"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := a.Open(ctx, "alpha", ad, env2); err != nil || string(pt) != "back" {
		t.Fatalf("first server: %q %v", pt, err)
	}
	lasting, err := a.SealLasting(ctx, "alpha", AD{Project: "alpha", Record: "config:", Field: "k"}, []byte("v"))
	if err != nil {
		t.Fatal(err)
	}

	// A wrong root key is refused, not adopted.
	if _, err := OpenKeystoreDSN(ctx, dsn, newRoot(t, t.TempDir()), nil); ward.CodeOf(err) != CodeRootKeyMismatch {
		t.Fatalf("wrong root key: %v", err)
	}
	// Destruction reaches every server (b's cache has the key: a fresh
	// keystore reads the database).
	if n, err := a.DestroyBefore(ctx, "alpha", day0.AddDate(0, 0, 1)); err != nil || n != 1 {
		t.Fatalf("DestroyBefore = %d, %v", n, err)
	}
	c, err := OpenKeystoreDSN(ctx, dsn, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Open(ctx, "alpha", ad, env); ward.CodeOf(err) != CodeKeyDestroyed {
		t.Fatalf("after destruction: %v", err)
	}
	if pt, err := c.Open(ctx, "alpha", AD{Project: "alpha", Record: "config:", Field: "k"}, lasting); err != nil || string(pt) != "v" {
		t.Fatalf("lasting key after retention: %q %v", pt, err)
	}
	// Rotation: the new root key opens it, the old one no longer does.
	next := newRoot(t, t.TempDir())
	if _, err := c.Rewrap(ctx, next); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeystoreDSN(ctx, dsn, root, nil); ward.CodeOf(err) != CodeRootKeyMismatch {
		t.Fatalf("old root after rotation: %v", err)
	}
	d, err := OpenKeystoreDSN(ctx, dsn, next, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if pt, err := d.Open(ctx, "alpha", AD{Project: "alpha", Record: "config:", Field: "k"}, lasting); err != nil || string(pt) != "v" {
		t.Fatalf("after rotation: %q %v", pt, err)
	}
}

func TestKeystorePostgresBadDSN(t *testing.T) {
	t.Parallel()
	_, err := OpenKeystoreDSN(context.Background(), "postgres://ward:s3cret@%zz/x", newRoot(t, t.TempDir()), nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad DSN: %v", err)
	}
	if _, err := OpenKeystoreDSN(context.Background(), "postgres://x@127.0.0.1:1/x?connect_timeout=1", nil, nil); ward.CodeOf(err) != CodeRootKeyMissing {
		t.Fatalf("no root key: %v", err)
	}
}
