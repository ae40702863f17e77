package thumbnails

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HEIC and AVIF are ISO base media files (HEIF): an ftyp box naming the
// brands, then a meta box whose item properties (iprp/ipco) hold an ispe box
// per image with its width and height. These read just that, box headers
// and the few small boxes on the way, never the coded pixels (mdat).

// bmffBrand names the format of an ftyp box's brands, or "".
func bmffBrand(head []byte) string {
	if len(head) < 16 || !bytes.Equal(head[4:8], []byte("ftyp")) {
		return ""
	}
	size := int(binary.BigEndian.Uint32(head[0:4]))
	brands := [][]byte{head[8:12]} // major, then compatible ones after the minor version
	for i := 16; i+4 <= min(size, len(head)); i += 4 {
		brands = append(brands, head[i:i+4])
	}
	for _, b := range brands {
		switch string(b) {
		case "avif", "avis":
			return "image/avif"
		}
	}
	for _, b := range brands {
		switch string(b) {
		case "heic", "heix", "heim", "heis", "hevc", "hevx":
			return "image/heic"
		}
	}
	switch string(brands[0]) {
	case "qt  ":
		return "video/quicktime"
	case "M4A ", "M4B ", "F4A ":
		return "" // audio in MP4 is not thumbnailed
	}
	for _, b := range brands {
		switch string(b) {
		case "isom", "iso2", "iso4", "iso5", "iso6", "mp41", "mp42", "avc1", "M4V ", "M4VP", "dash", "mmp4",
			"3gp4", "3gp5", "3gp6", "3g2a", "MSNV":
			return "video/mp4"
		}
	}
	return ""
}

// bmffLimits bound what reading the header may cost on hostile input.
const (
	bmffMaxHeader = 4 << 20 // bytes read before the meta box's properties are found
	bmffMaxBoxes  = 4096
)

// bmffDimensions returns the largest image extent the file's ispe boxes
// declare (the primary image, or a grid's full size; the tiles and
// thumbnails are smaller), so the pixel limits see the worst case.
func bmffDimensions(r io.Reader) (width, height int, err error) {
	br := &boxReader{r: io.LimitReader(r, bmffMaxHeader)}
	meta, err := br.find("meta", -1)
	if err != nil {
		return 0, 0, err
	}
	if err := br.skip(4); err != nil { // meta is a full box: version and flags
		return 0, 0, err
	}
	iprp, err := br.find("iprp", meta-4)
	if err != nil {
		return 0, 0, err
	}
	ipco, err := br.find("ipco", iprp)
	if err != nil {
		return 0, 0, err
	}
	for left := ipco; left > 0; {
		typ, size, err := br.next()
		if err != nil {
			return 0, 0, err
		}
		if size > left {
			return 0, 0, errors.New("ipco: a property overruns its box")
		}
		left -= size
		body := size - br.lastHeader
		if typ != "ispe" {
			if err := br.skip(body); err != nil {
				return 0, 0, err
			}
			continue
		}
		if body != 12 {
			return 0, 0, fmt.Errorf("ispe of %d bytes", body)
		}
		var b [12]byte
		if _, err := io.ReadFull(br.r, b[:]); err != nil {
			return 0, 0, err
		}
		w, h := int64(binary.BigEndian.Uint32(b[4:8])), int64(binary.BigEndian.Uint32(b[8:12]))
		if w*h > int64(width)*int64(height) {
			width, height = int(min(w, 1<<31-1)), int(min(h, 1<<31-1))
		}
	}
	if width == 0 || height == 0 {
		return 0, 0, errors.New("no image extents (ispe)")
	}
	return width, height, nil
}

// boxReader walks box headers.
type boxReader struct {
	r          io.Reader
	boxes      int
	lastHeader int64 // bytes of the last header read
}

// next reads a box header and returns the box's type and whole size.
func (b *boxReader) next() (string, int64, error) {
	b.boxes++
	if b.boxes > bmffMaxBoxes {
		return "", 0, errors.New("too many boxes")
	}
	var h [8]byte
	if _, err := io.ReadFull(b.r, h[:]); err != nil {
		return "", 0, err
	}
	size, typ := int64(binary.BigEndian.Uint32(h[0:4])), string(h[4:8])
	b.lastHeader = 8
	if size == 1 { // a 64-bit size follows
		var l [8]byte
		if _, err := io.ReadFull(b.r, l[:]); err != nil {
			return "", 0, err
		}
		size = int64(binary.BigEndian.Uint64(l[:]))
		b.lastHeader = 16
	}
	if size < b.lastHeader {
		return "", 0, fmt.Errorf("box %q of %d bytes", typ, size) // 0 ("to the end") included: no meta after mdat
	}
	return typ, size, nil
}

// find skips boxes until one of type typ and returns its body's size; within
// is how many bytes the boxes searched may take (-1: no bound).
func (b *boxReader) find(typ string, within int64) (int64, error) {
	for within != 0 {
		t, size, err := b.next()
		if err != nil {
			return 0, fmt.Errorf("looking for %s: %w", typ, err)
		}
		if within > 0 {
			if size > within {
				return 0, fmt.Errorf("box %q overruns its parent", t)
			}
			within -= size
		}
		if t == typ {
			return size - b.lastHeader, nil
		}
		if err := b.skip(size - b.lastHeader); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("no %s box", typ)
}

func (b *boxReader) skip(n int64) error {
	_, err := io.CopyN(io.Discard, b.r, n)
	return err
}
