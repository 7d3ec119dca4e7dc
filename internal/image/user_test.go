package image

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wardhq/ward"
)

const testPasswd = `# comment
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1::/:/usr/sbin/nologin
broken line
app:x:1000:1001:App:/home/app:/bin/sh
dup:x:2000:2000::/:/bin/sh
dup:x:3000:3000::/:/bin/sh
bad:x:notanumber:5::/:/bin/sh
`

const testGroup = "root:x:0:\r\nstaff:x:50:app\napp:x:1001:\nbadgroup:x:nope:\n"

func writeUserFiles(t *testing.T, dir string, passwd, group string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if passwd != "" {
		if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte(passwd), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if group != "" {
		if err := os.WriteFile(filepath.Join(dir, "etc/group"), []byte(group), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestResolveUser(t *testing.T) {
	t.Parallel()
	full := t.TempDir()
	writeUserFiles(t, full, testPasswd, testGroup)
	bare := t.TempDir() // no /etc/passwd, no /etc/group
	// A passwd that is a link out of the root filesystem.
	parent := t.TempDir()
	escaping := filepath.Join(parent, "rootfs")
	writeUserFiles(t, escaping, "", "")
	if err := os.WriteFile(filepath.Join(parent, "passwd"), []byte("evil:x:0:0::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../passwd", filepath.Join(escaping, "etc/passwd")); err != nil {
		t.Fatal(err)
	}

	type want struct {
		uid, gid uint32
		code     ward.Code
	}
	ok := func(uid, gid uint32) want { return want{uid, gid, ""} }
	bad := want{code: ward.CodeInvalidImage}
	cases := []struct {
		rootfs string
		user   string
		want   want
	}{
		{full, "", ok(0, 0)},
		{full, "root", ok(0, 0)},
		{full, "0", ok(0, 0)},
		{full, "app", ok(1000, 1001)},
		{full, "1000", ok(1000, 1001)},     // the passwd entry's gid
		{full, "4242", ok(4242, 4242)},     // not in passwd: the gid is the uid
		{full, "1000:50", ok(1000, 50)},    // numeric both
		{full, "1000:staff", ok(1000, 50)}, // group by name
		{full, "app:staff", ok(1000, 50)},
		{full, "app:0", ok(1000, 0)},
		{full, "app:root", ok(1000, 0)},
		{full, "daemon", ok(1, 1)},
		{full, "dup", ok(2000, 2000)}, // the first entry wins
		{full, "4294967294", ok(4294967294, 4294967294)},
		{full, "nobody-here", bad},
		{full, "app:nogroup", bad},
		{full, "bad", bad},          // malformed ids in passwd
		{full, "app:badgroup", bad}, // malformed id in group
		{full, "4294967295", bad},   // (uid_t)-1
		{full, "99999999999999999999", bad},
		{full, "1000:4294967295", bad},
		{full, ":5", bad},
		{full, "5:", bad},
		{full, "-1", bad}, // not a number, so a name, and unknown
		{full, "a\x00b", bad},
		{bare, "root", ok(0, 0)},
		{bare, "1000", ok(1000, 1000)},
		{bare, "1000:root", ok(1000, 0)},
		{bare, "app", bad},
		{bare, "1000:staff", bad},
		{escaping, "evil", bad},                 // the link out of the root is not followed
		{escaping, "1000:1000", ok(1000, 1000)}, // no file read needed
	}
	for _, tc := range cases {
		uid, gid, err := ResolveUser(tc.rootfs, tc.user)
		if tc.want.code != "" {
			if err == nil {
				t.Errorf("ResolveUser(%q) = %d:%d, want %s", tc.user, uid, gid, tc.want.code)
			} else if c := codeOf(t, err); c != tc.want.code {
				t.Errorf("ResolveUser(%q): code %s, want %s (%v)", tc.user, c, tc.want.code, err)
			}
			continue
		}
		if err != nil || uid != tc.want.uid || gid != tc.want.gid {
			t.Errorf("ResolveUser(%q) = %d:%d, %v; want %d:%d", tc.user, uid, gid, err, tc.want.uid, tc.want.gid)
		}
	}
}

func TestResolveUserLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	huge := make([]byte, maxUserFile+10)
	for i := range huge {
		huge[i] = '#'
	}
	writeUserFiles(t, dir, string(huge), "")
	if _, _, err := ResolveUser(dir, "app"); err == nil || codeOf(t, err) != ward.CodeInvalidImage {
		t.Errorf("ResolveUser with a huge passwd: %v", err)
	}
	if _, _, err := ResolveUser(filepath.Join(dir, "missing"), "app"); err == nil {
		t.Errorf("ResolveUser in a missing root filesystem succeeded")
	}
}
