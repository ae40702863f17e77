package thumbnails

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"

	"github.com/disintegration/imaging"
	"github.com/gen2brain/avif"
	"github.com/gen2brain/heic"
	"github.com/mediarepo/mediarepo/thumbnails/jpegscale"
	"github.com/mediarepo/mediarepo/thumbnails/pngscale"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// decodeStill decodes one frame with the decoder the sniffed format names,
// and returns it with the EXIF orientation (1-8) it is to be shown in; the
// caller turns it once it is small. A JPEG is decoded at 1/scale of its size;
// animations give the configured still frame.
func (g *Generator) decodeStill(ctx context.Context, src io.ReadSeeker, info imageInfo, size int64, scale int) (image.Image, int, error) {
	var img image.Image
	var err error
	orientation := 1
	switch info.format {
	case "image/jpeg":
		orientation = info.layout.orientation
		img, err = decodeJPEG(ctx, src, size, scale)
	case "image/png":
		img, err = decodePNG(ctx, src, scale)
	case "image/apng":
		if n := g.stillFrame(info); n > 0 {
			img, err = frameAt(src, info, n)
		} else {
			img, err = decodePNG(ctx, src, scale) // the default image
		}
	case "image/gif":
		if n := g.stillFrame(info); n > 0 {
			img, err = frameAt(src, info, n)
		} else {
			img, err = gif.Decode(bufio.NewReader(src))
		}
	case "image/webp":
		if info.frames > 1 {
			img, err = frameAt(src, info, g.stillFrame(info)) // libwebp, in WebAssembly
		} else {
			img, err = webp.Decode(bufio.NewReader(src))
		}
	case "image/heic":
		img, err = heic.Decode(bufio.NewReader(src)) // libheif and libde265 in WebAssembly (wazero)
	case "image/avif":
		img, err = avif.Decode(bufio.NewReader(src)) // libavif and dav1d in WebAssembly (wazero)
	case "video/mp4", "video/quicktime", "video/webm", "video/x-matroska":
		img, err = g.videoFrame(ctx, src, info, scale)
		if err != nil {
			return nil, 0, avError(ctx, err)
		}
		return img, 1, nil
	case "image/bmp":
		img, err = bmp.Decode(bufio.NewReader(src))
	case "image/tiff":
		img, err = tiff.Decode(src) // tiff wants random access itself
	default:
		return nil, 0, fmt.Errorf("%s: %w", info.format, ErrUnsupported)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("decode %s: %v: %w", info.format, err, ErrCorrupt)
	}
	return img, orientation, nil
}

// stillFrame is the frame of an animation a still thumbnail shows.
func (g *Generator) stillFrame(info imageInfo) int {
	return int(math.Round(g.cfg.StillFrame * float64(info.frames-1)))
}

// decodeJPEG reads the whole file (it is at most maxSourceBytes) and decodes
// it at 1/scale with jpegscale; image/jpeg decodes what jpegscale does not
// handle, at full size.
func decodeJPEG(ctx context.Context, src io.Reader, size int64, scale int) (image.Image, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(src, data); err != nil {
		return nil, err
	}
	img, err := jpegscale.Decode(ctx, data, scale)
	if errors.Is(err, jpegscale.ErrUnsupported) {
		return jpeg.Decode(bytes.NewReader(data))
	}
	return img, err
}

// decodePNG decodes row by row, shrinking by scale as the rows come;
// image/png decodes the interlaced files pngscale does not, at full size.
func decodePNG(ctx context.Context, src io.ReadSeeker, scale int) (image.Image, error) {
	img, err := pngscale.Decode(ctx, src, scale)
	if !errors.Is(err, pngscale.ErrUnsupported) {
		return img, err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return png.Decode(bufio.NewReader(src))
}

// composeGIF draws each frame of g onto a canvas the size of the logical
// screen, honouring disposal, and calls fn with the canvas after each frame
// until fn returns false.
func composeGIF(g *gif.GIF, fn func(frame) bool) error {
	bounds := image.Rect(0, 0, g.Config.Width, g.Config.Height)
	canvas := image.NewNRGBA(bounds)
	var saved *image.NRGBA
	for i, m := range g.Image {
		disposal := byte(0)
		if i < len(g.Disposal) {
			disposal = g.Disposal[i]
		}
		if disposal == gif.DisposalPrevious {
			saved = imaging.Clone(canvas)
		}
		draw.Draw(canvas, m.Bounds(), m, m.Bounds().Min, draw.Over)
		if !fn(frame{index: i, canvas: canvas, delayMs: 10 * g.Delay[i], palette: m.Palette}) {
			return nil
		}
		switch disposal {
		case gif.DisposalBackground:
			draw.Draw(canvas, m.Bounds(), image.Transparent, image.Point{}, draw.Src)
		case gif.DisposalPrevious:
			canvas = saved
		}
	}
	return nil
}

// orient applies an EXIF orientation (1-8) so the image shows upright.
func orient(img image.Image, o int) image.Image {
	switch o {
	case 2:
		return imaging.FlipH(img)
	case 3:
		return imaging.Rotate180(img)
	case 4:
		return imaging.FlipV(img)
	case 5:
		return imaging.Transpose(img)
	case 6:
		return imaging.Rotate270(img)
	case 7:
		return imaging.Transverse(img)
	case 8:
		return imaging.Rotate90(img)
	}
	return img
}

// exifOrientation finds tag 0x0112 in IFD0 of an APP1 "Exif" payload.
func exifOrientation(seg []byte) int {
	if len(seg) < 14 || string(seg[:6]) != "Exif\x00\x00" {
		return 0
	}
	tiffData := seg[6:]
	var order binary.ByteOrder
	switch string(tiffData[:2]) {
	case "II":
		order = binary.LittleEndian
	case "MM":
		order = binary.BigEndian
	default:
		return 0
	}
	ifd := int(order.Uint32(tiffData[4:8]))
	if ifd < 8 || ifd+2 > len(tiffData) {
		return 0
	}
	n := int(order.Uint16(tiffData[ifd:]))
	for i := 0; i < n; i++ {
		e := ifd + 2 + 12*i
		if e+12 > len(tiffData) {
			return 0
		}
		if order.Uint16(tiffData[e:]) == 0x0112 {
			if o := int(order.Uint16(tiffData[e+8:])); o >= 1 && o <= 8 {
				return o
			}
			return 0
		}
	}
	return 0
}
