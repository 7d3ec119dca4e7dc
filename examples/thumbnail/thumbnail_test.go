package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"strings"
	"testing"
)

// solid returns a w×h image of one colour.
func solid(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// payload builds a request body; maxSide < 0 leaves max_side out.
func payload(t testing.TB, img []byte, maxSide int, format string) []byte {
	t.Helper()
	req := map[string]any{"image_b64": base64.StdEncoding.EncodeToString(img)}
	if maxSide >= 0 {
		req["max_side"] = maxSide
	}
	if format != "" {
		req["format"] = format
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFit(t *testing.T) {
	t.Parallel()
	tests := []struct{ w, h, max, wantW, wantH int }{
		{200, 150, 64, 64, 48},
		{150, 200, 64, 48, 64},
		{100, 100, 64, 64, 64},
		{64, 48, 64, 64, 48},   // already fits
		{10, 5, 1024, 10, 5},   // never enlarged
		{4096, 1, 64, 64, 1},   // a sliver keeps at least one pixel
		{1, 4096, 100, 1, 100}, //
		{4096, 4096, 1, 1, 1},
		{1000, 333, 100, 100, 33},
		{1000, 335, 100, 100, 34}, // 33.5 rounds up
	}
	for _, tt := range tests {
		w, h := fit(tt.w, tt.h, tt.max)
		if w != tt.wantW || h != tt.wantH {
			t.Errorf("fit(%d, %d, %d) = %d×%d, want %d×%d", tt.w, tt.h, tt.max, w, h, tt.wantW, tt.wantH)
		}
	}
}

func TestFitKeepsAspectRatio(t *testing.T) {
	t.Parallel()
	for w := 1; w <= 300; w += 7 {
		for h := 1; h <= 300; h += 11 {
			for _, m := range []int{1, 16, 64, 100} {
				fw, fh := fit(w, h, m)
				if fw < 1 || fh < 1 || fw > max(w, m) || fh > max(h, m) || max(fw, fh) > max(m, min(w, h)) && (w > m || h > m) {
					t.Fatalf("fit(%d, %d, %d) = %d×%d out of bounds", w, h, m, fw, fh)
				}
				if w <= m && h <= m {
					continue
				}
				// The rounded side is within half a pixel of the exact ratio.
				if w >= h {
					if exact := float64(h) * float64(m) / float64(w); math.Abs(float64(fh)-exact) > 0.5 && fh != 1 {
						t.Fatalf("fit(%d, %d, %d) height %d, exact %.2f", w, h, m, fh, exact)
					}
				} else if exact := float64(w) * float64(m) / float64(h); math.Abs(float64(fw)-exact) > 0.5 && fw != 1 {
					t.Fatalf("fit(%d, %d, %d) width %d, exact %.2f", w, h, m, fw, exact)
				}
			}
		}
	}
}

func TestAreaWeights(t *testing.T) {
	t.Parallel()
	for _, c := range [][2]int{{10, 3}, {3, 2}, {200, 64}, {7, 7}, {5, 1}, {1, 1}, {2, 5}} {
		src, dst := c[0], c[1]
		ws := areaWeights(src, dst)
		if len(ws) != dst {
			t.Fatalf("areaWeights(%d, %d) has %d rows", src, dst, len(ws))
		}
		covered := make([]float64, src) // how much of each source pixel is used
		for i, cs := range ws {
			var sum float64
			for _, c := range cs {
				if c.index < 0 || c.index >= src || c.weight <= 0 {
					t.Fatalf("areaWeights(%d, %d)[%d] has bad entry %+v", src, dst, i, c)
				}
				sum += c.weight
				covered[c.index] += c.weight * float64(src) / float64(dst)
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Errorf("areaWeights(%d, %d)[%d] sums to %v", src, dst, i, sum)
			}
		}
		if src >= dst {
			for j, c := range covered {
				if math.Abs(c-1) > 1e-9 {
					t.Errorf("areaWeights(%d, %d): source pixel %d used %.6f times, want 1", src, dst, j, c)
				}
			}
		}
	}
}

func TestResizeSolidColour(t *testing.T) {
	t.Parallel()
	colours := []color.NRGBA{
		{R: 200, G: 30, B: 90, A: 255},
		{R: 0, G: 0, B: 0, A: 255},
		{R: 255, G: 255, B: 255, A: 255},
		{R: 10, G: 250, B: 128, A: 128}, // semi-transparent
	}
	sizes := [][4]int{{200, 150, 64, 48}, {37, 23, 5, 3}, {9, 9, 9, 9}, {1000, 3, 100, 1}}
	for _, c := range colours {
		want := color.RGBAModel.Convert(c).(color.RGBA)
		for _, s := range sizes {
			got := resize(solid(s[0], s[1], c), s[2], s[3])
			if b := got.Bounds(); b.Dx() != s[2] || b.Dy() != s[3] {
				t.Fatalf("resize to %d×%d gave %v", s[2], s[3], b)
			}
			for y := range s[3] {
				for x := range s[2] {
					if px := got.RGBAAt(x, y); px != want {
						t.Fatalf("colour %v, %v: pixel (%d,%d) = %v, want %v", c, s, x, y, px, want)
					}
				}
			}
		}
	}
}

func TestResizeAverages(t *testing.T) {
	t.Parallel()
	// 4×2 image: left half black, right half white → 2×1: black, white.
	img := image.NewGray(image.Rect(0, 0, 4, 2))
	for y := range 2 {
		img.Pix[y*4+2], img.Pix[y*4+3] = 255, 255
	}
	got := resize(img, 2, 1)
	if got.RGBAAt(0, 0) != (color.RGBA{0, 0, 0, 255}) || got.RGBAAt(1, 0) != (color.RGBA{255, 255, 255, 255}) {
		t.Errorf("halves = %v, %v", got.RGBAAt(0, 0), got.RGBAAt(1, 0))
	}
	// A 2×2 checkerboard averages to mid-grey.
	checker := image.NewGray(image.Rect(0, 0, 2, 2))
	checker.Pix[0], checker.Pix[3] = 255, 255
	if px := resize(checker, 1, 1).RGBAAt(0, 0); px != (color.RGBA{128, 128, 128, 255}) {
		t.Errorf("checker average = %v, want 128 grey", px)
	}
	// 3 → 2 pixels: [0, 90, 180] → [(0·1 + 90·0.5)/1.5, (90·0.5 + 180·1)/1.5] = [30, 150].
	ramp := image.NewGray(image.Rect(0, 0, 3, 1))
	copy(ramp.Pix, []uint8{0, 90, 180})
	out := resize(ramp, 2, 1)
	if a, b := out.RGBAAt(0, 0).R, out.RGBAAt(1, 0).R; a != 30 || b != 150 {
		t.Errorf("3→2 ramp = [%d %d], want [30 150]", a, b)
	}
	// A transparent pixel must not darken its opaque neighbour's colour.
	mixed := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	copy(mixed.Pix, []uint8{255, 0, 0, 255, 0, 0, 0, 0})
	px := color.NRGBAModel.Convert(resize(mixed, 1, 1).RGBAAt(0, 0)).(color.NRGBA)
	if px.R < 254 || px.G != 0 || px.B != 0 || px.A != 128 {
		t.Errorf("red over transparent = %v, want pure red at half alpha", px)
	}
}

func TestResizeOffsetBounds(t *testing.T) {
	t.Parallel()
	// Sub-images have a non-zero origin; only their own pixels count.
	full := solid(20, 20, color.NRGBA{A: 255})
	for y := 10; y < 20; y++ {
		for x := 10; x < 20; x++ {
			full.SetNRGBA(x, y, color.NRGBA{R: 255, G: 255, B: 255, A: 255})
		}
	}
	sub := full.SubImage(image.Rect(10, 10, 20, 20))
	got := resize(sub, 2, 2)
	for y := range 2 {
		for x := range 2 {
			if px := got.RGBAAt(x, y); px != (color.RGBA{255, 255, 255, 255}) {
				t.Fatalf("pixel (%d,%d) = %v, want white", x, y, px)
			}
		}
	}
}

func TestThumbnail(t *testing.T) {
	t.Parallel()
	src := samplePattern(200, 150)
	tests := []struct {
		name       string
		img        []byte
		maxSide    int
		format     string
		wantW      int
		wantH      int
		wantFormat string
	}{
		{"png default format", encodePNG(t, src), 64, "", 64, 48, "png"},
		{"png to jpeg", encodePNG(t, src), 100, "jpeg", 100, 75, "jpeg"},
		{"jpeg default format", encodeJPEG(t, src), 30, "", 30, 23, "jpeg"},
		{"jpeg to png", encodeJPEG(t, src), 150, "png", 150, 113, "png"},
		{"default max_side", encodePNG(t, src), -1, "", 64, 48, "png"},
		{"no enlargement", encodePNG(t, src), 1024, "", 200, 150, "png"},
		{"portrait", encodePNG(t, samplePattern(30, 90)), 9, "", 3, 9, "png"},
		{"transparent to jpeg", encodePNG(t, solid(10, 10, color.NRGBA{R: 255, A: 0})), 5, "jpeg", 5, 5, "jpeg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := run(payload(t, tt.img, tt.maxSide, tt.format))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Width != tt.wantW || resp.Height != tt.wantH || resp.Format != tt.wantFormat {
				t.Fatalf("got %d×%d %s, want %d×%d %s", resp.Width, resp.Height, resp.Format, tt.wantW, tt.wantH, tt.wantFormat)
			}
			data, err := base64.StdEncoding.DecodeString(resp.ThumbnailB64)
			if err != nil {
				t.Fatal(err)
			}
			cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("thumbnail does not decode: %v", err)
			}
			if cfg.Width != tt.wantW || cfg.Height != tt.wantH || format != tt.wantFormat {
				t.Errorf("thumbnail is %d×%d %s, response says %d×%d %s", cfg.Width, cfg.Height, format, resp.Width, resp.Height, resp.Format)
			}
		})
	}
}

