package jpegscale

import (
	"fmt"
	"image"
	"image/color"
)

// image assembles the decoded planes into the type image/jpeg would return:
// Gray, YCbCr, RGBA for RGB files, CMYK for four components.
func (d *decoder) image() (image.Image, error) {
	w, h := ceilDiv(d.width, 8/d.n), ceilDiv(d.height, 8/d.n)
	rect := image.Rect(0, 0, w, h)
	switch len(d.comps) {
	case 1:
		c := &d.comps[0]
		return &image.Gray{Pix: c.plane, Stride: c.stride, Rect: rect}, nil
	case 3:
		ratio, ok := d.ratio()
		if !ok {
			return nil, fmt.Errorf("%w: sampling %dx%d, %dx%d, %dx%d", ErrUnsupported,
				d.comps[0].h, d.comps[0].v, d.comps[1].h, d.comps[1].v, d.comps[2].h, d.comps[2].v)
		}
		ycc := &image.YCbCr{
			Y: d.comps[0].plane, Cb: d.comps[1].plane, Cr: d.comps[2].plane,
			YStride: d.comps[0].stride, CStride: d.comps[1].stride, SubsampleRatio: ratio, Rect: rect,
		}
		if d.isRGB() {
			return rgb(ycc), nil
		}
		return ycc, nil
	}
	return d.cmyk(rect)
}

// ratio is the image.YCbCr subsampling of a three-component file, if it is
// one that type can hold: Cb and Cr sampled alike, luma at 1, 2 or 4 times.
func (d *decoder) ratio() (image.YCbCrSubsampleRatio, bool) {
	y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
	if cb.h != cr.h || cb.v != cr.v || y.h%cb.h != 0 || y.v%cb.v != 0 {
		return 0, false
	}
	switch [2]int{y.h / cb.h, y.v / cb.v} {
	case [2]int{1, 1}:
		return image.YCbCrSubsampleRatio444, true
	case [2]int{2, 1}:
		return image.YCbCrSubsampleRatio422, true
	case [2]int{2, 2}:
		return image.YCbCrSubsampleRatio420, true
	case [2]int{1, 2}:
		return image.YCbCrSubsampleRatio440, true
	case [2]int{4, 1}:
		return image.YCbCrSubsampleRatio411, true
	case [2]int{4, 2}:
		return image.YCbCrSubsampleRatio410, true
	}
	return 0, false
}

// isRGB follows image/jpeg: no JFIF marker, and an Adobe transform of 0 or
// components named R, G and B.
func (d *decoder) isRGB() bool {
	if d.jfif {
		return false
	}
	if d.adobe && d.adobeXform == 0 {
		return true
	}
	return d.comps[0].id == 'R' && d.comps[1].id == 'G' && d.comps[2].id == 'B'
}

// rgb reads the three planes of an RGB file as R, G and B.
func rgb(p *image.YCbCr) *image.RGBA {
	img := image.NewRGBA(p.Rect)
	for y := p.Rect.Min.Y; y < p.Rect.Max.Y; y++ {
		for x := p.Rect.Min.X; x < p.Rect.Max.X; x++ {
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = p.Y[p.YOffset(x, y)], p.Cb[p.COffset(x, y)], p.Cr[p.COffset(x, y)], 255
		}
	}
	return img
}

// cmyk builds the image of a four-component file as image/jpeg does: with an
// Adobe transform of YCCK (or none said), YCbCr to RGB inverted to CMY and K
// inverted; with transform 0, the four planes inverted (Adobe writes
// inverted CMYK).
func (d *decoder) cmyk(rect image.Rectangle) (image.Image, error) {
	if !d.adobe {
		return nil, fmt.Errorf("%w: four components without Adobe APP14", ErrUnsupported)
	}
	img := image.NewCMYK(rect)
	sample := func(c *component, x, y int) byte {
		return c.plane[(y*c.v/d.vmax)*c.stride+x*c.h/d.hmax]
	}
	for y := 0; y < rect.Dy(); y++ {
		for x := 0; x < rect.Dx(); x++ {
			i := img.PixOffset(x, y)
			c0, c1, c2, k := sample(&d.comps[0], x, y), sample(&d.comps[1], x, y), sample(&d.comps[2], x, y), sample(&d.comps[3], x, y)
			if d.adobeXform != 0 {
				r, g, b := color.YCbCrToRGB(c0, c1, c2)
				img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = r, g, b, 255-k
				continue
			}
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = 255-c0, 255-c1, 255-c2, 255-k
		}
	}
	return img, nil
}
