package main

import (
	"image"
	"image/draw"
	"math"
)

// contribution is the share of one source pixel in one output pixel.
type contribution struct {
	index  int
	weight float64
}

// areaWeights maps each of dst output pixels along one axis to the src
// pixels it covers, weighted by the length of the overlap and normalized to
// sum to 1. Output pixel i covers source interval [i·s, (i+1)·s) with
// s = src/dst.
func areaWeights(src, dst int) [][]contribution {
	scale := float64(src) / float64(dst)
	out := make([][]contribution, dst)
	for i := range out {
		lo := float64(i) * scale
		hi := min(lo+scale, float64(src))
		var cs []contribution
		var sum float64
		for j := int(lo); j < src && float64(j) < hi; j++ {
			w := min(hi, float64(j+1)) - max(lo, float64(j))
			if w <= 1e-12 {
				continue
			}
			cs = append(cs, contribution{index: j, weight: w})
			sum += w
		}
		for k := range cs {
			cs[k].weight /= sum
		}
		out[i] = cs
	}
	return out
}

// resize scales src to w×h by area averaging (a box filter that weighs
// every source pixel by how much of it an output pixel covers). It works in
// premultiplied RGBA, so transparent pixels do not bleed their colour, and
// holds one source row at a time rather than a converted copy of the image.
func resize(src image.Image, w, h int) *image.RGBA {
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	xs := areaWeights(sw, w)
	ys := areaWeights(sh, h)

	row := image.NewRGBA(image.Rect(0, 0, sw, 1)) // one source row
	hrow := make([]float64, 4*w)                  // that row resampled to width w
	acc := make([]float64, 4*w)                   // one output row being summed
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	loaded := -1
	for y, cys := range ys {
		clear(acc)
		for _, cy := range cys {
			if cy.index != loaded {
				draw.Draw(row, row.Rect, src, image.Pt(b.Min.X, b.Min.Y+cy.index), draw.Src)
				resampleRow(hrow, row.Pix, xs)
				loaded = cy.index
			}
			for i, v := range hrow {
				acc[i] += v * cy.weight
			}
		}
		out := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
		for x := 0; x < 4*w; x += 4 {
			a := toByte(acc[x+3])
			// Rounding must not break the premultiplied invariant c ≤ a.
			out[x] = min(toByte(acc[x]), a)
			out[x+1] = min(toByte(acc[x+1]), a)
			out[x+2] = min(toByte(acc[x+2]), a)
			out[x+3] = a
		}
	}
	return dst
}

// resampleRow fills out (4 values per output pixel) from the RGBA bytes of
// one source row.
func resampleRow(out []float64, pix []uint8, xs [][]contribution) {
	for x, cxs := range xs {
		var r, g, b, a float64
		for _, c := range cxs {
			p := pix[4*c.index : 4*c.index+4 : 4*c.index+4]
			r += float64(p[0]) * c.weight
			g += float64(p[1]) * c.weight
			b += float64(p[2]) * c.weight
			a += float64(p[3]) * c.weight
		}
		out[4*x], out[4*x+1], out[4*x+2], out[4*x+3] = r, g, b, a
	}
}

// toByte rounds v to the nearest byte value.
func toByte(v float64) uint8 {
	return uint8(math.Max(0, math.Min(255, math.Round(v))))
}
