package seal

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
)

var day0 = time.Date(2026, 11, 20, 15, 4, 5, 0, time.UTC)

func fixedClock() time.Time { return day0 }

func newRoot(t testing.TB, dir string) RootKey {
	t.Helper()
	k, err := LoadOrCreateRootKeyFile(filepath.Join(dir, "root.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openKS(t testing.TB, path string, root RootKey) *Keystore {
	t.Helper()
	ks, err := OpenKeystore(context.Background(), path, root, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.Close() })
	return ks
}

// bundle is a keystore in a temp dir with its root key.
type bundle struct {
	dir  string
	path string
	root RootKey
	ks   *Keystore
}

func newBundle(t testing.TB) *bundle {
	t.Helper()
	dir := t.TempDir()
	root := newRoot(t, dir)
	path := filepath.Join(dir, "keys.db")
	return &bundle{dir: dir, path: path, root: root, ks: openKS(t, path, root)}
}

func wantCode(t *testing.T, err error, want ward.Code) {
	t.Helper()
	if got := ward.CodeOf(err); got != want {
		t.Fatalf("code = %s (err %v), want %s", got, err, want)
	}
}

func TestEpochKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	e1, err := b.ks.EpochKey(ctx, "alpha", day0)
	if err != nil {
		t.Fatal(err)
	}
	if e1.ID() != "2026-11-20" || e1.Project != "alpha" || e1.Day != DayOf(day0) {
		t.Fatalf("epoch = %+v (%s)", e1, e1.ID())
	}
	// Same UTC day, other time zone and hour: same key.
	sameDay := time.Date(2026, 11, 20, 23, 59, 59, 0, time.UTC).In(time.FixedZone("x", -5*3600))
	e2, err := b.ks.EpochKey(ctx, "alpha", sameDay)
	if err != nil || e2.KeyID != e1.KeyID {
		t.Fatalf("same day: key %d, err %v; want key %d", e2.KeyID, err, e1.KeyID)
	}
	next, err := b.ks.EpochKey(ctx, "alpha", day0.Add(24*time.Hour))
	if err != nil || next.KeyID == e1.KeyID || next.Day != e1.Day+1 {
		t.Fatalf("next day: %+v, err %v", next, err)
	}
	other, err := b.ks.EpochKey(ctx, "beta", day0)
	if err != nil || other.KeyID == e1.KeyID {
		t.Fatalf("other project: %+v, err %v", other, err)
	}
	// Persisted: a fresh keystore on the same file returns the same key.
	if err := b.ks.Close(); err != nil {
		t.Fatal(err)
	}
	ks := openKS(t, b.path, b.root)
	e3, err := ks.EpochKey(ctx, "alpha", day0)
	if err != nil || e3.KeyID != e1.KeyID {
		t.Fatalf("after reopen: key %d, err %v; want %d", e3.KeyID, err, e1.KeyID)
	}

	for _, tt := range []struct {
		name    string
		project string
		at      time.Time
	}{
		{"bad project", "Not_Valid", day0},
		{"empty project", "", day0},
		{"before 1970", "alpha", time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)},
	} {
		_, err := ks.EpochKey(ctx, tt.project, tt.at)
		if ward.CodeOf(err) != ward.CodeInvalidArgument {
			t.Errorf("%s: err %v, want invalid_argument", tt.name, err)
		}
	}
}

func TestDayOf(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(86399, 0), 0},
		{time.Unix(86400, 0), 1},
		{time.Unix(-1, 0), -1},
		{time.Unix(-86400, 0), -1},
		{time.Unix(-86401, 0), -2},
	} {
		if got := DayOf(tt.t); got != tt.want {
			t.Errorf("DayOf(%d) = %d, want %d", tt.t.Unix(), got, tt.want)
		}
	}
}

func TestKeystoreWrongRootKey(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	if _, err := b.ks.EpochKey(context.Background(), "alpha", day0); err != nil {
		t.Fatal(err)
	}
	if err := b.ks.Close(); err != nil {
		t.Fatal(err)
	}
	other := newRoot(t, t.TempDir())
	_, err := OpenKeystore(context.Background(), b.path, other, fixedClock)
	wantCode(t, err, CodeRootKeyMismatch)
	if !strings.Contains(err.Error(), b.root.ID()) || !strings.Contains(err.Error(), other.ID()) {
		t.Fatalf("message should name both key ids: %v", err)
	}
	_, err = OpenKeystore(context.Background(), b.path, nil, fixedClock)
	wantCode(t, err, CodeRootKeyMissing)
}

