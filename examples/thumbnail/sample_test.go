package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite sample.json from samplePattern")

// samplePattern draws a deterministic test picture: a colour gradient with a
// disc and a frame, smooth enough to compress well as PNG.
func samplePattern(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	cx, cy, r := float64(w)*0.6, float64(h)*0.45, float64(min(w, h))*0.3
	for y := range h {
		for x := range w {
			c := color.NRGBA{
				R: uint8(255 * x / max(1, w-1)),
				G: uint8(255 * y / max(1, h-1)),
				B: 160,
				A: 255,
			}
			if math.Hypot(float64(x)-cx, float64(y)-cy) <= r {
				c = color.NRGBA{R: 250, G: 220, B: 40, A: 255}
			}
			if x < 3 || y < 3 || x >= w-3 || y >= h-3 {
				c = color.NRGBA{R: 20, G: 20, B: 20, A: 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// TestSample checks sample.json holds samplePattern(200, 150) as a PNG and
// turns into a 64×48 thumbnail. Run with -update to regenerate it.
func TestSample(t *testing.T) {
	want := samplePattern(200, 150)
	if *update {
		var img bytes.Buffer
		if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&img, want); err != nil {
			t.Fatal(err)
		}
		body, err := json.MarshalIndent(map[string]any{
			"image_b64": base64.StdEncoding.EncodeToString(img.Bytes()),
			"max_side":  64,
			"format":    "png",
		}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("sample.json", append(body, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	body, err := os.ReadFile("sample.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > 100<<10 {
		t.Errorf("sample.json is %d bytes, keep it under 100 KiB", len(body))
	}
	j, err := decodeRequest(body)
	if err != nil {
		t.Fatalf("sample.json: %v", err)
	}
	got, err := png.Decode(bytes.NewReader(j.image))
	if err != nil {
		t.Fatal(err)
	}
	if got.Bounds() != want.Bounds() {
		t.Fatalf("sample is %v, want %v", got.Bounds(), want.Bounds())
	}
	for y := range want.Rect.Dy() {
		for x := range want.Rect.Dx() {
			if g, w := color.NRGBAModel.Convert(got.At(x, y)), want.NRGBAAt(x, y); g != w {
				t.Fatalf("sample pixel (%d,%d) = %v, want %v (rerun with -update)", x, y, g, w)
			}
		}
	}
	resp, err := thumbnail(j)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Width != 64 || resp.Height != 48 || resp.Format != "png" {
		t.Errorf("sample thumbnail is %d×%d %s, want 64×48 png", resp.Width, resp.Height, resp.Format)
	}
}
