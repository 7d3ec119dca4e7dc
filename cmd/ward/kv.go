package main

import (
	"strings"
	"unicode"
)

// parseKV splits "KEY=VALUE" at the first '='. The key must be non-empty and
// free of spaces and control characters; the value may be anything, '='
// included. Errors never quote the argument: it may hold a value that should
// not end up in a terminal's scrollback.
func parseKV(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	switch {
	case !ok:
		return "", "", usagef("expected KEY=VALUE, got an argument without '='")
	case key == "":
		return "", "", usagef("expected KEY=VALUE, got an empty key")
	case strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "", "", usagef("key %q has spaces or control characters", safe(key))
	}
	return key, value, nil
}

// parseKVs parses KEY=VALUE arguments into a map; a key given twice is an
// error (which one was meant?).
func parseKVs(args []string) (map[string]string, error) {
	m := make(map[string]string, len(args))
	for _, a := range args {
		k, v, err := parseKV(a)
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, usagef("key %q given twice", k)
		}
		m[k] = v
	}
	return m, nil
}
