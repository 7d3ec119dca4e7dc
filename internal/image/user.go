package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// maxUserFile bounds /etc/passwd and /etc/group.
const maxUserFile = 4 << 20

// ResolveUser resolves an image config's User ("", "root", "1000",
// "1000:1000", "name", "name:group", "1000:group"…) against the unpacked
// root filesystem's /etc/passwd and /etc/group, read through an os.Root of
// rootfs so that no link leads outside it.
//
//   - "" is 0:0.
//   - A number is a uid, whether or not passwd lists it. Without a group,
//     the gid is that of passwd's first entry with the uid, or else the uid
//     itself (not 0 as Docker does, so that a user the image does not know
//     is not given root's group).
//   - A name is looked up in passwd (first match); its entry gives uid and
//     gid. "root" is 0:0 when passwd does not list it.
//   - A group is a gid when it is a number, else looked up in /etc/group
//     ("root" is 0 when the file does not list it).
//
// An unknown user or group name, an id above 4294967294, or a malformed
// User is an error with code invalid_image; so is a passwd or group file
// that cannot be read (a missing one is taken as empty).
func ResolveUser(rootfs, user string) (uid, gid uint32, err error) {
	var root *os.Root
	defer func() {
		if root != nil {
			root.Close()
		}
	}()
	read := func(name string) ([]byte, error) {
		if root == nil {
			r, err := os.OpenRoot(rootfs)
			if err != nil {
				return nil, fmt.Errorf("image: resolve user: %w", err)
			}
			root = r
		}
		f, err := root.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, invalid("the image's /%s cannot be read", name)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxUserFile+1))
		if err != nil {
			return nil, invalid("the image's /%s cannot be read", name)
		}
		if len(data) > maxUserFile {
			return nil, invalid("the image's /%s is larger than %d bytes", name, maxUserFile)
		}
		return data, nil
	}
	return resolveUser(user, read)
}

// resolveUser resolves user with read, which returns the content of
// etc/passwd or etc/group, nil if the file does not exist.
func resolveUser(user string, read func(name string) ([]byte, error)) (uint32, uint32, error) {
	if user == "" {
		return 0, 0, nil
	}
	if len(user) > 256 || strings.ContainsAny(user, "\x00\n") {
		return 0, 0, invalid("the image's User is malformed")
	}
	u, g, hasGroup := strings.Cut(user, ":")
	if u == "" || (hasGroup && g == "") {
		return 0, 0, invalid("the image's User %s is malformed", q(user))
	}
	var uid, gid uint32
	if n, ok, err := parseID(u); err != nil {
		return 0, 0, err
	} else if ok {
		uid = n
		if !hasGroup {
			passwd, err := read("etc/passwd")
			if err != nil {
				return 0, 0, err
			}
			gid = n
			if e, found := findEntry(passwd, 4, func(f []string) bool { return f[2] == u }); found {
				if v, ok, _ := parseID(e[3]); ok {
					gid = v
				}
			}
		}
	} else {
		passwd, err := read("etc/passwd")
		if err != nil {
			return 0, 0, err
		}
		e, found := findEntry(passwd, 4, func(f []string) bool { return f[0] == u })
		switch {
		case found:
			var ok1, ok2 bool
			uid, ok1, _ = parseID(e[2])
			gid, ok2, _ = parseID(e[3])
			if !ok1 || !ok2 {
				return 0, 0, invalid("the image's /etc/passwd entry for user %s has malformed ids", q(u))
			}
		case u == "root":
			uid, gid = 0, 0
		default:
			return 0, 0, invalid("user %s is not in the image's /etc/passwd", q(u))
		}
	}
	if hasGroup {
		n, ok, err := parseID(g)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			gid = n
		} else {
			group, err := read("etc/group")
			if err != nil {
				return 0, 0, err
			}
			e, found := findEntry(group, 3, func(f []string) bool { return f[0] == g })
			switch {
			case found:
				if gid, ok, _ = parseID(e[2]); !ok {
					return 0, 0, invalid("the image's /etc/group entry for group %s has a malformed id", q(g))
				}
			case g == "root":
				gid = 0
			default:
				return 0, 0, invalid("group %s is not in the image's /etc/group", q(g))
			}
		}
	}
	return uid, gid, nil
}

// parseID parses a decimal user or group id. ok is false for something
// that is not a number (a name); a number out of range is an error.
func parseID(s string) (id uint32, ok bool, err error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false, nil
	}
	n, perr := strconv.ParseUint(s, 10, 64)
	if perr != nil || n > maxID {
		return 0, false, invalid("id %s is out of range", q(s))
	}
	return uint32(n), true, nil
}

// findEntry returns the fields of the first line of a passwd or group
// file that has at least minFields fields and matches.
func findEntry(data []byte, minFields int, match func([]string) bool) ([]string, bool) {
	for rest := string(data); rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) >= minFields && match(f) {
			return f, true
		}
	}
	return nil, false
}
