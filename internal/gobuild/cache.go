package gobuild

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	pathpkg "path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// keyVersion changes whenever the cache key's recipe does.
const keyVersion = "ward-gobuild-key-v1"

// keyEnv lists the inherited variables that can change what go build
// produces; GOOS, GOARCH, CGO_ENABLED and GOWORK are forced and so fixed.
var keyEnv = []string{"GOFLAGS", "GOEXPERIMENT", "GOWASM", "GOTOOLCHAIN", "GOROOT", "GOFIPS140"}

// keyInputs is everything a cache key is computed from.
type keyInputs struct {
	version string   // output of "go version"
	env     []string // the build environment
	root    string   // module root
	dir     string   // package directory, inside root
	skip    string   // a directory never hashed (the cache itself)
}

// cacheKey returns the hex SHA-256 of the toolchain version, the relevant
// environment, the package's path in its module, and the content of every
// file that can affect the build (see hashTree) in the module tree and in
// every directory a go.mod replace directive points at. Skipped: directories
// whose names start with "." (such as .git), nested modules (directories
// with their own go.mod), and skip.
func cacheKey(in keyInputs) (string, error) {
	h := sha256.New()
	field := func(name, value string) {
		fmt.Fprintf(h, "%s %d:%s\n", name, len(value), value)
	}
	field("recipe", keyVersion)
	field("go", in.version)
	envMap := map[string]string{}
	for _, kv := range in.env {
		k, v, _ := strings.Cut(kv, "=")
		envMap[k] = v
	}
	for _, k := range keyEnv {
		field("env", k+"="+envMap[k])
	}
	rel, err := filepath.Rel(in.root, in.dir)
	if err != nil {
		return "", fmt.Errorf("gobuild: package path: %w", err)
	}
	field("package", filepath.ToSlash(rel))

	if err := hashTree(h, "module", in.root, in.skip); err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(in.root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("gobuild: read go.mod: %w", err)
	}
	for _, target := range localReplaces(gomod) {
		if !filepath.IsAbs(target) {
			target = filepath.Join(in.root, target)
		}
		field("replace", target)
		if err := hashTree(h, "replace", target, in.skip); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashTree feeds h the relative path and content digest of every file
// under root that can change a build: Go and assembly sources, go.mod,
// go.sum and everything under vendor/, plus every file in or below a
// directory whose Go files mention //go:embed (an embed pattern can name any
// file there). Other files, such as binaries or documents elsewhere in the
// tree, do not count. Files are fed in lexical order of their paths.
func hashTree(h hash.Hash, label, root, skip string) error {
	type file struct {
		rel, path string
		d         fs.DirEntry
		sum       string
	}
	var sources, others []file
	embedDirs := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == root {
				return nil
			}
			if path == skip || strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if fi, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && fi.Mode().IsRegular() {
				return filepath.SkipDir // a nested module is not part of this one
			}
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		f := file{rel: filepath.ToSlash(rel), path: path, d: d}
		if !buildInput(f.rel) {
			others = append(others, f)
			return nil
		}
		sum, embeds, err := fileDigest(path, d, strings.HasSuffix(f.rel, ".go"))
		if err != nil {
			return err
		}
		if embeds {
			embedDirs[pathpkg.Dir(f.rel)] = true
		}
		f.sum = sum
		sources = append(sources, f)
		return nil
	})
	if err != nil {
		return fmt.Errorf("gobuild: hash sources under %s: %w", root, err)
	}
	files := sources
	for _, f := range others {
		if !underAny(f.rel, embedDirs) {
			continue
		}
		if f.sum, _, err = fileDigest(f.path, f.d, false); err != nil {
			return fmt.Errorf("gobuild: hash sources under %s: %w", root, err)
		}
		files = append(files, f)
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.rel, b.rel) })
	for _, f := range files {
		fmt.Fprintf(h, "%s %d:%s %s\n", label, len(f.rel), f.rel, f.sum)
	}
	return nil
}

// buildInput reports whether a file (slash-separated path relative to the
// module root) is read by every build that includes its directory.
func buildInput(rel string) bool {
	base := pathpkg.Base(rel)
	switch {
	case base == "go.mod", base == "go.sum", strings.HasPrefix(rel, "vendor/"):
		return true
	}
	switch pathpkg.Ext(base) {
	case ".go", ".s", ".syso":
		return true
	}
	return false
}

