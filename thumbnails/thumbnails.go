// Package thumbnails owns all image work: sniffing the format from the bytes,
// reading dimensions and frame counts before decoding, enforcing pixel
// limits, scaling and cropping, and encoding. An io.ReadSeeker goes in, bytes
// come out. It imports only config from this module and does not log.
package thumbnails

import (
	"bytes"
	"cmp"
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

// Result is the outcome for one Spec of GenerateAll: a thumbnail, or
// ErrUseOriginal when the original already fits that spec.
type Result struct {
	Thumbnail *Thumbnail
	Err       error
}

// Generate makes a thumbnail of src (size bytes long) for spec. The format is
// sniffed from the bytes; limits are checked from the headers before anything
// is decoded. A panic inside a decoder fails this call only, as ErrCorrupt.
func (g *Generator) Generate(ctx context.Context, src io.ReadSeeker, size int64, spec Spec) (*Thumbnail, error) {
	res, err := g.GenerateAll(ctx, src, size, []Spec{spec})
	if err != nil {
		return nil, err
	}
	return res[0].Thumbnail, res[0].Err
}

// GenerateAll makes a thumbnail of src for each spec from a single decode, as
// after an upload, when every configured size is wanted. A problem with the
// source itself (unsupported, over a limit, malformed) is the returned error;
// results hold one entry per spec.
func (g *Generator) GenerateAll(ctx context.Context, src io.ReadSeeker, size int64, specs []Spec) (results []Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			results, err = nil, fmt.Errorf("decoder panicked: %v: %w", v, ErrCorrupt)
		}
	}()
	if g.cfg.MaxSourceBytes > 0 && size > g.cfg.MaxSourceBytes {
		return nil, fmt.Errorf("%d bytes, limit %d: %w", size, g.cfg.MaxSourceBytes, ErrTooLarge)
	}
	// Decoders take no context; one that reads gives up at its next read.
	src = ctxReader{ctx: ctx, r: src}
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
	results = make([]Result, len(specs))
	var still image.Image // decoded on first need, then shared by every spec
	for i, spec := range specs {
		if fitsEitherWay(info, spec) {
			results[i].Err = ErrUseOriginal // known from the header: no decoding
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var th *Thumbnail
		if g.animates(info, size, spec) {
			if _, err := src.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			th, err = g.animatedGIF(ctx, src, spec)
		} else {
			if still == nil {
				if _, err := src.Seek(0, io.SeekStart); err != nil {
					return nil, err
				}
				if still, err = g.decodeStill(src, info); err != nil {
					return nil, cmp.Or(ctx.Err(), err) // cancelled, not corrupt
				}
				// One box pre-shrink that every spec can start from, so a batch
				// of sizes pays for the full-resolution pass once.
				still = preShrink(still, largestRatio(still.Bounds(), specs))
			}
			var out *image.NRGBA
			if out, err = resize(still, spec); err == nil {
				th, err = g.encodeStill(out)
			}
		}
		switch {
		case errors.Is(err, ErrUseOriginal):
			results[i].Err = err
		case err != nil:
			return nil, cmp.Or(ctx.Err(), err)
		default:
			results[i].Thumbnail = th
		}
	}
	return results, nil
}

// largestRatio is the largest output-to-original size ratio among specs: the
// most any of them needs from the original.
func largestRatio(b image.Rectangle, specs []Spec) float64 {
	r := 0.0
	for _, spec := range specs {
		fw, fh := float64(spec.Width)/float64(b.Dx()), float64(spec.Height)/float64(b.Dy())
		r = max(r, fw, fh)
	}
	return r
}

// animates reports whether spec gets an animated thumbnail of this source.
func (g *Generator) animates(info imageInfo, size int64, spec Spec) bool {
	return spec.Animated && g.cfg.AllowAnimated && info.format == "image/gif" && info.frames > 1 &&
		(g.cfg.MaxAnimateSizeBytes == 0 || size <= g.cfg.MaxAnimateSizeBytes)
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
		// Opaque NRGBA pixels are RGBA pixels; image/jpeg has a fast path for
		// *image.RGBA and a slow per-pixel one for everything else.
		rgba := &image.RGBA{Pix: img.Pix, Stride: img.Stride, Rect: img.Rect}
		if err := jpeg.Encode(&buf, rgba, &jpeg.Options{Quality: g.cfg.JPEGQuality}); err != nil {
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

// ctxReader fails reads once ctx is done, so a decode stops soon after its
// work is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.ReadSeeker
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (c ctxReader) Seek(offset int64, whence int) (int64, error) { return c.r.Seek(offset, whence) }
