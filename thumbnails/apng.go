package thumbnails

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/draw"
	"image/png"
	"io"

	"github.com/disintegration/imaging"
)

// APNG: a PNG whose fcTL chunks describe frames, the first one's pixels in
// IDAT (when its fcTL comes before IDAT) and the others' in fdAT chunks.
// image/png reads only the default image, so each frame is rewritten as a PNG
// of its own (IHDR with the frame's size, the palette, IDAT from the frame's
// data) and decoded by image/png, then composed onto the canvas by the frame's
// blend and dispose operations. Nothing is decoded before the header's frame
// count has been checked against the limits, and no more frames than it
// announced are composed.

// apngFrame is one fcTL and the compressed data of its frame.
type apngFrame struct {
	rect            image.Rectangle
	delayMs         int
	dispose, blend  byte
	data            [][]byte // IDAT or fdAT payloads (fdAT without its sequence number)
	fromDefaultData bool
}

// composeAPNG calls fn with the canvas after each frame of the APNG in r, at
// most limit frames, until fn returns false.
func composeAPNG(r io.Reader, limit int64, fn func(frame) bool) error {
	var sig [8]byte
	if _, err := io.ReadFull(r, sig[:]); err != nil {
		return err
	}
	var ihdr []byte
	var ancillary [][2][]byte // PLTE and tRNS, which every frame's PNG needs
	var cur *apngFrame
	var canvas, saved *image.NRGBA
	shown := 0
	emit := func() (bool, error) { // composes cur, which is complete
		if cur == nil || int64(shown) >= limit {
			return int64(shown) < limit, nil
		}
		f := cur // complete: composed now, so no frame's data is kept after it
		cur = nil
		img, err := png.Decode(bytes.NewReader(framePNG(ihdr, ancillary, f)))
		if err != nil {
			return false, err
		}
		if canvas == nil {
			return false, errors.New("apng: frame before IHDR")
		}
		if f.dispose == 2 {
			saved = imaging.Clone(canvas)
		}
		op := draw.Over
		if f.blend == 0 {
			op = draw.Src
		}
		draw.Draw(canvas, f.rect, img, image.Point{}, op)
		shown++
		if !fn(frame{index: shown - 1, canvas: canvas, delayMs: f.delayMs}) {
			return false, nil
		}
		switch f.dispose {
		case 1:
			draw.Draw(canvas, f.rect, image.Transparent, image.Point{}, draw.Src)
		case 2:
			canvas = saved
		}
		return true, nil
	}
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		length := binary.BigEndian.Uint32(hdr[:4])
		typ := string(hdr[4:])
		if length > 1<<30 {
			return fmt.Errorf("apng: %s chunk of %d bytes", typ, length)
		}
		var body []byte
		switch typ {
		case "IHDR", "PLTE", "tRNS", "fcTL", "IDAT", "fdAT":
			// Read as it comes: a chunk's length is the file's word, and a
			// short file claiming a huge chunk must not allocate it.
			var err error
			if body, err = io.ReadAll(io.LimitReader(r, int64(length))); err != nil {
				return err
			}
			if len(body) != int(length) {
				return io.ErrUnexpectedEOF
			}
			if _, err := io.CopyN(io.Discard, r, 4); err != nil { // CRC: image/png checks the rewritten one
				return err
			}
		case "IEND":
			_, err := emit()
			return err
		default:
			if _, err := io.CopyN(io.Discard, r, int64(length)+4); err != nil {
				return err
			}
			continue
		}
		switch typ {
		case "IHDR":
			if len(body) != 13 {
				return errors.New("apng: bad IHDR")
			}
			ihdr = body
			w, h := binary.BigEndian.Uint32(body[0:4]), binary.BigEndian.Uint32(body[4:8])
			if w == 0 || h == 0 || w > 1<<16 || h > 1<<16 {
				return fmt.Errorf("apng: canvas of %dx%d", w, h)
			}
			canvas = image.NewNRGBA(image.Rect(0, 0, int(w), int(h)))
		case "PLTE", "tRNS":
			ancillary = append(ancillary, [2][]byte{[]byte(typ), body})
		case "fcTL":
			more, err := emit()
			if err != nil || !more {
				return err
			}
			if cur, err = parseFcTL(body, canvas); err != nil {
				return err
			}
		case "IDAT":
			if cur != nil && (len(cur.data) == 0 || cur.fromDefaultData) {
				cur.data = append(cur.data, body)
				cur.fromDefaultData = true
			}
			// Without an fcTL before it, the default image is not a frame.
		case "fdAT":
			if cur == nil || len(body) < 4 || cur.fromDefaultData {
				return errors.New("apng: fdAT outside a frame")
			}
			cur.data = append(cur.data, body[4:])
		}
	}
}

// parseFcTL reads a frame control chunk and checks the frame lies within the
// canvas.
func parseFcTL(b []byte, canvas *image.NRGBA) (*apngFrame, error) {
	if len(b) != 26 || canvas == nil {
		return nil, errors.New("apng: bad fcTL")
	}
	be := binary.BigEndian
	w, h, x, y := be.Uint32(b[4:8]), be.Uint32(b[8:12]), be.Uint32(b[12:16]), be.Uint32(b[16:20])
	num, den := int(be.Uint16(b[20:22])), int(be.Uint16(b[22:24]))
	cb := canvas.Rect
	if w == 0 || h == 0 || uint64(x)+uint64(w) > uint64(cb.Dx()) || uint64(y)+uint64(h) > uint64(cb.Dy()) {
		return nil, fmt.Errorf("apng: frame %dx%d at %d,%d outside the %dx%d canvas", w, h, x, y, cb.Dx(), cb.Dy())
	}
	if den == 0 {
		den = 100 // the spec's default
	}
	return &apngFrame{
		rect:    image.Rect(int(x), int(y), int(x+w), int(y+h)),
		delayMs: num * 1000 / den, dispose: b[24], blend: b[25],
	}, nil
}

// framePNG is a PNG holding one APNG frame: the IHDR with the frame's size,
// the palette chunks, and the frame's data as IDAT.
func framePNG(ihdr []byte, ancillary [][2][]byte, f *apngFrame) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	hdr := bytes.Clone(ihdr)
	binary.BigEndian.PutUint32(hdr[0:4], uint32(f.rect.Dx()))
	binary.BigEndian.PutUint32(hdr[4:8], uint32(f.rect.Dy()))
	writeChunk(&buf, "IHDR", hdr)
	for _, c := range ancillary {
		writeChunk(&buf, string(c[0]), c[1])
	}
	for _, d := range f.data {
		writeChunk(&buf, "IDAT", d)
	}
	writeChunk(&buf, "IEND", nil)
	return buf.Bytes()
}

func writeChunk(w *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	w.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	w.WriteString(typ)
	w.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	w.Write(n[:])
}