// underAny reports whether the file rel lies in or below one of dirs.
func underAny(rel string, dirs map[string]bool) bool {
	for d := pathpkg.Dir(rel); ; d = pathpkg.Dir(d) {
		if dirs[d] {
			return true
		}
		if d == "." || d == "/" {
			return false
		}
	}
}

// fileDigest returns the hex SHA-256 of a file's content, following a
// symlink, and, when scanEmbed is set, whether the content mentions
// //go:embed. Anything but a regular file (a dangling symlink, a link to a
// directory, a pipe) is identified by its type and link target instead, and
// never opened.
func fileDigest(path string, d fs.DirEntry, scanEmbed bool) (sum string, embeds bool, err error) {
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().IsRegular() {
		if scanEmbed {
			b, err := os.ReadFile(path)
			if err != nil {
				return "", false, err
			}
			s := sha256.Sum256(b)
			return hex.EncodeToString(s[:]), bytes.Contains(b, []byte("//go:embed")), nil
		}
		f, err := os.Open(path)
		if err != nil {
			return "", false, err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return "", false, err
		}
		return hex.EncodeToString(h.Sum(nil)), false, nil
	}
	if err != nil && (d.Type()&fs.ModeSymlink == 0 || !errors.Is(err, fs.ErrNotExist)) {
		return "", false, err
	}
	target, _ := os.Readlink(path)
	return "special:" + d.Type().String() + ":" + strconv.Quote(target), false, nil
}

// localReplaces returns the file-system targets of go.mod replace
// directives ("=> ../lib", "=> /abs/lib"), in file order without duplicates.
// Targets that are module paths (with a version) are left out: go.sum pins
// their content.
func localReplaces(gomod []byte) []string {
	var out []string
	seen := map[string]bool{}
	inBlock := false
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		var spec string
		switch {
		case inBlock && line == ")":
			inBlock = false
			continue
		case inBlock:
			spec = line
		case directive(line, "replace"):
			rest := strings.TrimSpace(line[len("replace"):])
			if rest == "(" {
				inBlock = true
				continue
			}
			spec = rest
		default:
			continue
		}
		_, rhs, ok := strings.Cut(spec, "=>")
		if !ok {
			continue
		}
		fields := tokens(rhs)
		if len(fields) != 1 {
			continue // "path version": a module, not a directory
		}
		target := fields[0]
		if !isLocalPath(target) || seen[target] {
			continue
		}
		seen[target] = true
		out = append(out, target)
	}
	return out
}

// directive reports whether line starts with the keyword kw as a word.
func directive(line, kw string) bool {
	if !strings.HasPrefix(line, kw) {
		return false
	}
	rest := line[len(kw):]
	return rest == "" || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '('
}

// tokens splits s at white space, keeping a Go-quoted string ("…" or `…`)
// as one token and unquoting it.
func tokens(s string) []string {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return out
		}
		end := strings.IndexAny(s, " \t")
		if s[0] == '"' || s[0] == '`' {
			if q, err := strconv.QuotedPrefix(s); err == nil {
				u, _ := strconv.Unquote(q)
				out = append(out, u)
				s = s[len(q):]
				continue
			}
		}
		if end < 0 {
			end = len(s)
		}
		out = append(out, s[:end])
		s = s[end:]
	}
}

// isLocalPath reports whether a replace target is a file path: absolute, or
// relative starting with ./ or ../ (go.mod's own rule).
func isLocalPath(s string) bool {
	return s == "." || s == ".." || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") ||
		filepath.IsAbs(s) || strings.HasPrefix(s, `.\`) || strings.HasPrefix(s, `..\`)
}

// readCache returns a cached build starting with magic, or false when
// there is none usable.
func readCache(path string, magic []byte, log *slog.Logger) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("gobuild: cache read failed", "path", path, "err", err)
		}
		return nil, false
	}
	if !bytes.HasPrefix(b, magic) {
		log.Warn("gobuild: ignoring corrupt cache entry", "path", path)
		return nil, false
	}
	return b, true
}

// writeCache stores b at path atomically: a temporary file in the same
// directory, synced, then renamed into place.
func writeCache(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*") // created 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
