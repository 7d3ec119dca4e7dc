package wasm

import (
	"strings"
	"testing"
)

func TestShorten(t *testing.T) {
	t.Parallel()
	if got := shorten("first line\nsecond"); got != "first line" {
		t.Errorf("shorten kept %q", got)
	}
	long := strings.Repeat("é", maxMessage)
	if got := shorten(long); len(got) > maxMessage+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("shorten of %d bytes = %d bytes", len(long), len(got))
	}
	if got := shorten("bad \xff byte"); got != "bad ? byte" {
		t.Errorf("shorten = %q, want invalid UTF-8 replaced", got)
	}
}
