// Package thumbnailstest makes the images tests and benchmarks measure
// thumbnails with.
package thumbnailstest

import (
	"bytes"
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

// FlatGrayJPEG is a valid baseline greyscale JPEG of w x h, every pixel 128,
// written directly rather than encoded: unit quantisation and one flat
// Huffman table in which a zero byte is both "DC unchanged" and "end of
// block", so the entropy data is two zero bytes a block. It makes a
// 12000x12000 file in milliseconds, for what a decoder must survive.
func FlatGrayJPEG(w, h int) []byte {
	var out bytes.Buffer
	seg := func(marker byte, payload ...byte) {
		out.Write([]byte{0xff, marker, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)})
		out.Write(payload)
	}
	out.Write([]byte{0xff, 0xd8})
	seg(0xdb, append([]byte{0}, bytes.Repeat([]byte{1}, 64)...)...)
	seg(0xc0, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), 1, 1, 0x11, 0)
	// 255 codes of 8 bits and one of 9: symbol s is the byte s.
	table := make([]byte, 16, 16+256)
	table[7], table[8] = 255, 1
	for s := range 256 {
		table = append(table, byte(s))
	}
	seg(0xc4, append([]byte{0x00}, table...)...)
	seg(0xc4, append([]byte{0x10}, table...)...)
	seg(0xda, 1, 1, 0x00, 0, 63, 0)
	blocks := ((w + 7) / 8) * ((h + 7) / 8)
	out.Write(make([]byte, 2*blocks))
	out.Write([]byte{0xff, 0xd9})
	return out.Bytes()
}
