package thumbnails

import (
	"image"
	"math"

	"github.com/disintegration/imaging"

	"github.com/mediarepo/mediarepo/config"
)

// resize makes img fit spec (CatmullRom: sharp enough for photos, cheaper than
// Lanczos) without ever upscaling. scale fits inside the box
// keeping the aspect ratio; crop fills the box exactly, centred, or (when the
// original is smaller than the box in one dimension) cuts the largest centred
// region of the box's aspect ratio. An original already inside the box is
// ErrUseOriginal.
func resize(img image.Image, spec Spec) (*image.NRGBA, error) {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if sw <= spec.Width && sh <= spec.Height {
		return nil, ErrUseOriginal
	}
	fw, fh := float64(spec.Width)/float64(sw), float64(spec.Height)/float64(sh)
	if spec.Method != config.MethodCrop {
		return imaging.Fit(preShrink(img, math.Min(fw, fh)), spec.Width, spec.Height, imaging.CatmullRom), nil
	}
	if sw >= spec.Width && sh >= spec.Height {
		return imaging.Fill(preShrink(img, math.Max(fw, fh)), spec.Width, spec.Height, imaging.Center, imaging.CatmullRom), nil
	}
	// One side of the original is already smaller than the box: keep the box's
	// aspect ratio at the largest size the original holds.
	k := math.Min(float64(sw)/float64(spec.Width), float64(sh)/float64(spec.Height))
	cw := max(1, int(math.Round(float64(spec.Width)*k)))
	ch := max(1, int(math.Round(float64(spec.Height)*k)))
	return imaging.CropCenter(img, cw, ch), nil
}
