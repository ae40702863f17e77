// Package thumbnails owns all image work: sniffing the format from the bytes,
// reading dimensions and frame counts before decoding, enforcing pixel
// limits, composing animations, scaling and cropping, and encoding (JPEG,
// PNG, GIF, WebP). An io.ReadSeeker goes in, bytes come out. Video frames and
// audio samples come from an injected AV (thumbnails/ffmpeg); the containers
// are read here first. It imports only config from this module and does not
// log.
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

// Spec is what a thumbnail is made for: a box and a method, whether an
// animated result is wanted, and whether it may be WebP (the client accepts
// it and the config prefers it).
type Spec struct {
	Width, Height int
	Method        string // config.MethodScale or config.MethodCrop
	Animated      bool
	WebP          bool
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
	av      AV // nil: video and audio are not thumbnailed
}

// New returns a Generator for cfg.
func New(cfg config.Thumbnails, opts ...Option) *Generator {
	allowed := make(map[string]bool, len(cfg.Types))
	for _, t := range cfg.Types {
		allowed[t] = true
	}
	g := &Generator{
		cfg: cfg, allowed: allowed,
		memory: semaphore.NewWeighted(cfg.DecodeMemoryBytes),
		slots:  make(chan struct{}, max(1, cfg.DecodeConcurrency)),
	}
	for _, o := range opts {
		o(g)
	}
	return g
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
func (g *Generator) GenerateAll(ctx context.Context, src io.ReadSeeker, size int64, specs []Spec) ([]Result, error) {
	s, err := g.Open(ctx, src, size, specs)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	results := make([]Result, len(specs))
	for i, spec := range specs {
		th, err := s.Make(ctx, spec)
		switch {
		case errors.Is(err, ErrUseOriginal):
			results[i].Err = ErrUseOriginal
		case err != nil:
			return nil, err
		default:
			results[i].Thumbnail = th
		}
	}
	return results, nil
}

// Source is an original opened for thumbnailing: its header read and checked,
// the memory of its decode admitted, and its still decoded at most once, at
// the scale the largest of its specs needs, so that thumbnails can be made
// from it one at a time, in whatever order they are wanted. It is not safe
// for concurrent use. Close gives back what it holds.
type Source struct {
	g        *Generator
	src      io.ReadSeeker
	info     imageInfo
	size     int64
	specs    []Spec
	animated map[Spec]bool
	scale    int         // JPEG: decoded at 1/scale
	needed   bool        // some spec needs the still
	release  func()      // the admitted memory; nil when nothing is decoded
	still    image.Image // decoded on first need, pre-shrunk, upright
}

// Open inspects src (size bytes long), checks its type and limits, and
// admits the memory its decode for specs needs, waiting for a decode slot and
// for the memory if others hold them, or for ctx. specs are every size the
// source may be asked for; nothing is decoded yet.
func (g *Generator) Open(ctx context.Context, src io.ReadSeeker, size int64, specs []Spec) (s *Source, err error) {
	defer func() {
		if v := recover(); v != nil {
			s, err = nil, fmt.Errorf("decoder panicked: %v: %w", v, ErrCorrupt)
		}
	}()
	info, err := g.inspectSource(ctxReader{ctx: ctx, r: src}, size)
	if err != nil {
		return nil, err
	}
	s = &Source{g: g, src: src, info: info, size: size, specs: specs, animated: map[Spec]bool{}, scale: 1}
	if cost := s.plan(); cost > 0 {
		if s.release, err = g.admit(ctx, cost); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close releases the memory admitted for the source's decode.
func (s *Source) Close() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
	s.still = nil
}

// plan sorts the specs into what they need, picks the decode scale, and
// estimates the memory.
func (s *Source) plan() int64 {
	needStill, needAnim := false, false
	var still []Spec
	for _, spec := range s.specs {
		switch {
		case fitsEitherWay(s.info, spec): // known from the header: no decoding
		case s.g.animates(s.info, s.size, spec):
			s.animated[spec], needAnim = true, true
		default:
			needStill = true
			still = append(still, spec)
		}
	}
	var cost int64
	s.needed = needStill
	if needStill {
		b := oriented(image.Rect(0, 0, s.info.width, s.info.height), s.info.layout.orientation)
		switch {
		case s.info.format == "image/jpeg":
			s.scale = jpegScale(b, still)
		case s.info.format == "image/png", s.info.format == "image/apng" && s.g.cfg.StillFrame == 0, isVideo(s.info.format):
			if !s.info.layout.interlaced {
				s.scale = shrinkFactor(largestRatio(b, still))
			}
		}
		allFrames := s.info.frames > 1 && s.g.cfg.StillFrame > 0
		cost += decodeCost(s.info, s.size, s.scale, allFrames)
	}
	if needAnim {
		cost += decodeCost(s.info, s.size, 1, true)
	}
	return cost
}

// Make makes spec's thumbnail, or returns ErrUseOriginal when the original
// already fits it. spec should be one of those the source was opened for: a
// larger one gets a thumbnail from the smaller decode. A panic inside a
// decoder is ErrCorrupt.
func (s *Source) Make(ctx context.Context, spec Spec) (th *Thumbnail, err error) {
	defer func() {
		if v := recover(); v != nil {
			th, err = nil, fmt.Errorf("decoder panicked: %v: %w", v, ErrCorrupt)
		}
		if err != nil && !errors.Is(err, ErrUseOriginal) {
			err = cmp.Or(ctx.Err(), err) // cancelled, not corrupt
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if fitsEitherWay(s.info, spec) {
		return nil, ErrUseOriginal
	}
	// Decoders take no context; one that reads gives up at its next read.
	src := ctxReader{ctx: ctx, r: s.src}
	if s.animated[spec] {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		th, err := s.g.animated(ctx, src, s.info, spec)
		if err != nil {
			return nil, err
		}
		if int64(len(th.Data)) < s.size {
			return th, nil
		}
		// Larger than the original: serve the original, which animates too.
		return nil, ErrUseOriginal
	}
	if s.still == nil {
		if err := s.decode(ctx, src); err != nil {
			return nil, err
		}
	}
	out, err := resize(s.still, spec)
	if errors.Is(err, ErrUseOriginal) && (isVideo(s.info.format) || isAudio(s.info.format)) {
		out, err = toNRGBA(s.still), nil // the frame fits: a picture of it as it is
	}
	if err != nil {
		return nil, err
	}
	return s.g.encodeStill(out, spec.WebP)
}

// Decode decodes the still now, if any spec needs it, rather than in the
// first Make that does: the caller can then pick which size to make first
// once the decode is done. A panic inside a decoder is ErrCorrupt.
func (s *Source) Decode(ctx context.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("decoder panicked: %v: %w", v, ErrCorrupt)
		}
		if err != nil {
			err = cmp.Or(ctx.Err(), err) // cancelled, not corrupt
		}
	}()
	if !s.needed || s.still != nil {
		return nil
	}
	return s.decode(ctx, ctxReader{ctx: ctx, r: s.src})
}

// decode decodes the still once: at the planned scale, then box pre-shrunk
// as far as every spec allows, then turned upright, which on the small image
// costs next to nothing.
func (s *Source) decode(ctx context.Context, src io.ReadSeeker) error {
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if isAudio(s.info.format) {
		// The waveform is drawn at the largest box asked for; each size is
		// then made of it as of any image.
		w, h := 0, 0
		for _, spec := range s.specs {
			w, h = max(w, spec.Width), max(h, spec.Height)
		}
		img, err := s.g.waveform(ctx, src, s.info, w, h)
		if err != nil {
			return avError(ctx, err)
		}
		s.still = img
		return nil
	}
	img, orientation, err := s.g.decodeStill(ctx, src, s.info, s.size, s.scale)
	if err != nil {
		return err
	}
	s.still = orient(preShrink(img, largestRatio(oriented(img.Bounds(), orientation), s.specs)), orientation)
	return nil
}

// shrinkFactor is the integer factor a box shrink may reduce an image by
// when the final output is ratio of its size: one that leaves the final
// filter at least a 2x reduction, which keeps its quality.
func shrinkFactor(ratio float64) int {
	if ratio <= 0 || ratio >= 0.5 {
		return 1
	}
	return max(1, int(1/(2*ratio)))
}

// jpegScale is the largest reduction (1/8, 1/4, 1/2 or none) at which a JPEG
// of bounds b, as shown, still covers every spec: the reduced decode must
// stay at least as large as what the final resize makes of it.
func jpegScale(b image.Rectangle, specs []Spec) int {
	need := largestRatio(b, specs)
	if need <= 0 {
		return 1
	}
	for _, scale := range []int{8, 4, 2} {
		if need*float64(scale) <= 1 {
			return scale
		}
	}
	return 1
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
	if (isVideo(info.format) || isAudio(info.format)) && g.av == nil {
		return imageInfo{}, fmt.Errorf("%s: ffmpeg is not available: %w", info.format, ErrUnsupported)
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
	return spec.Animated && g.cfg.AllowAnimated && info.frames > 1 &&
		(g.cfg.MaxAnimateSizeBytes == 0 || size <= g.cfg.MaxAnimateSizeBytes) &&
		(g.cfg.MaxAnimatePixels == 0 || info.frames*int64(info.width)*int64(info.height) <= g.cfg.MaxAnimatePixels)
}

// fitsEitherWay reports whether the original fits the box whichever way an
// EXIF orientation turns it.
func fitsEitherWay(info imageInfo, spec Spec) bool {
	if isVideo(info.format) || isAudio(info.format) {
		return false // the original is no picture
	}
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

// encodeStill writes WebP where allowed, else JPEG for opaque images and PNG
// where there is transparency.
func (g *Generator) encodeStill(img *image.NRGBA, allowWebP bool) (*Thumbnail, error) {
	var buf bytes.Buffer
	th := &Thumbnail{Width: img.Rect.Dx(), Height: img.Rect.Dy()}
	if allowWebP {
		data, err := encodeWebP(img, g.cfg.WebPQuality)
		if err != nil {
			return nil, err
		}
		th.ContentType, th.Data = "image/webp", data
		return th, nil
	}
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
