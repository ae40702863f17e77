package thumbnails

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// WebM and Matroska videos are EBML: elements of a variable-length ID, a
// variable-length size and a body. The frame size is in
// Segment/Tracks/TrackEntry/Video/PixelWidth and PixelHeight, which muxers
// write before the first Cluster of media data; the walk stops there, and
// after ebmlMaxHeader bytes.

const ebmlMaxHeader = 4 << 20

// EBML element IDs, with their length marker bits, as the spec writes them.
const (
	ebmlSegment     = 0x18538067
	ebmlTracks      = 0x1654AE6B
	ebmlTrackEntry  = 0xAE
	ebmlVideo       = 0xE0
	ebmlPixelWidth  = 0xB0
	ebmlPixelHeight = 0xBA
	ebmlCluster     = 0x1F43B675
	ebmlHeader      = 0x1A45DFA3
)

// webmDimensions returns the largest video track's size.
func webmDimensions(r io.Reader) (width, height int, err error) {
	e := &ebmlReader{r: bufio.NewReader(io.LimitReader(r, ebmlMaxHeader))}
	id, size, err := e.element()
	if err != nil || id != ebmlHeader || size < 0 {
		return 0, 0, fmt.Errorf("webm: no EBML header: %v", err)
	}
	if err := e.skip(size); err != nil {
		return 0, 0, err
	}
	id, _, err = e.element()
	if err != nil || id != ebmlSegment {
		return 0, 0, fmt.Errorf("webm: no segment: %v", err)
	}
	// Inside the segment: walk into Tracks, TrackEntry and Video; skip the
	// rest. Element sizes are not checked against their parents': the walk
	// is bounded by ebmlMaxHeader and only reads small integers.
	var w, h uint64
	for {
		id, size, err := e.element()
		if errors.Is(err, io.EOF) || id == ebmlCluster {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		switch id {
		case ebmlTracks, ebmlTrackEntry, ebmlVideo:
			if size < 0 {
				return 0, 0, errors.New("webm: track element of unknown size")
			}
			continue // its children follow
		case ebmlPixelWidth, ebmlPixelHeight:
			v, err := e.uint(size)
			if err != nil {
				return 0, 0, err
			}
			if id == ebmlPixelWidth {
				w = max(w, v)
			} else {
				h = max(h, v)
			}
			continue
		}
		if size < 0 {
			return 0, 0, fmt.Errorf("webm: element %x of unknown size", id)
		}
		if err := e.skip(size); err != nil {
			return 0, 0, err
		}
	}
	if w == 0 || h == 0 || w > 1<<20 || h > 1<<20 {
		return 0, 0, fmt.Errorf("webm: video of %dx%d", w, h)
	}
	return int(w), int(h), nil
}

type ebmlReader struct{ r *bufio.Reader }

// element reads an element's ID and size; size -1 is "unknown".
func (e *ebmlReader) element() (id uint32, size int64, err error) {
	v, n, err := e.vint()
	if err != nil {
		return 0, 0, err
	}
	if n > 4 {
		return 0, 0, errors.New("webm: element ID longer than 4 bytes")
	}
	id = uint32(v | 1<<(7*n)) // IDs keep their marker bit
	s, sn, err := e.vint()
	if err != nil {
		return 0, 0, err
	}
	if s == 1<<(7*sn)-1 {
		return id, -1, nil
	}
	return id, int64(s), nil
}

// vint reads a variable-length integer without its marker bit, and its
// length in bytes.
func (e *ebmlReader) vint() (uint64, int, error) {
	b, err := e.r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	n := 1
	for mask := byte(0x80); b&mask == 0; mask >>= 1 {
		if n == 8 {
			return 0, 0, errors.New("webm: bad variable-length integer")
		}
		n++
	}
	v := uint64(b) & (1<<(8-n) - 1)
	for range n - 1 {
		c, err := e.r.ReadByte()
		if err != nil {
			return 0, 0, err
		}
		v = v<<8 | uint64(c)
	}
	return v, n, nil
}

func (e *ebmlReader) uint(size int64) (uint64, error) {
	if size < 1 || size > 8 {
		return 0, errors.New("webm: bad unsigned integer element")
	}
	var v uint64
	for range size {
		c, err := e.r.ReadByte()
		if err != nil {
			return 0, err
		}
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func (e *ebmlReader) skip(n int64) error {
	_, err := e.r.Discard(int(min(n, ebmlMaxHeader+1)))
	return err
}
