package image

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// benchArchive is an OCI archive that unpacks to about 12 MB: two gzip
// layers of 500 files each, half random (incompressible), half text.
func benchArchive(b *testing.B) []byte {
	b.Helper()
	r := rand.New(rand.NewSource(1))
	var layers [][]byte
	for l := 0; l < 2; l++ {
		var es []ent
		for d := 0; d < 20; d++ {
			es = append(es, dir(fmt.Sprintf("usr/lib/pkg%d-%d/", l, d)))
			for f := 0; f < 25; f++ {
				data := make([]byte, 12<<10)
				if f%2 == 0 {
					r.Read(data)
				} else {
					for i := range data {
						data[i] = "abcdefgh \n"[r.Intn(10)]
					}
				}
				es = append(es, file(fmt.Sprintf("usr/lib/pkg%d-%d/file%d", l, d, f), string(data)))
			}
		}
		layers = append(layers, tarOf(b, es...))
	}
	a, _ := ociImage{layers: layers, gzip: true}.archive(b)
	return a
}

func BenchmarkIntake(b *testing.B) {
	archive := benchArchive(b)
	b.SetBytes(int64(len(archive)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Intake(archive, IntakeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	img, err := Intake(benchArchive(b), IntakeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(img.Archive)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Open(img.Archive, img.Digest, IntakeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnpack(b *testing.B) {
	img, err := Intake(benchArchive(b), IntakeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	parent := b.TempDir()
	b.SetBytes(img.UnpackedSize())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(parent, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := img.Unpack(context.Background(), dir, UnpackOptions{Chown: os.Geteuid() == 0}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