func TestThumbnailTransparentJPEGIsWhite(t *testing.T) {
	t.Parallel()
	resp, err := run(payload(t, encodePNG(t, solid(8, 8, color.NRGBA{})), 4, "jpeg"))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := base64.StdEncoding.DecodeString(resp.ThumbnailB64)
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r, g, b, _ := img.At(1, 1).RGBA()
	if r>>8 < 250 || g>>8 < 250 || b>>8 < 250 {
		t.Errorf("transparent area became %d,%d,%d, want white", r>>8, g>>8, b>>8)
	}
}

// pngHeader returns a minimal PNG (signature and IHDR only) that claims the
// given size: a decompression bomb's header, with no pixels to decode.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	var chunk [4]byte
	binary.BigEndian.PutUint32(chunk[:], uint32(len(ihdr)))
	b.Write(chunk[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte("IHDR"))
	crc.Write(ihdr)
	b.WriteString("IHDR")
	b.Write(ihdr)
	binary.BigEndian.PutUint32(chunk[:], crc.Sum32())
	b.Write(chunk[:])
	return b.Bytes()
}

func TestBombGuard(t *testing.T) {
	t.Parallel()
	for _, size := range [][2]uint32{{4097, 1}, {1, 4097}, {100000, 100000}, {4097, 4097}, {1 << 24, 1 << 24}} {
		_, err := decodeRequest(payload(t, pngHeader(size[0], size[1]), 64, ""))
		if err == nil || !strings.Contains(err.Error(), "each side must be 1 to 4096") {
			t.Errorf("%d×%d: err = %v, want the size limit", size[0], size[1], err)
		}
	}
	// Sizes the PNG decoder itself refuses are rejected too.
	if _, err := decodeRequest(payload(t, pngHeader(1<<30, 1<<30), 64, "")); err == nil {
		t.Error("2^30×2^30: want an error")
	}
	// The largest allowed size passes the header check.
	j, err := decodeRequest(payload(t, pngHeader(4096, 4096), 64, ""))
	if err != nil || j.config.Width != 4096 {
		t.Errorf("4096×4096: %+v, %v; want accepted", j.config, err)
	}
	// A header-only image passes validation but fails at decoding, cleanly.
	if _, err := thumbnail(j); err == nil {
		t.Error("thumbnail of a header without pixels: want an error")
	}
}

