// Command thumbnail makes a thumbnail of a PNG or JPEG image, a CPU-bound
// ward function. The payload is
//
//	{"image_b64": "<base64 PNG or JPEG>", "max_side": 64, "format": "png"}
//
// where max_side (1–1024, default 64) bounds the longer side of the result
// and format ("png" or "jpeg", default: the input's) picks its encoding. The
// result is {"width":…, "height":…, "format":…, "thumbnail_b64":…}. Images
// are never enlarged, the aspect ratio is kept, and pixels are averaged over
// the area each output pixel covers. Images larger than 4096×4096 are
// rejected from their header, before any pixel is decoded.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"

	"github.com/wardhq/ward/task"
)

// Bounds on requests.
const (
	maxImageBytes  = 8 << 20 // decoded image file
	maxDimension   = 4096    // width or height of the input image
	maxSideLimit   = 1024    // largest max_side
	defaultMaxSide = 64
	jpegQuality    = 85
)

// request is the payload.
type request struct {
	ImageB64 string `json:"image_b64"`
	MaxSide  *int   `json:"max_side"`
	Format   string `json:"format"`
}

// response is the result.
type response struct {
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	Format       string `json:"format"`
	ThumbnailB64 string `json:"thumbnail_b64"`
}

// job is a validated request.
type job struct {
	image   []byte       // the encoded input image
	config  image.Config // its dimensions, read from the header
	maxSide int
	format  string // output format: "png" or "jpeg"
}

// decodeRequest parses and validates a payload. It reads the image's header
// but none of its pixels, so an image that would be too large to decode is
// rejected cheaply.
func decodeRequest(payload []byte) (job, error) {
	var req request
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return job{}, fmt.Errorf("payload: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return job{}, errors.New("payload: unexpected data after the JSON object")
	}
	if req.ImageB64 == "" {
		return job{}, errors.New("image_b64: required")
	}
	if len(req.ImageB64) > base64.StdEncoding.EncodedLen(maxImageBytes) {
		return job{}, fmt.Errorf("image_b64: image larger than %d bytes", maxImageBytes)
	}
	data, err := base64.StdEncoding.DecodeString(req.ImageB64)
	if err != nil {
		return job{}, errors.New("image_b64: not valid standard base64")
	}
	cfg, srcFormat, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return job{}, fmt.Errorf("image_b64: not a readable PNG or JPEG image: %w", err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > maxDimension || cfg.Height > maxDimension {
		return job{}, fmt.Errorf("image_b64: image is %d×%d; each side must be 1 to %d pixels", cfg.Width, cfg.Height, maxDimension)
	}
	j := job{image: data, config: cfg, maxSide: defaultMaxSide, format: srcFormat}
	if req.MaxSide != nil {
		if *req.MaxSide < 1 || *req.MaxSide > maxSideLimit {
			return job{}, fmt.Errorf("max_side: must be between 1 and %d", maxSideLimit)
		}
		j.maxSide = *req.MaxSide
	}
	switch req.Format {
	case "":
	case "png", "jpeg":
		j.format = req.Format
	default:
		return job{}, errors.New(`format: must be "png" or "jpeg"`)
	}
	return j, nil
}

// fit returns the size of a w×h image scaled down, keeping its aspect ratio,
// so that neither side exceeds maxSide. Images that already fit keep their
// size; no side becomes smaller than 1.
func fit(w, h, maxSide int) (int, int) {
	if w <= maxSide && h <= maxSide {
		return w, h
	}
	if w >= h {
		return maxSide, max(1, (h*maxSide+w/2)/w)
	}
	return max(1, (w*maxSide+h/2)/h), maxSide
}

// thumbnail decodes, resizes and re-encodes the job's image.
func thumbnail(j job) (response, error) {
	src, _, err := image.Decode(bytes.NewReader(j.image))
	if err != nil {
		return response{}, fmt.Errorf("decode image: %w", err)
	}
	if b := src.Bounds(); b.Dx() != j.config.Width || b.Dy() != j.config.Height {
		return response{}, fmt.Errorf("decode image: size %d×%d differs from the header's %d×%d",
			b.Dx(), b.Dy(), j.config.Width, j.config.Height)
	}
	w, h := fit(j.config.Width, j.config.Height, j.maxSide)
	dst := resize(src, w, h)

	var buf bytes.Buffer
	switch j.format {
	case "png":
		err = png.Encode(&buf, dst)
	case "jpeg":
		err = jpeg.Encode(&buf, flatten(dst), &jpeg.Options{Quality: jpegQuality})
	default:
		err = fmt.Errorf("unknown format %q", j.format)
	}
	if err != nil {
		return response{}, fmt.Errorf("encode %s: %w", j.format, err)
	}
	return response{
		Width:        w,
		Height:       h,
		Format:       j.format,
		ThumbnailB64: base64.StdEncoding.EncodeToString(buf.Bytes()),
	}, nil
}

// flatten composites an image with transparency over white, since JPEG has
// no alpha channel.
func flatten(img *image.RGBA) *image.RGBA {
	if img.Opaque() {
		return img
	}
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(out, out.Bounds(), img, img.Bounds().Min, draw.Over)
	return out
}

func run(payload []byte) (response, error) {
	j, err := decodeRequest(payload)
	if err != nil {
		return response{}, err
	}
	return thumbnail(j)
}

func main() {
	payload, err := task.Payload()
	if err != nil {
		task.Fail(err)
	}
	resp, err := run(payload)
	if err != nil {
		task.Fail(err)
	}
	task.Logf("thumbnail %d×%d %s", resp.Width, resp.Height, resp.Format)
	if err := task.Result(resp); err != nil {
		task.Fail(err)
	}
}
