// Package pngscale decodes a PNG row by row, shrinking it by an integer
// factor as the rows arrive (each output pixel the alpha-weighted mean of a
// k x k block), so that a thumbnail never holds the full image: a 2000x2000
// PNG shrunk by 4 holds 500x500 pixels and two rows. Every bit depth and
// colour type, tRNS and PLTE. Interlaced files are ErrUnsupported, for the
// caller to decode another way. It imports only the standard library.
package pngscale

import (
	"bufio"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"io"
)

// Errors. ErrUnsupported means a valid file this decoder does not handle.
var (
	ErrUnsupported = errors.New("pngscale: unsupported PNG")
	errFormat      = errors.New("pngscale: malformed PNG")
)

const (
	maxChunk = 1 << 31 // the format's own limit on a chunk's length
	maxSide  = 1 << 24 // what the caller's pixel limit leaves far behind
)

type header struct {
	width, height int
	depth         int
	colorType     byte
	channels      int
	palette       [][4]byte // RGBA, tRNS applied
	trns          []uint16  // gray or RGB key of a transparent colour
}

// Decode decodes the PNG r, shrunk by k (the result is ceil(w/k) x
// ceil(h/k)). ctx is checked between rows.
func Decode(ctx context.Context, r io.Reader, k int) (*image.NRGBA, error) {
	if k < 1 {
		return nil, fmt.Errorf("pngscale: factor %d", k)
	}
	br := bufio.NewReader(r)
	var sig [8]byte
	if _, err := io.ReadFull(br, sig[:]); err != nil || string(sig[:]) != "\x89PNG\r\n\x1a\n" {
		return nil, fmt.Errorf("%w: signature", errFormat)
	}
	cr := &chunkReader{r: br}
	h, err := cr.header()
	if err != nil {
		return nil, err
	}
	zr, err := zlib.NewReader(cr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errFormat, err)
	}
	defer zr.Close()
	img, err := decodeRows(ctx, bufio.NewReaderSize(zr, 64<<10), h, k)
	if err != nil {
		return nil, err
	}
	// The rows are read; the chunk they ended in must still be whole.
	if err := cr.drain(); err != nil {
		return nil, err
	}
	return img, nil
}

// drain reads the rest of the current IDAT chunk and checks its CRC.
func (c *chunkReader) drain() error {
	if c.done {
		return nil
	}
	buf := make([]byte, 4096)
	for c.left > 0 {
		n, err := c.r.Read(buf[:min(int64(len(buf)), c.left)])
		c.crc = crc32.Update(c.crc, crc32.IEEETable, buf[:n])
		c.left -= int64(n)
		if err != nil {
			return fmt.Errorf("%w: %v", errFormat, err)
		}
	}
	return c.checkCRC()
}

// chunkReader reads the chunks before the first IDAT, then yields the data
// of consecutive IDAT chunks, checking each chunk's CRC.
type chunkReader struct {
	r    *bufio.Reader
	left int64 // of the current IDAT chunk
	crc  uint32
	done bool
}

// next reads a chunk header.
func (c *chunkReader) next() (string, int64, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return "", 0, fmt.Errorf("%w: chunk header: %v", errFormat, err)
	}
	n := int64(binary.BigEndian.Uint32(hdr[:4]))
	if n >= maxChunk {
		return "", 0, fmt.Errorf("%w: chunk of %d bytes", errFormat, n)
	}
	c.crc = crc32.Update(0, crc32.IEEETable, hdr[4:])
	return string(hdr[4:]), n, nil
}

