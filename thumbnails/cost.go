package thumbnails

import (
	"bufio"
	"encoding/binary"
	"io"
)

// Decode memory is admitted against a budget (thumbnails.decodeMemoryBytes)
// before decoding, from what the headers say: the pixel limits alone let a
// 359 KiB progressive JPEG of 5600x5600 take 470 MB in image/jpeg. The
// figures are the peak bytes per pixel the standard decoders hold, read from
// their sources; the thumbnail pipeline then adds a little (pre-shrink output,
// resize rows), counted as workBytesPerPixel and fixedWorkBytes.
const (
	workBytesPerPixel = 0.5
	fixedWorkBytes    = 4 << 20
)

// layout is what a header says about how the pixels will be held.
type layout struct {
	progressive bool    // JPEG: coefficients of every block are kept until the end
	components  int     // JPEG: 1 gray, 3 YCbCr, 4 CMYK/YCCK
	planeShare  float64 // JPEG: samples per pixel over all components (3 for 4:4:4, 1.5 for 4:2:0)
	bitDepth    int     // PNG
	colorType   byte    // PNG
	interlaced  bool    // PNG
	lossless    bool    // WebP VP8L
	alpha       bool    // WebP with an alpha chunk
	animated    bool    // WebP with the VP8X animation flag
	orientation int     // JPEG EXIF orientation, 1 when upright or unknown
}

// wasmDecoderBytes is what instantiating a WebAssembly decoder (HEIC,
// AVIF) costs before it decodes anything: measured 44 MB.
const wasmDecoderBytes = 48 << 20

// decodeCost estimates the bytes decoding src (size bytes, as info describes
// it) holds at its peak: for a still (a JPEG at 1/scale of its size) or, with
// allFrames, for every frame of an animation.
func decodeCost(info imageInfo, size int64, scale int, allFrames bool) int64 {
	px := float64(info.width) * float64(info.height)
	perPixel := 4.0 // NRGBA, the common case
	l := info.layout
	switch info.format {
	case "image/jpeg":
		// jpegscale holds the file, one byte per output sample, and for a
		// progressive file an int16 per sample of the full size, kept until
		// the last scan. CMYK is converted into a four-byte image.
		s2 := float64(scale * scale)
		perPixel = l.planeShare / s2
		if l.progressive {
			perPixel += 2 * l.planeShare
		}
		if l.components == 4 {
			perPixel += 4 / s2
		}
		return int64(float64(size) + px*(perPixel+workBytesPerPixel/s2) + fixedWorkBytes)
	case "image/png", "image/apng":
		if !l.interlaced {
			// pngscale holds the shrunk image (and a few rows): 4 bytes a
			// pixel of the output.
			return int64(px*4/float64(scale*scale) + float64(info.width)*24 + fixedWorkBytes)
		}
		// image/png: the whole image, and for interlaced files each pass's
		// image of its own before they merge.
		perPixel = 2 * pngBytesPerPixel(l.bitDepth, l.colorType)
	case "image/gif":
		perPixel = 1 // paletted
	case "image/webp":
		switch {
		case l.lossless:
			perPixel = 8 // ARGB words, then NRGBA
		case l.alpha:
			perPixel = 2.5 // 4:2:0 planes and alpha
		default:
			perPixel = 1.5
		}
	case "image/tiff":
		perPixel = 10 // up to RGBA64, plus the strips read whole
	case "video/mp4", "video/quicktime", "video/webm", "video/x-matroska":
		// The decoder runs in a process of its own, bounded by its own
		// limits; here, an MP4's index (held to be sent first), the PNG it
		// writes (at most 4 bytes a pixel) and that PNG decoded at 1/scale.
		var index float64
		if info.mp4 != nil {
			index = 2 * float64(len(info.mp4.moov)) // and its shifted copy
		}
		return int64(index + px*4 + px*4/float64(scale*scale) + fixedWorkBytes)
	case "audio/mpeg", "audio/ogg", "audio/wav", "audio/flac":
		// A peak per 10 ms and the waveform, drawn at most as large as the
		// largest thumbnail size.
		return 2 * fixedWorkBytes
	case "image/heic":
		// The WebAssembly decoder's memory (its planes, RGBA output and
		// growth) and the RGBA copy handed back: 24 bytes a pixel measured
		// for a 12 MP HEIC, 21 for a 40 MP one, plus the instantiated
		// module.
		perPixel = 26
	case "image/avif":
		// The same for libavif and dav1d, whose memory grows in more
		// steps: 64 to 65 bytes a pixel measured at 3, 12, 20 and 24 MP.
		perPixel = 66
	}
	cost := px*(perPixel+workBytesPerPixel) + fixedWorkBytes
	if info.format == "image/heic" || info.format == "image/avif" {
		cost += wasmDecoderBytes
	}
	if info.frames > 1 && (allFrames || info.format == "image/webp") {
		switch info.format {
		case "image/webp":
			// libwebp's animation decoder returns every frame's canvas at
			// once, in WebAssembly memory that grows by copying: any frame
			// costs them all, twice.
			cost = 8*float64(info.frames)*px + float64(size) + 2*fixedWorkBytes
		case "image/apng":
			// One frame's compressed data (at most the file), the frame
			// decoded (up to 8 bytes a pixel), and two canvases.
			cost = float64(size) + 16*px + fixedWorkBytes
		default:
			// Every frame's own pixels, paletted, and two screen-sized
			// canvases (one saved for "restore to previous").
			cost = float64(info.framePixels) + 8*px + fixedWorkBytes
		}
	}
	return int64(cost)
}

