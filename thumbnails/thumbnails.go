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
	"golang.org/x/sync/semaphore"
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

// Generator makes thumbnails within the limits of its config. It admits at
// most thumbnails.decodeConcurrency decodes at once, and only as many as fit
// in thumbnails.decodeMemoryBytes by their estimated cost, whoever asks.
type Generator struct {
	cfg     config.Thumbnails
	allowed map[string]bool
	memory  *semaphore.Weighted
	slots   chan struct{}
}

// New returns a Generator for cfg.
func New(cfg config.Thumbnails) *Generator {
	allowed := make(map[string]bool, len(cfg.Types))
	for _, t := range cfg.Types {
		allowed[t] = true
	}
	return &Generator{
		cfg: cfg, allowed: allowed,
		memory: semaphore.NewWeighted(cfg.DecodeMemoryBytes),
		slots:  make(chan struct{}, max(1, cfg.DecodeConcurrency)),
	}
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
// results hold one entry per spec. It waits for a decode slot and for its
// decode's memory to be free, or for ctx.
func (g *Generator) GenerateAll(ctx context.Context, src io.ReadSeeker, size int64, specs []Spec) (results []Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			results, err = nil, fmt.Errorf("decoder panicked: %v: %w", v, ErrCorrupt)
		}
	}()
	// Decoders take no context; one that reads gives up at its next read.
	src = ctxReader{ctx: ctx, r: src}
	info, err := g.inspectSource(src, size)
	if err != nil {
		return nil, err
	}
	j := g.newJob(info, size, specs)
	if j.cost > 0 {
		release, err := g.admit(ctx, j.cost)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	results = make([]Result, len(specs))
	for i, spec := range specs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		th, err := j.run(ctx, g, src, spec)
		switch {
		case errors.Is(err, ErrUseOriginal):
			results[i].Err = ErrUseOriginal
		case err != nil:
			return nil, cmp.Or(ctx.Err(), err) // cancelled, not corrupt
		default:
			results[i].Thumbnail = th
		}
	}
	return results, nil
}

// inspectSource checks the source's size, sniffs its type and reads its
// header, and refuses what the config does not thumbnail or limits forbid.
func (g *Generator) inspectSource(src io.ReadSeeker, size int64) (imageInfo, error) {
	if g.cfg.MaxSourceBytes > 0 && size > g.cfg.MaxSourceBytes {
		return imageInfo{}, fmt.Errorf("%d bytes, limit %d: %w", size, g.cfg.MaxSourceBytes, ErrTooLarge)
	}
	info, err := inspect(src)
	if err != nil {
		return imageInfo{}, err
	}
	if !g.allowed[info.format] {
		return imageInfo{}, fmt.Errorf("%s: %w", info.format, ErrUnsupported)
	}
	return info, g.checkLimits(info)
}

// admit waits for a decode slot and cost bytes of the memory budget. An image
// whose decode alone needs more than the budget is too large to thumbnail.
func (g *Generator) admit(ctx context.Context, cost int64) (release func(), err error) {
	if cost > g.cfg.DecodeMemoryBytes {
		return nil, fmt.Errorf("decoding needs about %d MiB, thumbnails.decodeMemoryBytes is %d MiB: %w",
			cost>>20, g.cfg.DecodeMemoryBytes>>20, ErrTooManyPixels)
	}
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := g.memory.Acquire(ctx, cost); err != nil {
		<-g.slots
		return nil, err
	}
	return func() { g.memory.Release(cost); <-g.slots }, nil
}

// job is one source and the work its specs need: a still decoded once and
// shared, an animation, or nothing (the original fits).
type job struct {
	info     imageInfo
	size     int64
	specs    []Spec
	animated map[Spec]bool
	cost     int64       // bytes admitted for the decodes ahead
	still    image.Image // decoded on first need, pre-shrunk, upright
}

// newJob sorts specs into what they need and estimates the memory.
func (g *Generator) newJob(info imageInfo, size int64, specs []Spec) *job {
	j := &job{info: info, size: size, specs: specs, animated: map[Spec]bool{}}
	needStill, needAnim := false, false
	for _, spec := range specs {
		switch {
		case fitsEitherWay(info, spec): // known from the header: no decoding
		case g.animates(info, size, spec):
			j.animated[spec], needAnim = true, true
		default:
			needStill = true
		}
	}
	if needStill {
		allFrames := info.format == "image/gif" && g.cfg.StillFrame > 0 && info.frames > 1
		j.cost += decodeCost(info, allFrames)
	}
	if needAnim {
		j.cost += decodeCost(info, true)
	}
	return j
}

// run makes spec's thumbnail.
func (j *job) run(ctx context.Context, g *Generator, src io.ReadSeeker, spec Spec) (*Thumbnail, error) {
	if fitsEitherWay(j.info, spec) {
		return nil, ErrUseOriginal
	}
	if j.animated[spec] {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		th, err := g.animatedGIF(ctx, src, spec)
		if err != nil {
			return nil, err
		}
		if int64(len(th.Data)) < j.size {
			return th, nil
		}
		// Larger than the original: serve the original, which animates too.
		return nil, ErrUseOriginal
	}
	if j.still == nil {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		img, orientation, err := g.decodeStill(src, j.info)
		if err != nil {
			return nil, err
		}
		// One box pre-shrink that every spec can start from, so a batch of
		// sizes pays for the full-resolution pass once; then turned upright,
		// which on the small image costs next to nothing.
		j.still = orient(preShrink(img, largestRatio(oriented(img.Bounds(), orientation), j.specs)), orientation)
	}
	out, err := resize(j.still, spec)
	if err != nil {
		return nil, err
	}
	return g.encodeStill(out)
}

// oriented is b as it shows after an EXIF orientation: 5-8 swap the sides.
func oriented(b image.Rectangle, orientation int) image.Rectangle {
	if orientation >= 5 {
		return image.Rect(0, 0, b.Dy(), b.Dx())
	}
	return b
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

// animates reports whether spec gets an animated thumbnail of this source:
// one asked for, allowed, and within maxAnimateSizeBytes and
// maxAnimatePixels, which bound an animation's work (every frame composed,
// resized and quantised). Past them a still is made instead.
func (g *Generator) animates(info imageInfo, size int64, spec Spec) bool {
	return spec.Animated && g.cfg.AllowAnimated && info.format == "image/gif" && info.frames > 1 &&
		(g.cfg.MaxAnimateSizeBytes == 0 || size <= g.cfg.MaxAnimateSizeBytes) &&
		(g.cfg.MaxAnimatePixels == 0 || info.frames*int64(info.width)*int64(info.height) <= g.cfg.MaxAnimatePixels)
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