// body reads a whole (small) chunk body and its CRC.
func (c *chunkReader) body(n int64) ([]byte, error) {
	if n > 1<<20 {
		return nil, fmt.Errorf("%w: metadata chunk of %d bytes", errFormat, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return nil, fmt.Errorf("%w: %v", errFormat, err)
	}
	c.crc = crc32.Update(c.crc, crc32.IEEETable, b)
	return b, c.checkCRC()
}

func (c *chunkReader) checkCRC() error {
	var sum [4]byte
	if _, err := io.ReadFull(c.r, sum[:]); err != nil {
		return fmt.Errorf("%w: CRC: %v", errFormat, err)
	}
	if binary.BigEndian.Uint32(sum[:]) != c.crc {
		return fmt.Errorf("%w: bad CRC", errFormat)
	}
	return nil
}

// skip passes over a chunk body and its CRC without holding it.
func (c *chunkReader) skip(n int64) error {
	if _, err := c.r.Discard(int(n) + 4); err != nil {
		return fmt.Errorf("%w: %v", errFormat, err)
	}
	return nil
}

// header reads IHDR, PLTE and tRNS up to the first IDAT.
func (c *chunkReader) header() (*header, error) {
	var h *header
	for {
		typ, n, err := c.next()
		if err != nil {
			return nil, err
		}
		switch typ {
		case "IHDR":
			b, err := c.body(n)
			if err != nil {
				return nil, err
			}
			if h, err = parseIHDR(b); err != nil {
				return nil, err
			}
		case "PLTE":
			b, err := c.body(n)
			if err != nil || h == nil || len(b)%3 != 0 || len(b) > 768 {
				return nil, fmt.Errorf("%w: PLTE", errFormat)
			}
			for i := 0; i < len(b); i += 3 {
				h.palette = append(h.palette, [4]byte{b[i], b[i+1], b[i+2], 255})
			}
		case "tRNS":
			b, err := c.body(n)
			if err != nil || h == nil {
				return nil, fmt.Errorf("%w: tRNS", errFormat)
			}
			h.transparency(b)
		case "IDAT":
			if h == nil || (h.colorType == 3 && len(h.palette) == 0) {
				return nil, fmt.Errorf("%w: IDAT before IHDR or PLTE", errFormat)
			}
			c.left = n
			return h, nil
		case "IEND":
			return nil, fmt.Errorf("%w: no IDAT", errFormat)
		default:
			if err := c.skip(n); err != nil {
				return nil, err
			}
		}
	}
}

func parseIHDR(b []byte) (*header, error) {
	if len(b) != 13 {
		return nil, fmt.Errorf("%w: IHDR", errFormat)
	}
	h := &header{width: int(binary.BigEndian.Uint32(b)), height: int(binary.BigEndian.Uint32(b[4:])), depth: int(b[8]), colorType: b[9]}
	if h.width <= 0 || h.height <= 0 || h.width > maxSide || h.height > maxSide || b[10] != 0 || b[11] != 0 {
		return nil, fmt.Errorf("%w: IHDR %dx%d", errFormat, h.width, h.height)
	}
	if b[12] != 0 {
		return nil, fmt.Errorf("%w: interlaced", ErrUnsupported)
	}
	valid := map[byte][]int{0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}[h.colorType]
	ok := false
	for _, d := range valid {
		ok = ok || d == h.depth
	}
	if !ok {
		return nil, fmt.Errorf("%w: colour type %d at depth %d", errFormat, h.colorType, h.depth)
	}
	h.channels = map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[h.colorType]
	return h, nil
}

// transparency applies a tRNS chunk: alpha of palette entries, or the gray
// or RGB value that is transparent.
func (h *header) transparency(b []byte) {
	switch h.colorType {
	case 3:
		for i := 0; i < len(b) && i < len(h.palette); i++ {
			h.palette[i][3] = b[i]
		}
	case 0, 2:
		for i := 0; i+1 < len(b); i += 2 {
			h.trns = append(h.trns, binary.BigEndian.Uint16(b[i:]))
		}
	}
}

// Read yields IDAT data, moving from chunk to chunk.
func (c *chunkReader) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		if err := c.checkCRC(); err != nil {
			return 0, err
		}
		typ, n, err := c.next()
		if err != nil {
			return 0, err
		}
		if typ != "IDAT" {
			c.done = true // the image data has ended; what follows is not read
			return 0, io.EOF
		}
		c.left = n
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p[:n])
	c.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
