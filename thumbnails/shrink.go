package thumbnails

import (
	"image"
	"image/color"
)

// preShrink box-averages img by an integer factor before the final filter when
// the output is much smaller than the original: a photo of 4000x3000 becomes
// about 640x480 in one pass over the decoder's own planes, and the
// CatmullRom filter then runs on that instead of on 12 million pixels. Keeping
// the final filter at least 2x downscaling keeps its quality.
//
// ratio is the final output size over the original size. Image types without
// a fast path are returned unchanged.
func preShrink(img image.Image, ratio float64) image.Image {
	k := shrinkFactor(ratio)
	if k < 2 {
		return img
	}
	switch src := img.(type) {
	case *image.YCbCr:
		return shrinkYCbCr(src, k)
	case *image.NRGBA:
		return shrinkNRGBA(src.Pix, src.Stride, src.Rect, k, false)
	case *image.RGBA:
		return shrinkNRGBA(src.Pix, src.Stride, src.Rect, k, true)
	case *image.NRGBA64:
		return shrink64(src.Pix, src.Stride, src.Rect, k, false)
	case *image.RGBA64:
		return shrink64(src.Pix, src.Stride, src.Rect, k, true)
	case *image.Gray:
		return shrinkGray(src, k)
	}
	return img
}

// shrink64 is shrinkNRGBA for 16-bit pixels (a 16-bit PNG), writing 8-bit
// pixels: the full image is never converted to 8 bits first.
func shrink64(pix []byte, stride int, b image.Rectangle, k int, premultiplied bool) *image.NRGBA {
	dw, dh := (b.Dx()+k-1)/k, (b.Dy()+k-1)/k
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for dy := 0; dy < dh; dy++ {
		y0, y1 := dy*k, min((dy+1)*k, b.Dy())
		for dx := 0; dx < dw; dx++ {
			x0, x1 := dx*k, min((dx+1)*k, b.Dx())
			var sr, sg, sb, sa, n uint64
			for y := y0; y < y1; y++ {
				row := pix[y*stride:]
				for x := x0; x < x1; x++ {
					p := row[x*8 : x*8+8]
					r, g, bl, a := uint64(p[0])<<8|uint64(p[1]), uint64(p[2])<<8|uint64(p[3]), uint64(p[4])<<8|uint64(p[5]), uint64(p[6])<<8|uint64(p[7])
					if !premultiplied {
						r, g, bl = r*a/0xffff, g*a/0xffff, bl*a/0xffff
					}
					sr, sg, sb, sa = sr+r, sg+g, sb+bl, sa+a
					n++
				}
			}
			if sa == 0 {
				continue
			}
			i := dst.PixOffset(dx, dy)
			dst.Pix[i] = uint8(min(255, sr*255/sa))
			dst.Pix[i+1] = uint8(min(255, sg*255/sa))
			dst.Pix[i+2] = uint8(min(255, sb*255/sa))
			dst.Pix[i+3] = uint8(sa / n >> 8)
		}
	}
	return dst
}

// shrinkGray averages k x k blocks of a grayscale image.
func shrinkGray(src *image.Gray, k int) *image.NRGBA {
	b := src.Rect
	dw, dh := (b.Dx()+k-1)/k, (b.Dy()+k-1)/k
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for dy := 0; dy < dh; dy++ {
		y0, y1 := dy*k, min((dy+1)*k, b.Dy())
		for dx := 0; dx < dw; dx++ {
			x0, x1 := dx*k, min((dx+1)*k, b.Dx())
			sum := 0
			for y := y0; y < y1; y++ {
				for _, v := range src.Pix[y*src.Stride+x0 : y*src.Stride+x1] {
					sum += int(v)
				}
			}
			v := uint8(sum / ((y1 - y0) * (x1 - x0)))
			i := dst.PixOffset(dx, dy)
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = v, v, v, 0xff
		}
	}
	return dst
}

