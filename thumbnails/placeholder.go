package thumbnails

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"github.com/disintegration/imaging"
	lru "github.com/hashicorp/golang-lru/v2"
)

// placeholderSizes bounds the rendered sizes kept.
const placeholderSizes = 64

// maxPlaceholderSide bounds a rendering: requests cannot make it large.
const maxPlaceholderSide = 2048

// Placeholder is the image served instead of quarantined media: an
// operator's file, or a drawn "not allowed" sign, scaled to fit each size
// asked for and centred on a transparent canvas, as PNG. Its methods are
// safe for concurrent use.
type Placeholder struct {
	src      image.Image
	rendered *lru.Cache[[2]int, []byte]
}

// NewPlaceholder loads the image at path, or draws the sign if path is "".
func NewPlaceholder(path string) (*Placeholder, error) {
	var src image.Image
	if path == "" {
		src = notAllowed(512)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if src, _, err = image.Decode(f); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	rendered, _ := lru.New[[2]int, []byte](placeholderSizes)
	return &Placeholder{src: src, rendered: rendered}, nil
}

// PNG is the placeholder at w x h.
func (p *Placeholder) PNG(w, h int) []byte {
	w, h = min(max(w, 1), maxPlaceholderSide), min(max(h, 1), maxPlaceholderSide)
	if b, ok := p.rendered.Get([2]int{w, h}); ok {
		return b
	}
	canvas := image.NewNRGBA(image.Rect(0, 0, w, h))
	fit := imaging.Fit(p.src, w, h, imaging.Lanczos)
	if fit.Bounds().Dx() < w && fit.Bounds().Dy() < h { // smaller than the box: scale up to fill it
		fit = imaging.Resize(p.src, w, 0, imaging.Lanczos)
		if fit.Bounds().Dy() > h {
			fit = imaging.Resize(p.src, 0, h, imaging.Lanczos)
		}
	}
	at := image.Pt((w-fit.Bounds().Dx())/2, (h-fit.Bounds().Dy())/2)
	draw.Draw(canvas, fit.Bounds().Add(at), fit, image.Point{}, draw.Over)
	var buf bytes.Buffer
	png.Encode(&buf, canvas) // to memory: cannot fail
	b := buf.Bytes()
	p.rendered.Add([2]int{w, h}, b)
	return b
}

// notAllowed draws a red "no entry" sign, a ring crossed by a bar, on a
// transparent square of side n, with soft edges.
func notAllowed(n int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	c := float64(n) / 2
	outer, inner, bar := c*0.9, c*0.68, c*0.12
	red := color.NRGBA{R: 204, G: 32, B: 32}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			dx, dy := float64(x)+0.5-c, float64(y)+0.5-c
			r := math.Hypot(dx, dy)
			// Distance to the diagonal from top left to bottom right.
			d := math.Abs(dx-dy) / math.Sqrt2
			cover := math.Max(edge(r, inner, outer), edge(d, -bar, bar)*edge(r, -1, inner+1))
			if cover > 0 {
				p := red
				p.A = uint8(255 * cover)
				img.SetNRGBA(x, y, p)
			}
		}
	}
	return img
}

// edge is 1 for v well inside [lo, hi], 0 well outside, and a one-pixel
// ramp at each end.
func edge(v, lo, hi float64) float64 {
	return math.Max(0, math.Min(1, math.Min(v-lo+0.5, hi-v+0.5)))
}
