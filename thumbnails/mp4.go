package thumbnails

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MP4 and QuickTime (ISO base media) videos: the track headers (moov/trak/
// tkhd) give the frame size, read before ffmpeg runs. ffmpeg reads its input
// from a pipe, where it cannot seek; a file whose moov box comes after its
// media data (as phones record them) is handed over with moov moved to the
// front and its chunk offsets (stco, co64) shifted by its size, as
// qt-faststart does, so ffmpeg finds the index before the data it indexes.

// mp4Limits bound the work on hostile input.
const (
	mp4MaxTopBoxes = 1024
	mp4MaxMoov     = 32 << 20 // bytes of moov read into memory
)

// mp4Box is a box: its type, where it starts and its whole size.
type mp4Box struct {
	typ         string
	start, size int64
}

// mp4Video is what an MP4's header says: the frame size, the top-level
// boxes and the moov box's bytes.
type mp4Video struct {
	width, height int
	boxes         []mp4Box
	moovAt        int // index of moov in boxes
	moov          []byte
}

// readMP4 walks the top-level boxes of r (size bytes long), seeking over
// their bodies, reads moov and finds the largest track size in it.
func readMP4(r io.ReadSeeker, size int64) (*mp4Video, error) {
	v := &mp4Video{moovAt: -1}
	for pos := int64(0); pos < size; {
		if len(v.boxes) == mp4MaxTopBoxes {
			return nil, errors.New("mp4: too many boxes")
		}
		if _, err := r.Seek(pos, io.SeekStart); err != nil {
			return nil, err
		}
		var hdr [16]byte
		if _, err := io.ReadFull(r, hdr[:8]); err != nil {
			return nil, err
		}
		n, typ := int64(binary.BigEndian.Uint32(hdr[:4])), string(hdr[4:8])
		switch n {
		case 0:
			n = size - pos // to the end of the file
		case 1:
			if _, err := io.ReadFull(r, hdr[8:16]); err != nil {
				return nil, err
			}
			n = int64(binary.BigEndian.Uint64(hdr[8:16]))
		}
		if n < 8 || n > size-pos {
			return nil, fmt.Errorf("mp4: %q box of %d bytes at %d in a file of %d", typ, n, pos, size)
		}
		if typ == "moov" {
			if v.moovAt >= 0 {
				return nil, errors.New("mp4: two moov boxes")
			}
			if n > mp4MaxMoov {
				return nil, fmt.Errorf("mp4: moov of %d bytes", n)
			}
			v.moov = make([]byte, n)
			if _, err := r.Seek(pos, io.SeekStart); err != nil {
				return nil, err
			}
			if _, err := io.ReadFull(r, v.moov); err != nil {
				return nil, err
			}
			v.moovAt = len(v.boxes)
		}
		v.boxes = append(v.boxes, mp4Box{typ: typ, start: pos, size: n})
		pos += n
	}
	if v.moovAt < 0 {
		return nil, errors.New("mp4: no moov box")
	}
	err := eachBox(v.moov[boxHeaderLen(v.moov):], func(typ string, body []byte) error {
		if typ != "trak" {
			return nil
		}
		return eachBox(body, func(typ string, body []byte) error {
			if typ != "tkhd" {
				return nil
			}
			w, h, err := tkhdSize(body)
			if err == nil && w*h > v.width*v.height {
				v.width, v.height = w, h
			}
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	if v.width == 0 {
		return nil, errors.New("mp4: no video track")
	}
	return v, nil
}

// tkhdSize reads a track header's width and height (16.16 fixed point).
func tkhdSize(b []byte) (w, h int, err error) {
	if len(b) < 4 {
		return 0, 0, errors.New("mp4: short tkhd")
	}
	off := 4 + 20 // version and flags; times, track ID, reserved, duration (v0)
	if b[0] == 1 {
		off = 4 + 32
	}
	off += 8 + 8 + 36 // reserved, layer/group/volume/reserved, matrix
	if len(b) < off+8 {
		return 0, 0, errors.New("mp4: short tkhd")
	}
	return int(binary.BigEndian.Uint32(b[off:]) >> 16), int(binary.BigEndian.Uint32(b[off+4:]) >> 16), nil
}

// boxHeaderLen is the length of the header of the box at the start of b.
func boxHeaderLen(b []byte) int {
	if len(b) >= 4 && binary.BigEndian.Uint32(b) == 1 {
		return 16
	}
	return 8
}

// eachBox calls fn with the type and body of each box in b.
func eachBox(b []byte, fn func(typ string, body []byte) error) error {
	for len(b) > 0 {
		if len(b) < 8 {
			return errors.New("mp4: truncated box header")
		}
		n, hl := uint64(binary.BigEndian.Uint32(b)), uint64(8)
		switch n {
		case 0:
			n = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return errors.New("mp4: truncated box header")
			}
			n, hl = binary.BigEndian.Uint64(b[8:]), 16
		}
		if n < hl || n > uint64(len(b)) {
			return fmt.Errorf("mp4: %q box overruns its parent", b[4:8])
		}
		if err := fn(string(b[4:8]), b[hl:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// stream writes the file for ffmpeg: as it is when moov comes before the
// media data, else with moov moved right after ftyp (or to the front) and
// every chunk offset into the bytes it now precedes shifted by its size.
func (v *mp4Video) stream(r io.ReadSeeker, w io.Writer) error {
	first := 0 // where moov goes: after a leading ftyp
	if len(v.boxes) > 0 && v.boxes[0].typ == "ftyp" {
		first = 1
	}
	mdatBefore := false
	for _, b := range v.boxes[first:v.moovAt] {
		mdatBefore = mdatBefore || b.typ == "mdat"
	}
	if !mdatBefore {
		return copyRange(r, w, 0, v.boxes[len(v.boxes)-1].start+v.boxes[len(v.boxes)-1].size)
	}
	from := v.boxes[first].start // the bytes moov now precedes: [from, moov's start)
	to := v.boxes[v.moovAt].start
	moov := append([]byte(nil), v.moov...)
	if err := shiftChunkOffsets(moov[boxHeaderLen(moov):], from, to, int64(len(moov))); err != nil {
		return err
	}
	if err := copyRange(r, w, 0, from); err != nil {
		return err
	}
	if _, err := w.Write(moov); err != nil {
		return err
	}
	if err := copyRange(r, w, from, to-from); err != nil {
		return err
	}
	last := v.boxes[len(v.boxes)-1]
	after := to + int64(len(moov))
	return copyRange(r, w, after, last.start+last.size-after)
}

// shiftChunkOffsets adds by to every stco and co64 entry of moov's tracks
// that points into [from, to).
func shiftChunkOffsets(moov []byte, from, to, by int64) error {
	var walk func(b []byte) error
	walk = func(b []byte) error {
		return eachBox(b, func(typ string, body []byte) error {
			switch typ {
			case "trak", "mdia", "minf", "stbl":
				return walk(body)
			case "stco", "co64":
				width := 4
				if typ == "co64" {
					width = 8
				}
				if len(body) < 8 {
					return errors.New("mp4: short chunk offset box")
				}
				n := int64(binary.BigEndian.Uint32(body[4:8]))
				if n > int64(len(body)-8)/int64(width) {
					return errors.New("mp4: chunk offset table overruns its box")
				}
				for i := range int(n) {
					e := body[8+i*width:]
					var off int64
					if width == 4 {
						off = int64(binary.BigEndian.Uint32(e))
					} else {
						off = int64(binary.BigEndian.Uint64(e))
					}
					if off < from || off >= to {
						continue
					}
					off += by
					if width == 4 {
						if off > 1<<32-1 {
							return errors.New("mp4: chunk offset past 4 GiB in stco")
						}
						binary.BigEndian.PutUint32(e, uint32(off))
					} else {
						binary.BigEndian.PutUint64(e, uint64(off))
					}
				}
			}
			return nil
		})
	}
	return walk(moov)
}

// copyRange copies n bytes of r from offset off to w.
func copyRange(r io.ReadSeeker, w io.Writer, off, n int64) error {
	if n <= 0 {
		return nil
	}
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		return err
	}
	_, err := io.CopyN(w, r, n)
	return err
}
