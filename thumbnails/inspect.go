package thumbnails

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// imageInfo is what the headers say, read without decoding pixels.
type imageInfo struct {
	format        string // sniffed MIME type
	width, height int
	frames        int64 // 1 for stills
	framePixels   int64 // sum of every frame's own width x height (GIF, WebP)
	layout        layout
	mp4           *mp4Video // MP4 and QuickTime: the header read, moov held for the decoder
}

// sniff names the image format from its first bytes, or returns "".
func sniff(b []byte) string {
	if f := bmffBrand(b); f != "" {
		return f
	}
	switch {
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return "image/jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "image/gif"
	case len(b) >= 12 && bytes.Equal(b[0:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return "image/webp"
	case bytes.HasPrefix(b, []byte("BM")):
		return "image/bmp"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "image/tiff"
	}
	return sniffAV(b)
}

// inspect sniffs r and reads its dimensions (and, for animations, its frame
// count) from the headers. It allocates nothing in proportion to the pixels.
func inspect(r io.ReadSeeker) (imageInfo, error) {
	head := make([]byte, 64) // an ftyp box's brands, for HEIC and AVIF
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return imageInfo{}, err
	}
	info := imageInfo{format: sniff(head[:n]), frames: 1}
	if info.format == "" {
		return imageInfo{}, fmt.Errorf("unrecognised bytes: %w", ErrUnsupported)
	}
	if isAudio(info.format) {
		return info, nil // no frame size: a waveform is drawn at the size asked
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return imageInfo{}, err
	}
	br := bufio.NewReader(r)
	var cfg image.Config
	switch info.format {
	case "image/jpeg":
		cfg, err = jpeg.DecodeConfig(br)
		if err == nil {
			if _, err = r.Seek(0, io.SeekStart); err == nil {
				info.layout = readJPEGLayout(bufio.NewReader(r))
			}
		}
	case "image/png":
		cfg, err = png.DecodeConfig(br)
		if err == nil {
			if _, err = r.Seek(0, io.SeekStart); err == nil {
				info.layout = readPNGLayout(r)
			}
		}
		if err == nil {
			if _, err = r.Seek(0, io.SeekStart); err == nil {
				info.frames, err = apngFrames(bufio.NewReader(r))
				if info.frames > 1 {
					info.format = "image/apng"
				}
			}
		}
	case "image/gif":
		cfg, err = gif.DecodeConfig(br)
		if err == nil {
			if _, err = r.Seek(0, io.SeekStart); err == nil {
				info.frames, info.framePixels, err = gifFrames(bufio.NewReader(r))
			}
		}
	case "image/webp":
		cfg, err = webp.DecodeConfig(br)
		if err == nil {
			if _, err = r.Seek(0, io.SeekStart); err == nil {
				info.layout = readWebPLayout(r)
			}
		}
		if err == nil && info.layout.animated {
			if _, err = r.Seek(0, io.SeekStart); err == nil {
				info.frames, info.framePixels, err = webpFrames(bufio.NewReader(r))
			}
		}
	case "image/heic", "image/avif":
		cfg.Width, cfg.Height, err = bmffDimensions(br)
	case "video/mp4", "video/quicktime":
		var size int64
		if size, err = r.Seek(0, io.SeekEnd); err == nil {
			if info.mp4, err = readMP4(r, size); err == nil {
				cfg.Width, cfg.Height = info.mp4.width, info.mp4.height
			}
		}
	case "video/webm", "video/x-matroska":
		cfg.Width, cfg.Height, err = webmDimensions(br)
	case "image/bmp":
		cfg, err = bmp.DecodeConfig(br)
	case "image/tiff":
		cfg, err = tiff.DecodeConfig(br)
	}
	if err != nil {
		return imageInfo{}, fmt.Errorf("read %s header: %v: %w", info.format, err, ErrCorrupt)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return imageInfo{}, fmt.Errorf("%s of %dx%d: %w", info.format, cfg.Width, cfg.Height, ErrCorrupt)
	}
	info.width, info.height = cfg.Width, cfg.Height
	return info, nil
}

// apngFrames reads PNG chunk headers up to the first IDAT and returns the
// frame count an acTL chunk announces (1 without one). Chunk bodies are
// skipped, never read into memory. A stream that ends early counts as one
// frame: the decoder will reject it, after the limits are checked.
func apngFrames(r *bufio.Reader) (int64, error) {
	n, err := scanPNG(r)
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return 1, nil
	}
	return n, err
}