// shrinkYCbCr averages k x k blocks of luma, and the chroma samples covering
// the same area at chroma resolution, converting to RGB once per output pixel.
// Partial blocks at the right and bottom edges are averaged over what they hold.
func shrinkYCbCr(src *image.YCbCr, k int) *image.NRGBA {
	hs, vs := chromaShift(src.SubsampleRatio)
	b := src.Rect
	w, h := b.Dx(), b.Dy()
	dw, dh := (w+k-1)/k, (h+k-1)/k
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for dy := 0; dy < dh; dy++ {
		y0, y1 := dy*k, min((dy+1)*k, h)
		for dx := 0; dx < dw; dx++ {
			x0, x1 := dx*k, min((dx+1)*k, w)
			sy := 0
			for y := y0; y < y1; y++ {
				for _, v := range src.Y[y*src.YStride+x0 : y*src.YStride+x1] {
					sy += int(v)
				}
			}
			scb, scr, nc := 0, 0, 0
			// Chroma rows and columns under the block, as COffset computes them.
			for cy := (b.Min.Y+y0)>>vs - b.Min.Y>>vs; cy <= (b.Min.Y+y1-1)>>vs-b.Min.Y>>vs; cy++ {
				row := cy * src.CStride
				for cx := (b.Min.X+x0)>>hs - b.Min.X>>hs; cx <= (b.Min.X+x1-1)>>hs-b.Min.X>>hs; cx++ {
					scb += int(src.Cb[row+cx])
					scr += int(src.Cr[row+cx])
					nc++
				}
			}
			r, g, bl := color.YCbCrToRGB(uint8(sy/((y1-y0)*(x1-x0))), uint8(scb/nc), uint8(scr/nc))
			i := dst.PixOffset(dx, dy)
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = r, g, bl, 0xff
		}
	}
	return dst
}

// chromaShift is log2 of the horizontal and vertical chroma subsampling.
func chromaShift(r image.YCbCrSubsampleRatio) (h, v int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return 1, 0
	case image.YCbCrSubsampleRatio420:
		return 1, 1
	case image.YCbCrSubsampleRatio440:
		return 0, 1
	case image.YCbCrSubsampleRatio411:
		return 2, 0
	case image.YCbCrSubsampleRatio410:
		return 2, 1
	}
	return 0, 0
}

// shrinkNRGBA averages k x k blocks of 8-bit RGBA pixels. Colours are
// weighted by alpha so transparent pixels do not darken edges; premultiplied
// (image.RGBA) input is un-premultiplied on the way out.
func shrinkNRGBA(pix []byte, stride int, b image.Rectangle, k int, premultiplied bool) *image.NRGBA {
	dw, dh := (b.Dx()+k-1)/k, (b.Dy()+k-1)/k
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for dy := 0; dy < dh; dy++ {
		y0, y1 := dy*k, min((dy+1)*k, b.Dy())
		for dx := 0; dx < dw; dx++ {
			x0, x1 := dx*k, min((dx+1)*k, b.Dx())
			var sr, sg, sb, sa, n int
			for y := y0; y < y1; y++ {
				row := pix[y*stride:]
				for x := x0; x < x1; x++ {
					p := row[x*4 : x*4+4]
					a := int(p[3])
					if premultiplied {
						sr, sg, sb = sr+int(p[0]), sg+int(p[1]), sb+int(p[2])
					} else {
						sr, sg, sb = sr+int(p[0])*a/255, sg+int(p[1])*a/255, sb+int(p[2])*a/255
					}
					sa += a
					n++
				}
			}
			i := dst.PixOffset(dx, dy)
			if sa == 0 {
				continue // fully transparent block stays zero
			}
			// Premultiplied sums over summed alpha give straight colour.
			dst.Pix[i] = uint8(min(255, sr*255/sa))
			dst.Pix[i+1] = uint8(min(255, sg*255/sa))
			dst.Pix[i+2] = uint8(min(255, sb*255/sa))
			dst.Pix[i+3] = uint8(sa / n)
		}
	}
	return dst
}