func TestKeystoreFileMode(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	if _, err := b.ks.EpochKey(context.Background(), "alpha", day0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{b.path, b.path + "-wal", b.path + "-shm"} {
		fi, err := os.Stat(p)
		if os.IsNotExist(err) && p != b.path {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %04o, want no group/other access", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if err := b.ks.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(b.path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenKeystore(context.Background(), b.path, b.root, fixedClock)
	wantCode(t, err, CodeInsecureKeyFile)
}

func TestDestroyBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	ad := AD{Project: "alpha", Record: "t_1", Field: "payload"}
	var envs [3][]byte
	var wrapped [3][]byte
	for i := range envs {
		env, err := b.ks.Seal(ctx, "alpha", day0.AddDate(0, 0, i), ad, []byte("payload"))
		if err != nil {
			t.Fatal(err)
		}
		envs[i] = env
		if err := b.ks.db.QueryRowContext(ctx, `SELECT wrapped FROM epoch_keys WHERE project = 'alpha' AND day = ?`,
			DayOf(day0)+int64(i)).Scan(&wrapped[i]); err != nil {
			t.Fatal(err)
		}
	}
	betaEnv, err := b.ks.Seal(ctx, "beta", day0, AD{Project: "beta", Record: "t_1", Field: "payload"}, []byte("beta"))
	if err != nil {
		t.Fatal(err)
	}
	cfgAD := AD{Project: "alpha", Record: "config:", Field: "region"}
	lasting, err := b.ks.SealLasting(ctx, "alpha", cfgAD, []byte("eu"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.ks.DestroyBefore(ctx, "alpha", day0.AddDate(0, 0, 2))
	if err != nil || n != 2 {
		t.Fatalf("DestroyBefore = %d, %v; want 2", n, err)
	}
	check := func(ks *Keystore) {
		t.Helper()
		for i, env := range envs[:2] {
			_, err := ks.Open(ctx, "alpha", ad, env)
			if ward.CodeOf(err) != CodeKeyDestroyed {
				t.Fatalf("day %d: err %v, want key_destroyed", i, err)
			}
		}
		if pt, err := ks.Open(ctx, "alpha", ad, envs[2]); err != nil || string(pt) != "payload" {
			t.Fatalf("kept day: %q, %v", pt, err)
		}
		if pt, err := ks.Open(ctx, "beta", AD{Project: "beta", Record: "t_1", Field: "payload"}, betaEnv); err != nil || string(pt) != "beta" {
			t.Fatalf("other project: %q, %v", pt, err)
		}
		// Retention never takes the lasting key (config, secrets, code).
		if pt, err := ks.Open(ctx, "alpha", cfgAD, lasting); err != nil || string(pt) != "eu" {
			t.Fatalf("lasting key: %q, %v", pt, err)
		}
	}
	check(b.ks)
	// Destroying again finds nothing.
	if n, err := b.ks.DestroyBefore(ctx, "alpha", day0.AddDate(0, 0, 2)); err != nil || n != 0 {
		t.Fatalf("second DestroyBefore = %d, %v", n, err)
	}
	// The destroyed key bytes are gone from every keystore file, read while
	// the keystore is still open (closing would checkpoint the WAL anyway).
	var files []byte
	for _, p := range []string{b.path, b.path + "-wal"} {
		raw, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		files = append(files, raw...)
	}
	for i, w := range wrapped[:2] {
		if bytes.Contains(files, w) {
			t.Fatalf("keystore files still hold destroyed key %d", i)
		}
	}
	if !bytes.Contains(files, wrapped[2]) {
		t.Fatal("keystore files lost the kept key (the test would not detect leftovers)")
	}
	if err := b.ks.Close(); err != nil {
		t.Fatal(err)
	}
	// A fresh process (empty cache) agrees.
	check(openKS(t, b.path, b.root))
}

func TestBackupBeforeDestroy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	ad := AD{Project: "alpha", Record: "t_9", Field: "result"}
	env, err := b.ks.Seal(ctx, "alpha", day0, ad, []byte("old result"))
	if err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "keys-backup.db")
	if _, err := b.ks.db.ExecContext(ctx, `VACUUM INTO ?`, backup); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(backup, 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := b.ks.DestroyBefore(ctx, "alpha", day0.AddDate(0, 0, 1)); err != nil || n != 1 {
		t.Fatalf("DestroyBefore = %d, %v", n, err)
	}
	_, err = b.ks.Open(ctx, "alpha", ad, env)
	wantCode(t, err, CodeKeyDestroyed)
	// Only the pre-destruction keystore copy still opens the data.
	old := openKS(t, backup, b.root)
	pt, err := old.Open(ctx, "alpha", ad, env)
	if err != nil || string(pt) != "old result" {
		t.Fatalf("backup keystore: %q, %v", pt, err)
	}
}

func TestDestroyProject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	adA := AD{Project: "alpha", Record: "t_1", Field: "payload"}
	adB := AD{Project: "beta", Record: "t_1", Field: "payload"}
	var envA [][]byte
	for i := range 3 {
		env, err := b.ks.Seal(ctx, "alpha", day0.AddDate(0, 0, i), adA, []byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		envA = append(envA, env)
	}
	envB, err := b.ks.Seal(ctx, "beta", day0, adB, []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	codeAD := AD{Project: "alpha", Record: "code:sha256:00", Field: "code"}
	code, err := b.ks.SealLasting(ctx, "alpha", codeAD, []byte("\x00asm"))
	if err != nil {
		t.Fatal(err)
	}
	envA = append(envA, code)
	n, err := b.ks.DestroyProject(ctx, "alpha")
	if err != nil || n != 4 {
		t.Fatalf("DestroyProject = %d, %v; want 4 (3 days and the lasting key)", n, err)
	}
	_, err = b.ks.Open(ctx, "alpha", codeAD, code)
	wantCode(t, err, CodeKeyDestroyed)
	envA = envA[:3]
	for _, env := range envA {
		_, err := b.ks.Open(ctx, "alpha", adA, env)
		wantCode(t, err, CodeKeyDestroyed)
	}
	if pt, err := b.ks.Open(ctx, "beta", adB, envB); err != nil || string(pt) != "b" {
		t.Fatalf("other project: %q, %v", pt, err)
	}
	// A project of the same name created later gets new keys; the old
	// envelopes stay destroyed.
	fresh, err := b.ks.Seal(ctx, "alpha", day0, adA, []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.ks.Open(ctx, "alpha", adA, fresh); err != nil || string(pt) != "new" {
		t.Fatalf("recreated project: %q, %v", pt, err)
	}
	_, err = b.ks.Open(ctx, "alpha", adA, envA[0])
	wantCode(t, err, CodeKeyDestroyed)
	_, err = b.ks.DestroyProject(ctx, "Bad Name")
	wantCode(t, err, ward.CodeInvalidArgument)
}

func TestRewrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	ad := AD{Project: "alpha", Record: "t_1", Field: "log"}
	var envs [][]byte
	for i := range 2 {
		env, err := b.ks.Seal(ctx, "alpha", day0.AddDate(0, 0, i), ad, []byte("log line"))
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	var oldWrapped []byte
	if err := b.ks.db.QueryRowContext(ctx, `SELECT wrapped FROM epoch_keys LIMIT 1`).Scan(&oldWrapped); err != nil {
		t.Fatal(err)
	}
	newRootKey := newRoot(t, t.TempDir())
	n, err := b.ks.Rewrap(ctx, newRootKey)
	if err != nil || n != 2 {
		t.Fatalf("Rewrap = %d, %v; want 2", n, err)
	}
	// The old wrapping is gone from the live files (it would let the old
	// root key recover the epoch key).
	for _, p := range []string{b.path, b.path + "-wal"} {
		raw, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(raw, oldWrapped) {
			t.Fatalf("%s still holds an epoch key wrapped by the old root", filepath.Base(p))
		}
	}
	// A key created after the rotation is wrapped by the new root.
	envs = append(envs, mustSeal(t, b.ks, day0.AddDate(0, 0, 5), ad))
	if err := b.ks.Close(); err != nil {
		t.Fatal(err)
	}
	ks := openKS(t, b.path, newRootKey)
	for i, env := range envs {
		if pt, err := ks.Open(ctx, "alpha", ad, env); err != nil || string(pt) != "log line" {
			t.Fatalf("envelope %d after rotation: %q, %v", i, pt, err)
		}
	}
	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = OpenKeystore(ctx, b.path, b.root, fixedClock)
	wantCode(t, err, CodeRootKeyMismatch)
}

func mustSeal(t *testing.T, ks *Keystore, at time.Time, ad AD) []byte {
	t.Helper()
	env, err := ks.Seal(context.Background(), ad.Project, at, ad, []byte("log line"))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestKeystoreConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			ad := AD{Project: "alpha", Record: "t_" + string(rune('a'+g)), Field: "payload"}
			for i := range 20 {
				at := day0.AddDate(0, 0, i%3)
				msg := []byte{byte(g), byte(i)}
				env, err := b.ks.Seal(ctx, "alpha", at, ad, msg)
				if err != nil {
					errs <- err
					return
				}
				pt, err := b.ks.Open(ctx, "alpha", ad, env)
				if err != nil || !bytes.Equal(pt, msg) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent seal/open: %v", err)
	}
	var n int
	if err := b.ks.db.QueryRowContext(ctx, `SELECT count(*) FROM epoch_keys`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("epoch keys = %d, %v; want 3 (one per day)", n, err)
	}
}