func scanPNG(r *bufio.Reader) (int64, error) {
	if _, err := r.Discard(8); err != nil {
		return 0, err
	}
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return 0, err
		}
		length := int64(binary.BigEndian.Uint32(hdr[:4]))
		switch string(hdr[4:]) {
		case "IDAT":
			return 1, nil
		case "acTL":
			var body [8]byte
			if length < 8 {
				return 0, errors.New("short acTL")
			}
			if _, err := io.ReadFull(r, body[:]); err != nil {
				return 0, err
			}
			return int64(binary.BigEndian.Uint32(body[:4])), nil
		}
		if _, err := r.Discard(int(length) + 4); err != nil { // body and CRC
			return 0, err
		}
	}
}

// webpFrames walks the chunks of an animated WebP, skipping their bodies,
// and returns the number of ANMF frames and the sum of their own pixels. A
// file that ends early counts what it had, as gifFrames does.
func webpFrames(r *bufio.Reader) (frames, pixels int64, err error) {
	if _, err := r.Discard(12); err != nil { // RIFF, size, WEBP
		return 0, 0, err
	}
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return max(frames, 1), pixels, nil
		}
		n := int64(binary.LittleEndian.Uint32(hdr[4:]))
		n += n & 1
		if string(hdr[:4]) == "ANMF" {
			var d [12]byte
			if n < 16 {
				return 0, 0, errors.New("webp: short ANMF")
			}
			if _, err := io.ReadFull(r, d[:]); err != nil {
				return max(frames, 1), pixels, nil
			}
			w := int64(d[6]) | int64(d[7])<<8 | int64(d[8])<<16
			h := int64(d[9]) | int64(d[10])<<8 | int64(d[11])<<16
			frames++
			pixels += (w + 1) * (h + 1)
			n -= 12
		}
		if _, err := r.Discard(int(n)); err != nil {
			return max(frames, 1), pixels, nil
		}
	}
}

// gifFrames walks the GIF block structure without decompressing anything and
// returns the frame count and the sum of the frames' own pixel counts. A
// stream that ends early counts what it had: the decoder will reject it, but
// the limits are checked first.
func gifFrames(r *bufio.Reader) (frames, pixels int64, err error) {
	frames, pixels, err = scanGIF(r)
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return max(frames, 1), pixels, nil
	}
	return frames, pixels, err
}

func scanGIF(r *bufio.Reader) (frames, pixels int64, err error) {
	var lsd [13]byte // header and logical screen descriptor
	if _, err := io.ReadFull(r, lsd[:]); err != nil {
		return 0, 0, err
	}
	if lsd[10]&0x80 != 0 {
		if _, err := r.Discard(3 << ((lsd[10] & 7) + 1)); err != nil {
			return 0, 0, err
		}
	}
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, 0, err
		}
		switch b {
		case 0x3b: // trailer
			return frames, pixels, nil
		case 0x21: // extension: label, then sub-blocks
			if _, err := r.ReadByte(); err != nil {
				return 0, 0, err
			}
			if err := skipSubBlocks(r); err != nil {
				return 0, 0, err
			}
		case 0x2c: // image descriptor
			var d [9]byte
			if _, err := io.ReadFull(r, d[:]); err != nil {
				return 0, 0, err
			}
			w, h := binary.LittleEndian.Uint16(d[4:6]), binary.LittleEndian.Uint16(d[6:8])
			frames++
			pixels += int64(w) * int64(h)
			if d[8]&0x80 != 0 {
				if _, err := r.Discard(3 << ((d[8] & 7) + 1)); err != nil {
					return 0, 0, err
				}
			}
			if _, err := r.ReadByte(); err != nil { // LZW minimum code size
				return 0, 0, err
			}
			if err := skipSubBlocks(r); err != nil {
				return 0, 0, err
			}
		default:
			return 0, 0, fmt.Errorf("gif: unknown block 0x%02x", b)
		}
	}
}

func skipSubBlocks(r *bufio.Reader) error {
	for {
		n, err := r.ReadByte()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if _, err := r.Discard(int(n)); err != nil {
			return err
		}
	}
}

// Dimensions reads an image's width and height, as it is shown (EXIF
// orientation applied), from its header; the whole image is not decoded.
func Dimensions(r io.ReadSeeker) (width, height int, err error) {
	info, err := inspect(r)
	if err != nil {
		return 0, 0, err
	}
	b := oriented(image.Rect(0, 0, info.width, info.height), info.layout.orientation)
	return b.Dx(), b.Dy(), nil
}
