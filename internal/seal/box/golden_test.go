package box

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden-envelopes.txt")

// goldenFile holds envelopes sealed once, by format version 1, to the public
// key of fuzzSeed for the recipient to: one "plaintext-hex envelope-hex" pair
// a line (an empty plaintext leaves the line starting with the space). They pin the format (a later version must still open them) and are
// the fuzzers' genuine inputs.
var goldenFile = filepath.Join("testdata", "golden-envelopes.txt")

var goldenPlaintexts = []string{"", "a", `{"card":"4111111111111111"}`, strings.Repeat("\x07", 300)}

type golden struct {
	plaintext, envelope []byte
}

func goldenEnvelopes(t testing.TB) []golden {
	t.Helper()
	f, err := os.Open(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []golden
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ptHex, envHex, ok := strings.Cut(line, " ")
		pt, err1 := hex.DecodeString(ptHex)
		env, err2 := hex.DecodeString(envHex)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("%s: bad line %.40q", goldenFile, line)
		}
		out = append(out, golden{plaintext: pt, envelope: env})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no envelopes", goldenFile)
	}
	return out
}

func writeGolden(t testing.TB) {
	t.Helper()
	pub, err := PublicKey(fuzzSeed)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Envelopes sealed to the key with seed 0x5A×32 for %s/%s (go test ./internal/seal/box -run TestGolden -update).\n", to.Project, to.Function)
	fmt.Fprintf(&b, "# plaintext-hex envelope-hex\n")
	for _, pt := range goldenPlaintexts {
		env := seal(t, pub, to, []byte(pt))
		fmt.Fprintf(&b, "%x %x\n", pt, env)
	}
	if err := os.WriteFile(goldenFile, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGolden opens the envelopes sealed by an earlier build: the format and
// the suite must not drift.
func TestGolden(t *testing.T) {
	if *updateGolden {
		writeGolden(t)
	} else {
		t.Parallel()
	}
	gs := goldenEnvelopes(t)
	if len(gs) != len(goldenPlaintexts) {
		t.Fatalf("%d golden envelopes, want %d", len(gs), len(goldenPlaintexts))
	}
	for i, g := range gs {
		if string(g.plaintext) != goldenPlaintexts[i] {
			t.Errorf("envelope %d: plaintext %q", i, g.plaintext)
		}
		pt, err := Open(fuzzSeed, to, g.envelope)
		if err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
		if !bytes.Equal(pt, g.plaintext) {
			t.Fatalf("envelope %d opened to %q, want %q", i, pt, g.plaintext)
		}
	}
}
