// Package jpegscale decodes JPEG images at 1/1, 1/2, 1/4 or 1/8 of their
// size, each output sample computed from its block's coefficients (the mean
// of the pixels it stands for, through a reduced inverse DCT; at 1/8 the DC
// term alone), so a thumbnail of a 12-megapixel photo never holds 12 million
// pixels. Baseline, extended sequential and progressive Huffman-coded files,
// every chroma subsampling image.YCbCr can express, restart intervals,
// grayscale, RGB, CMYK and YCCK. The result has image/jpeg's types.
// Everything else (arithmetic coding, 12-bit samples, lossless and
// hierarchical files, other sampling) is ErrUnsupported, for the caller to
// decode another way. It imports only the standard library.
package jpegscale

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
)

// Errors. ErrUnsupported means a valid file this decoder does not handle;
// any other error means the file is malformed or truncated.
var (
	ErrUnsupported = errors.New("jpegscale: unsupported JPEG")
	errFormat      = errors.New("jpegscale: malformed JPEG")
)

// maxBlocks bounds the blocks of one frame (4 x 2^16 x 2^16 pixels could be
// claimed); the caller's pixel limit is normally far lower. maxScans bounds
// the scans of a progressive file, each a pass over every block: encoders
// write about ten, a hostile file thousands (libjpeg-turbo limits them too).
const (
	maxBlocks = 1 << 26
	maxScans  = 100
)

type component struct {
	id, h, v, tq int
	bw, bh       int // blocks per line and per column, padded to whole MCUs
	plane        []byte
	stride       int
	coef         []int16 // progressive only: 64 coefficients per block, zigzag order
	dcPred       int32
	dc, ac       int // table selectors of the current scan
}

type decoder struct {
	ctx           context.Context
	data          []byte
	pos           int
	n             int // samples per block side in the output: 8 / scale
	width, height int
	progressive   bool
	comps         []component
	hmax, vmax    int
	mcusX, mcusY  int
	quant         [4][64]int32 // zigzag order
	huff          [2][4]huffman
	restart       int
	jfif          bool
	adobe         bool
	adobeXform    byte
	eobRun        int
	sawFrame      bool
	scans         int
	peak          *int32 // if set, the largest |dequantised coefficient| is kept there (tests)
}

// Decode decodes data, a whole JPEG file, at 1/scale of its size (scale 1,
// 2, 4 or 8; the result is ceil(width/scale) x ceil(height/scale)). ctx is
// checked between rows of blocks.
func Decode(ctx context.Context, data []byte, scale int) (image.Image, error) {
	if scale != 1 && scale != 2 && scale != 4 && scale != 8 {
		return nil, fmt.Errorf("jpegscale: scale %d is not 1, 2, 4 or 8", scale)
	}
	d := &decoder{ctx: ctx, data: data, n: 8 / scale}
	if err := d.decode(); err != nil {
		return nil, err
	}
	return d.image()
}

func (d *decoder) decode() error {
	if len(d.data) < 2 || d.data[0] != 0xff || d.data[1] != 0xd8 {
		return fmt.Errorf("%w: no SOI", errFormat)
	}
	d.pos = 2
	for {
		marker, seg, err := d.segment()
		if err != nil {
			return err
		}
		switch {
		case marker == 0xd9: // EOI
			return d.finish()
		case marker == 0xc0 || marker == 0xc1 || marker == 0xc2:
			err = d.frame(marker, seg)
		case marker >= 0xc3 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc:
			return fmt.Errorf("%w: SOF%d (lossless, hierarchical or arithmetic)", ErrUnsupported, marker-0xc0)
		case marker == 0xcc:
			return fmt.Errorf("%w: arithmetic coding", ErrUnsupported)
		case marker == 0xc4:
			err = d.defineHuffman(seg)
		case marker == 0xdb:
			err = d.defineQuant(seg)
		case marker == 0xdd:
			if len(seg) < 2 {
				return fmt.Errorf("%w: DRI", errFormat)
			}
			d.restart = int(binary.BigEndian.Uint16(seg))
		case marker == 0xda:
			if d.scans >= maxScans {
				return fmt.Errorf("%w: more than %d scans", errFormat, maxScans)
			}
			err = d.scan(seg)
		case marker == 0xe0:
			d.jfif = len(seg) >= 5 && string(seg[:5]) == "JFIF\x00"
		case marker == 0xee:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobe, d.adobeXform = true, seg[11]
			}
		case marker == 0xdc:
			return fmt.Errorf("%w: DNL", ErrUnsupported)
		}
		if err != nil {
			return err
		}
		if d.ctx.Err() != nil {
			return d.ctx.Err()
		}
	}
}

