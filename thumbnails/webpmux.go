package thumbnails

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"

	gwebp "github.com/gen2brain/webp"
)

// The WebP encoder (libwebp in WebAssembly) writes stills only. An animated
// WebP is a RIFF container of the same frames: a VP8X header with the
// animation flag, an ANIM chunk (background, loop count) and one ANMF chunk
// per frame holding the frame's offset, size, duration and the bitstream
// chunks (ALPH, VP8 or VP8L) the still encoder wrote for it.

// webpAnimation gathers the encoded frames of an animated WebP.
type webpAnimation struct {
	quality       int
	width, height int
	alpha         bool
	frames        bytes.Buffer // ANMF chunks
}

// add encodes img as the next frame, shown for delayMs. Every frame is a
// whole canvas: drawn at 0,0 without blending.
func (a *webpAnimation) add(img *image.NRGBA, delayMs int) error {
	b := img.Rect
	if a.width == 0 {
		a.width, a.height = b.Dx(), b.Dy()
	}
	if b.Dx() != a.width || b.Dy() != a.height {
		return fmt.Errorf("webp animation: frame of %dx%d in a %dx%d canvas", b.Dx(), b.Dy(), a.width, a.height)
	}
	still, err := encodeWebP(img, a.quality)
	if err != nil {
		return err
	}
	chunks, alpha, err := webpBitstream(still)
	if err != nil {
		return err
	}
	a.alpha = a.alpha || alpha
	var hdr [16]byte
	put24(hdr[0:], 0) // x / 2
	put24(hdr[3:], 0) // y / 2
	put24(hdr[6:], uint32(b.Dx()-1))
	put24(hdr[9:], uint32(b.Dy()-1))
	put24(hdr[12:], uint32(min(max(delayMs, 0), 1<<24-1)))
	hdr[15] = 0x02 // do not blend; do not dispose
	writeRIFFChunk(&a.frames, "ANMF", append(hdr[:], chunks...))
	return nil
}

// encode writes the animation, looping as image/gif counts (0 forever, -1
// once, n: n more times).
func (a *webpAnimation) encode(loops int) ([]byte, error) {
	if a.frames.Len() == 0 {
		return nil, errors.New("webp animation without frames")
	}
	var body bytes.Buffer
	body.WriteString("WEBP")
	var vp8x [10]byte
	vp8x[0] = 0x02 // animation
	if a.alpha {
		vp8x[0] |= 0x10
	}
	put24(vp8x[4:], uint32(a.width-1))
	put24(vp8x[7:], uint32(a.height-1))
	writeRIFFChunk(&body, "VP8X", vp8x[:])
	var anim [6]byte // background BGRA 0, then the loop count (0: forever)
	switch {
	case loops < 0:
		binary.LittleEndian.PutUint16(anim[4:], 1)
	case loops > 0:
		binary.LittleEndian.PutUint16(anim[4:], uint16(min(loops+1, 1<<16-1)))
	}
	writeRIFFChunk(&body, "ANIM", anim[:])
	body.Write(a.frames.Bytes())
	var out bytes.Buffer
	writeRIFFChunk(&out, "RIFF", body.Bytes())
	return out.Bytes(), nil
}

// encodeWebP writes img as a lossy WebP still (with an alpha plane where it
// has transparency).
func encodeWebP(img *image.NRGBA, quality int) ([]byte, error) {
	var buf bytes.Buffer
	if err := gwebp.Encode(&buf, img, gwebp.Options{Quality: quality, Method: 4}); err != nil {
		return nil, fmt.Errorf("encode webp: %w", err)
	}
	return buf.Bytes(), nil
}

// webpBitstream returns the chunks of a still WebP that hold its image
// (ALPH and VP8, or VP8L), without the RIFF header and VP8X, and whether
// there is an alpha channel.
func webpBitstream(file []byte) (chunks []byte, alpha bool, err error) {
	if len(file) < 12 || string(file[0:4]) != "RIFF" || string(file[8:12]) != "WEBP" {
		return nil, false, errors.New("webp encoder wrote no RIFF WEBP")
	}
	for rest := file[12:]; len(rest) >= 8; {
		typ, n := string(rest[0:4]), int(binary.LittleEndian.Uint32(rest[4:8]))
		end := 8 + n + n&1
		if end > len(rest) {
			return nil, false, errors.New("webp encoder wrote a truncated chunk")
		}
		switch typ {
		case "ALPH", "VP8 ":
			alpha = alpha || typ == "ALPH"
			chunks = append(chunks, rest[:end]...)
		case "VP8L":
			alpha = true // may have alpha; the flag only tells decoders to look
			chunks = append(chunks, rest[:end]...)
		}
		rest = rest[end:]
	}
	if len(chunks) == 0 {
		return nil, false, errors.New("webp encoder wrote no image chunk")
	}
	return chunks, alpha, nil
}

// writeRIFFChunk writes a chunk: fourcc, little-endian size, data and a pad
// byte to an even length.
func writeRIFFChunk(w *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(data)))
	w.WriteString(typ)
	w.Write(n[:])
	w.Write(data)
	if len(data)&1 == 1 {
		w.WriteByte(0)
	}
}

func put24(b []byte, v uint32) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }
