package pngscale

import (
	"context"
	"fmt"
	"image"
	"io"
)

// decodeRows reads the filtered rows, unfilters each against the one before,
// turns it into 8-bit RGBA and adds it into the accumulators of its output
// row, which is written out every k rows. At k = 1 each row is its output row.
func decodeRows(ctx context.Context, r io.Reader, h *header, k int) (*image.NRGBA, error) {
	bitsPerPixel := h.channels * h.depth
	rowBytes := (h.width*bitsPerPixel + 7) / 8
	bpp := max(1, bitsPerPixel/8) // the filters' distance to the pixel on the left
	cur, prev := make([]byte, rowBytes+1), make([]byte, rowBytes+1)
	out := image.NewNRGBA(image.Rect(0, 0, (h.width+k-1)/k, (h.height+k-1)/k))
	acc := make([]uint64, out.Rect.Dx()*5) // premultiplied R, G, B, alpha, count
	rgba := make([]byte, h.width*4)
	translucent := h.colorType == 4 || h.colorType == 6 || len(h.trns) > 0 || h.colorType == 3
	for y := 0; y < h.height; y++ {
		if y%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if _, err := io.ReadFull(r, cur); err != nil {
			return nil, fmt.Errorf("%w: row %d: %v", errFormat, y, err)
		}
		if err := unfilter(cur[0], cur[1:], prev[1:], bpp); err != nil {
			return nil, err
		}
		if k == 1 {
			row := out.Pix[y*out.Stride : (y+1)*out.Stride]
			h.toRGBA(cur[1:], row)
			if translucent {
				clearTransparent(row)
			}
			cur, prev = prev, cur
			continue
		}
		h.toRGBA(cur[1:], rgba)
		accumulate(acc, rgba, k)
		if y%k == k-1 || y == h.height-1 {
			emit(out, y/k, acc)
			clear(acc)
		}
		cur, prev = prev, cur
	}
	return out, nil
}