// segment reads the next marker and, for markers that have one, its payload.
// A file that ends after its last scan without EOI ends as if it had one.
func (d *decoder) segment() (byte, []byte, error) {
	for d.pos < len(d.data) && d.data[d.pos] != 0xff {
		d.pos++ // garbage between segments: skipped, as libjpeg warns and goes on
	}
	for d.pos < len(d.data) && d.data[d.pos] == 0xff {
		d.pos++ // fill bytes
	}
	if d.pos >= len(d.data) {
		if d.scans > 0 {
			return 0xd9, nil, nil
		}
		return 0, nil, fmt.Errorf("%w: ends before any scan", errFormat)
	}
	marker := d.data[d.pos]
	d.pos++
	if marker == 0xd8 || marker == 0xd9 || (marker >= 0xd0 && marker <= 0xd7) || marker == 0x01 {
		return marker, nil, nil
	}
	if d.pos+2 > len(d.data) {
		return 0, nil, fmt.Errorf("%w: segment length", errFormat)
	}
	l := int(binary.BigEndian.Uint16(d.data[d.pos:]))
	if l < 2 || d.pos+l > len(d.data) {
		return 0, nil, fmt.Errorf("%w: segment of %d bytes", errFormat, l)
	}
	seg := d.data[d.pos+2 : d.pos+l]
	d.pos += l
	return marker, seg, nil
}

// frame reads a start-of-frame segment and lays out the components.
func (d *decoder) frame(marker byte, seg []byte) error {
	if d.sawFrame {
		return fmt.Errorf("%w: second frame", errFormat)
	}
	d.sawFrame = true
	d.progressive = marker == 0xc2
	if len(seg) < 6 {
		return fmt.Errorf("%w: SOF", errFormat)
	}
	if seg[0] != 8 {
		return fmt.Errorf("%w: %d-bit samples", ErrUnsupported, seg[0])
	}
	d.height, d.width = int(binary.BigEndian.Uint16(seg[1:])), int(binary.BigEndian.Uint16(seg[3:]))
	if d.height == 0 {
		return fmt.Errorf("%w: height given by DNL", ErrUnsupported)
	}
	nc := int(seg[5])
	if d.width == 0 || (nc != 1 && nc != 3 && nc != 4) || len(seg) < 6+3*nc {
		return fmt.Errorf("%w: SOF of %d components", errFormat, nc)
	}
	d.comps = make([]component, nc)
	for i := range d.comps {
		c := &d.comps[i]
		c.id, c.h, c.v, c.tq = int(seg[6+3*i]), int(seg[7+3*i]>>4), int(seg[7+3*i]&15), int(seg[8+3*i])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3 {
			return fmt.Errorf("%w: component sampling %dx%d", errFormat, c.h, c.v)
		}
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	if nc == 1 {
		d.comps[0].h, d.comps[0].v, d.hmax, d.vmax = 1, 1, 1, 1 // one component is never interleaved
	}
	d.mcusX = (d.width + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	total := 0
	for i := range d.comps {
		c := &d.comps[i]
		c.bw, c.bh = d.mcusX*c.h, d.mcusY*c.v
		total += c.bw * c.bh
		if total > maxBlocks {
			return fmt.Errorf("%w: %dx%d is too large", ErrUnsupported, d.width, d.height)
		}
		c.stride = c.bw * d.n
		c.plane = make([]byte, c.stride*c.bh*d.n)
		if d.progressive {
			c.coef = make([]int16, c.bw*c.bh*64)
		}
	}
	return nil
}

func (d *decoder) defineHuffman(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return fmt.Errorf("%w: DHT", errFormat)
		}
		class, id := seg[0]>>4, seg[0]&15
		if class > 1 || id > 3 {
			return fmt.Errorf("%w: DHT table %d/%d", errFormat, class, id)
		}
		var counts [16]int
		total := 0
		for i := range counts {
			counts[i] = int(seg[1+i])
			total += counts[i]
		}
		if len(seg) < 17+total {
			return fmt.Errorf("%w: DHT symbols", errFormat)
		}
		if err := d.huff[class][id].build(counts, seg[17:17+total]); err != nil {
			return err
		}
		seg = seg[17+total:]
	}
	return nil
}

func (d *decoder) defineQuant(seg []byte) error {
	for len(seg) > 0 {
		precision, id := seg[0]>>4, seg[0]&15
		if id > 3 || precision > 1 {
			return fmt.Errorf("%w: DQT table %d", errFormat, id)
		}
		size := 64 * (1 + int(precision))
		if len(seg) < 1+size {
			return fmt.Errorf("%w: DQT", errFormat)
		}
		for k := range 64 {
			if precision == 0 {
				d.quant[id][k] = int32(seg[1+k])
			} else {
				d.quant[id][k] = int32(binary.BigEndian.Uint16(seg[1+2*k:]))
			}
		}
		seg = seg[1+size:]
	}
	return nil
}
