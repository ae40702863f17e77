// Package thumbnails owns all image work: sniffing the format from the bytes,
// reading dimensions and frame counts before decoding, enforcing pixel
// limits, scaling and cropping, and encoding. An io.ReadSeeker goes in, bytes
// come out. It imports only config from this module and does not log.
package thumbnails

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"

	"github.com/mediarepo/mediarepo/config"
)

// Sentinel errors. The API maps ErrTooManyPixels and ErrTooLarge to 413,
// ErrUnsupported and ErrCorrupt to 400 M_UNKNOWN.
var (
	ErrUnsupported   = errors.New("not an image type that is thumbnailed")
	ErrCorrupt       = errors.New("malformed image")
	ErrTooManyPixels = errors.New("image has too many pixels to thumbnail")
	ErrTooLarge      = errors.New("image file is too large to thumbnail")
	// ErrUseOriginal: the original already fits the requested size; serve it,
	// since thumbnails never upscale.
	ErrUseOriginal = errors.New("original is no larger than the requested size")
)

// Spec is what a thumbnail is made for: a box and a method, and whether an
// animated result is wanted.
type Spec struct {
	Width, Height int
	Method        string // config.MethodScale or config.MethodCrop
	Animated      bool
}

// Thumbnail is a generated image.
type Thumbnail struct {
	Data          []byte
	ContentType   string
	Width, Height int
	Animated      bool
}

// Generator makes thumbnails within the limits of its config.
type Generator struct {
	cfg     config.Thumbnails
	allowed map[string]bool
}

// New returns a Generator for cfg.
func New(cfg config.Thumbnails) *Generator {
	allowed := make(map[string]bool, len(cfg.Types))
	for _, t := range cfg.Types {
		allowed[t] = true
	}
	return &Generator{cfg: cfg, allowed: allowed}
}

// Generate makes a thumbnail of src (size bytes long) for spec. The format is
// sniffed from the bytes; limits are checked from the headers before anything
// is decoded. A panic inside a decoder fails this call only, as ErrCorrupt.
func (g *Generator) Generate(ctx context.Context, src io.ReadSeeker, size int64, spec Spec) (th *Thumbnail, err error) {
	defer func() {
		if v := recover(); v != nil {
			th, err = nil, fmt.Errorf("decoder panicked: %v: %w", v, ErrCorrupt)
		}
	}()
	if g.cfg.MaxSourceBytes > 0 && size > g.cfg.MaxSourceBytes {
		return nil, fmt.Errorf("%d bytes, limit %d: %w", size, g.cfg.MaxSourceBytes, ErrTooLarge)
	}
	info, err := inspect(src)
	if err != nil {
		return nil, err
	}
	if !g.allowed[info.format] {
		return nil, fmt.Errorf("%s: %w", info.format, ErrUnsupported)
	}
	if err := g.checkLimits(info); err != nil {
		return nil, err
	}
	if fitsEitherWay(info, spec) {
		return nil, ErrUseOriginal // known from the header: skip decoding
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	animate := spec.Animated && g.cfg.AllowAnimated && info.format == "image/gif" && info.frames > 1 &&
		(g.cfg.MaxAnimateSizeBytes == 0 || size <= g.cfg.MaxAnimateSizeBytes)
	if animate {
		return g.animatedGIF(ctx, src, spec)
	}
	img, err := g.decodeStill(src, info)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := resize(img, spec)
	if err != nil {
		return nil, err
	}
	return g.encodeStill(out)
}

// fitsEitherWay reports whether the original fits the box whichever way an
// EXIF orientation turns it.
func fitsEitherWay(info imageInfo, spec Spec) bool {
	w, h := info.width, info.height
	return w <= spec.Width && h <= spec.Height && h <= spec.Width && w <= spec.Height
}

func (g *Generator) checkLimits(info imageInfo) error {
	pixels := int64(info.width) * int64(info.height)
	if pixels > g.cfg.MaxPixels {
		return fmt.Errorf("%dx%d is more than %d pixels: %w", info.width, info.height, g.cfg.MaxPixels, ErrTooManyPixels)
	}
	if info.frames > 1 {
		if info.frames > int64(g.cfg.MaxFrames) {
			return fmt.Errorf("%d frames, limit %d: %w", info.frames, g.cfg.MaxFrames, ErrTooManyPixels)
		}
		if total := info.frames * pixels; total > g.cfg.MaxAnimationPixels || info.framePixels > g.cfg.MaxAnimationPixels {
			return fmt.Errorf("animation of %d frames of %dx%d is over %d pixels: %w",
				info.frames, info.width, info.height, g.cfg.MaxAnimationPixels, ErrTooManyPixels)
		}
	}
	return nil
}

// encodeStill writes JPEG for opaque images and PNG where there is transparency.
func (g *Generator) encodeStill(img *image.NRGBA) (*Thumbnail, error) {
	var buf bytes.Buffer
	th := &Thumbnail{Width: img.Rect.Dx(), Height: img.Rect.Dy()}
	if img.Opaque() {
		th.ContentType = "image/jpeg"
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: g.cfg.JPEGQuality}); err != nil {
			return nil, fmt.Errorf("encode jpeg: %w", err)
		}
	} else {
		th.ContentType = "image/png"
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := enc.Encode(&buf, img); err != nil {
			return nil, fmt.Errorf("encode png: %w", err)
		}
	}
	th.Data = buf.Bytes()
	return th, nil
}