// pngBytesPerPixel is what image/png allocates per pixel for a bit depth
// and colour type: Gray, Gray16, Paletted, RGBA, NRGBA or their 64-bit forms.
func pngBytesPerPixel(depth int, colorType byte) float64 {
	wide := depth == 16
	switch colorType {
	case 0: // gray
		if wide {
			return 2
		}
		return 1
	case 3: // paletted
		return 1
	default: // RGB, gray+alpha, RGBA
		if wide {
			return 8
		}
		return 4
	}
}

// readPNGLayout reads IHDR's bit depth, colour type and interlace method.
func readPNGLayout(r io.Reader) layout {
	var hdr [29]byte // signature, IHDR length and type, 13 bytes of IHDR
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return layout{bitDepth: 8, colorType: 6}
	}
	return layout{bitDepth: int(hdr[24]), colorType: hdr[25], interlaced: hdr[28] != 0}
}

// readWebPLayout says whether a WebP file is lossless or has alpha, from its
// first chunk.
func readWebPLayout(r io.Reader) layout {
	var hdr [21]byte // RIFF header, chunk fourcc and size, VP8X flags
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return layout{lossless: true}
	}
	switch string(hdr[12:16]) {
	case "VP8L":
		return layout{lossless: true}
	case "VP8X":
		// The frames may be VP8L: assume the larger.
		return layout{alpha: hdr[20]&0x10 != 0, lossless: true, animated: hdr[20]&0x02 != 0}
	}
	return layout{}
}

// readJPEGLayout walks a JPEG's markers up to its frame header, for the
// sampling of its components, whether it is progressive, and the EXIF
// orientation found on the way. Nothing is read in proportion to the pixels.
func readJPEGLayout(r *bufio.Reader) layout {
	l := layout{components: 3, planeShare: 3, orientation: 1}
	var soi [2]byte
	if _, err := io.ReadFull(r, soi[:]); err != nil || soi != [2]byte{0xff, 0xd8} {
		return l
	}
	for {
		var m [4]byte
		if _, err := io.ReadFull(r, m[:]); err != nil || m[0] != 0xff {
			return l
		}
		marker, length := m[1], int(binary.BigEndian.Uint16(m[2:]))-2
		if length < 0 || marker == 0xda {
			return l
		}
		switch {
		case marker == 0xe1 && length < 1<<16:
			seg := make([]byte, length)
			if _, err := io.ReadFull(r, seg); err != nil {
				return l
			}
			if o := exifOrientation(seg); o != 0 && l.orientation == 1 {
				l.orientation = o
			}
			continue
		case marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc:
			seg := make([]byte, length)
			if _, err := io.ReadFull(r, seg); err != nil || len(seg) < 6 {
				return l
			}
			return frameLayout(l, marker, seg)
		}
		if _, err := r.Discard(length); err != nil {
			return l
		}
	}
}

// frameLayout reads a start-of-frame segment (after its length).
func frameLayout(l layout, marker byte, seg []byte) layout {
	l.progressive = marker == 0xc2 || marker == 0xc6 || marker == 0xca || marker == 0xce
	n := int(seg[5])
	if n < 1 || len(seg) < 6+3*n {
		return l
	}
	l.components = n
	var maxH, maxV int
	for i := range n {
		hv := seg[6+3*i+1]
		maxH, maxV = max(maxH, int(hv>>4)), max(maxV, int(hv&15))
	}
	if maxH == 0 || maxV == 0 {
		return l
	}
	l.planeShare = 0
	for i := range n {
		hv := seg[6+3*i+1]
		l.planeShare += float64(int(hv>>4)*int(hv&15)) / float64(maxH*maxV)
	}
	return l
}