func TestDecodeRequestInvalid(t *testing.T) {
	t.Parallel()
	img := base64.StdEncoding.EncodeToString(encodePNG(t, solid(4, 4, color.NRGBA{A: 255})))
	gif := base64.StdEncoding.EncodeToString([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	tests := []struct {
		name    string
		payload string
		want    string
	}{
		{"empty", ``, "payload"},
		{"not json", `image`, "payload"},
		{"array", `[]`, "payload"},
		{"unknown field", `{"image_b64":"` + img + `","maxside":3}`, "unknown field"},
		{"trailing data", `{"image_b64":"` + img + `"} {}`, "unexpected data"},
		{"missing image", `{"max_side":3}`, "image_b64: required"},
		{"bad base64", `{"image_b64":"!!!"}`, "base64"},
		{"url base64 alphabet", `{"image_b64":"` + strings.NewReplacer("+", "-", "/", "_").Replace(img) + `_-"}`, "base64"},
		{"not an image", `{"image_b64":"aGVsbG8gd29ybGQ="}`, "not a readable PNG or JPEG"},
		{"gif", `{"image_b64":"` + gif + `"}`, "not a readable PNG or JPEG"},
		{"zero size", `{"image_b64":"` + base64.StdEncoding.EncodeToString(pngHeader(0, 5)) + `"}`, ""},
		{"too long", `{"image_b64":"` + strings.Repeat("A", base64.StdEncoding.EncodedLen(maxImageBytes)+4) + `"}`, "larger than"},
		{"max_side zero", `{"image_b64":"` + img + `","max_side":0}`, "max_side"},
		{"max_side negative", `{"image_b64":"` + img + `","max_side":-5}`, "max_side"},
		{"max_side too big", `{"image_b64":"` + img + `","max_side":1025}`, "max_side"},
		{"max_side fraction", `{"image_b64":"` + img + `","max_side":1.5}`, "payload"},
		{"bad format", `{"image_b64":"` + img + `","format":"gif"}`, "format"},
		{"format case", `{"image_b64":"` + img + `","format":"PNG"}`, "format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := decodeRequest([]byte(tt.payload))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeRequestValid(t *testing.T) {
	t.Parallel()
	img := encodeJPEG(t, samplePattern(40, 30))
	j, err := decodeRequest(payload(t, img, 1024, "png"))
	if err != nil {
		t.Fatal(err)
	}
	if j.maxSide != 1024 || j.format != "png" || j.config.Width != 40 || j.config.Height != 30 || !bytes.Equal(j.image, img) {
		t.Errorf("job = %d %s %+v", j.maxSide, j.format, j.config)
	}
	if j, err := decodeRequest(payload(t, img, 1, "")); err != nil || j.maxSide != 1 || j.format != "jpeg" {
		t.Errorf("max_side 1, no format: %d %s %v", j.maxSide, j.format, err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	small := encodePNG(f, samplePattern(12, 9))
	f.Add(payload(f, small, 4, ""))
	f.Add(payload(f, encodeJPEG(f, samplePattern(9, 12)), 3, "png"))
	f.Add(payload(f, pngHeader(5000, 5000), 64, ""))
	f.Add(payload(f, pngHeader(3, 3), 64, "jpeg"))
	f.Add([]byte(`{"image_b64":"","max_side":1}`))
	f.Add([]byte(`{"image_b64":"iVBORw0KGgo=","format":"png"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`nope`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := decodeRequest(data)
		if err != nil {
			return
		}
		if j.maxSide < 1 || j.maxSide > maxSideLimit {
			t.Fatalf("accepted max_side %d", j.maxSide)
		}
		if j.format != "png" && j.format != "jpeg" {
			t.Fatalf("accepted format %q", j.format)
		}
		if j.config.Width < 1 || j.config.Height < 1 || j.config.Width > maxDimension || j.config.Height > maxDimension {
			t.Fatalf("accepted %d×%d", j.config.Width, j.config.Height)
		}
		if j.config.Width*j.config.Height > 64*64 {
			return // keep each fuzz run cheap
		}
		resp, err := thumbnail(j)
		if err != nil {
			return // a header that does not match its pixels
		}
		if resp.Width > j.maxSide && resp.Width > j.config.Width || resp.Height > j.maxSide && resp.Height > j.config.Height {
			t.Fatalf("thumbnail %d×%d exceeds max_side %d", resp.Width, resp.Height, j.maxSide)
		}
	})
}

func BenchmarkThumbnail(b *testing.B) {
	for _, size := range [][2]int{{200, 150}, {1600, 1200}} {
		for _, format := range []string{"png", "jpeg"} {
			var img []byte
			if format == "png" {
				img = encodePNG(b, samplePattern(size[0], size[1]))
			} else {
				img = encodeJPEG(b, samplePattern(size[0], size[1]))
			}
			p := payload(b, img, 64, "")
			b.Run(fmt.Sprintf("%dx%d-%s", size[0], size[1], format), func(b *testing.B) {
				b.SetBytes(int64(len(img)))
				for b.Loop() {
					if _, err := run(p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
