// Package thumbnailstest makes the images benchmarks measure thumbnails with.
package thumbnailstest

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
)

// PhotoLike is smooth colour gradients with a little noise, so it compresses
// roughly like a photograph (a flat image would flatter every decoder). The
// same w and h give the same pixels.
func PhotoLike(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(1, 2))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			n := rng.IntN(24)
			img.SetNRGBA(x, y, color.NRGBA{
				R: uint8(120 + 100*math.Sin(fx*7+fy*3) + float64(n)/2),
				G: uint8(120 + 90*math.Cos(fy*5) + float64(n)/3),
				B: uint8(110 + 80*math.Sin((fx+fy)*4)),
				A: 255,
			})
		}
	}
	return img
}