// unfilter reverses a row's filter (PNG 9.2) in place; prev is the row above
// (zero for the first row), already unfiltered.
func unfilter(filter byte, row, prev []byte, bpp int) error {
	switch filter {
	case 0:
	case 1: // Sub
		for i := bpp; i < len(row); i++ {
			row[i] += row[i-bpp]
		}
	case 2: // Up
		for i := range row {
			row[i] += prev[i]
		}
	case 3: // Average
		for i := 0; i < bpp && i < len(row); i++ {
			row[i] += prev[i] / 2
		}
		for i := bpp; i < len(row); i++ {
			row[i] += byte((int(row[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		for i := range row {
			var a, c int
			if i >= bpp {
				a, c = int(row[i-bpp]), int(prev[i-bpp])
			}
			row[i] += paeth(a, int(prev[i]), c)
		}
	default:
		return fmt.Errorf("%w: filter %d", errFormat, filter)
	}
	return nil
}

func paeth(a, b, c int) byte {
	p := a + b - c
	pa, pb, pc := abs(p-a), abs(p-b), abs(p-c)
	switch {
	case pa <= pb && pa <= pc:
		return byte(a)
	case pb <= pc:
		return byte(b)
	}
	return byte(c)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// toRGBA turns one unfiltered row into 8-bit non-premultiplied RGBA. 16-bit
// samples keep their high byte, as image/png's 8-bit conversions do.
func (h *header) toRGBA(row, rgba []byte) {
	switch {
	case h.colorType == 6 && h.depth == 8:
		copy(rgba, row)
	case h.colorType == 2 && h.depth == 8 && len(h.trns) == 0:
		for x, i := 0, 0; x < h.width; x, i = x+1, i+3 {
			rgba[4*x], rgba[4*x+1], rgba[4*x+2], rgba[4*x+3] = row[i], row[i+1], row[i+2], 255
		}
	case h.colorType == 3:
		h.paletteRow(row, rgba)
	case h.depth < 8: // gray at 1, 2 or 4 bits
		scale := 255 / (1<<h.depth - 1)
		for x := range h.width {
			v := sampleBits(row, x, h.depth)
			g := byte(v * scale)
			a := byte(255)
			if len(h.trns) > 0 && uint16(v) == h.trns[0] {
				a = 0
			}
			rgba[4*x], rgba[4*x+1], rgba[4*x+2], rgba[4*x+3] = g, g, g, a
		}
	default:
		step := h.depth / 8
		for x := range h.width {
			px := row[x*h.channels*step:]
			s := func(i int) (byte, uint16) {
				if step == 2 {
					return px[2*i], uint16(px[2*i])<<8 | uint16(px[2*i+1])
				}
				return px[i], uint16(px[i])
			}
			var r, g, b, a byte = 0, 0, 0, 255
			switch h.colorType {
			case 0:
				v, raw := s(0)
				r, g, b = v, v, v
				if len(h.trns) > 0 && raw == h.trns[0] {
					a = 0
				}
			case 4:
				r, _ = s(0)
				g, b = r, r
				a, _ = s(1)
			case 2:
				var rr, rg, rb uint16
				r, rr = s(0)
				g, rg = s(1)
				b, rb = s(2)
				if len(h.trns) == 3 && rr == h.trns[0] && rg == h.trns[1] && rb == h.trns[2] {
					a = 0
				}
			case 6:
				r, _ = s(0)
				g, _ = s(1)
				b, _ = s(2)
				a, _ = s(3)
			}
			rgba[4*x], rgba[4*x+1], rgba[4*x+2], rgba[4*x+3] = r, g, b, a
		}
	}
}

// paletteRow looks up each index of a paletted row (1, 2, 4 or 8 bits); an
// index past the palette is opaque black, as image/png reads it.
func (h *header) paletteRow(row, rgba []byte) {
	for x := range h.width {
		i := sampleBits(row, x, h.depth)
		c := [4]byte{0, 0, 0, 255}
		if i < len(h.palette) {
			c = h.palette[i]
		}
		copy(rgba[4*x:4*x+4], c[:])
	}
}

// sampleBits is sample x of a row of depth-bit samples packed MSB first.
func sampleBits(row []byte, x, depth int) int {
	if depth == 8 {
		return int(row[x])
	}
	perByte := 8 / depth
	shift := (perByte - 1 - x%perByte) * depth
	return int(row[x/perByte]>>shift) & (1<<depth - 1)
}

// clearTransparent zeroes the colour of fully transparent pixels, as the
// shrunk rows have it.
func clearTransparent(rgba []byte) {
	for i := 0; i < len(rgba); i += 4 {
		if rgba[i+3] == 0 {
			rgba[i], rgba[i+1], rgba[i+2] = 0, 0, 0
		}
	}
}

// accumulate adds a row's pixels to the accumulators of their output
// columns, colour weighted by alpha.
func accumulate(acc []uint64, rgba []byte, k int) {
	for x := 0; x*4 < len(rgba); x++ {
		p := rgba[4*x : 4*x+4]
		a := uint64(p[3])
		o := acc[(x/k)*5 : (x/k)*5+5]
		o[0] += uint64(p[0]) * a
		o[1] += uint64(p[1]) * a
		o[2] += uint64(p[2]) * a
		o[3] += a
		o[4]++
	}
}

// emit writes output row y from the accumulators: premultiplied sums over
// summed alpha give straight colour.
func emit(out *image.NRGBA, y int, acc []uint64) {
	row := out.Pix[y*out.Stride:]
	for x := 0; x < out.Rect.Dx(); x++ {
		o := acc[x*5 : x*5+5]
		if o[3] == 0 || o[4] == 0 {
			continue // fully transparent stays zero
		}
		row[4*x] = byte(min(255, o[0]/o[3]))
		row[4*x+1] = byte(min(255, o[1]/o[3]))
		row[4*x+2] = byte(min(255, o[2]/o[3]))
		row[4*x+3] = byte(o[3] / o[4])
	}
}
