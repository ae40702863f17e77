package thumbnails

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"io"

	"github.com/disintegration/imaging"
	gwebp "github.com/gen2brain/webp"
)

// frame is one frame of an animation as it shows: the canvas after it was
// composed (reused for the next frame: keep a copy, not it), its delay, and
// for a GIF the frame's palette, which a GIF thumbnail keeps.
type frame struct {
	index   int
	canvas  *image.NRGBA
	delayMs int
	palette color.Palette
}

// eachFrame decodes the frames of an animated original (GIF, APNG, animated
// WebP), at most info.frames of them, and calls fn with each until it
// returns false. It returns how the animation loops, as image/gif counts:
// 0 forever, -1 once.
func eachFrame(src io.Reader, info imageInfo, fn func(frame) bool) (loops int, err error) {
	switch info.format {
	case "image/gif":
		all, err := gif.DecodeAll(bufio.NewReader(src))
		if err != nil {
			return 0, err
		}
		return all.LoopCount, composeGIF(all, fn)
	case "image/apng":
		return 0, composeAPNG(bufio.NewReader(src), info.frames, fn)
	case "image/webp":
		// libwebp's animation decoder composes the frames (blending,
		// disposal) itself and hands back every canvas at once.
		all, err := gwebp.DecodeAll(src)
		if err != nil {
			return 0, err
		}
		for i, m := range all.Image {
			if int64(i) >= info.frames || !fn(frame{index: i, canvas: toNRGBA(m), delayMs: all.Delay[i]}) {
				break
			}
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%s has no frames: %w", info.format, ErrUnsupported)
}

// frameAt returns frame n of an animation as it shows.
func frameAt(src io.Reader, info imageInfo, n int) (image.Image, error) {
	var img image.Image
	_, err := eachFrame(src, info, func(f frame) bool {
		if f.index == n {
			img = imaging.Clone(f.canvas)
			return false
		}
		return true
	})
	if err == nil && img == nil {
		err = fmt.Errorf("frame %d not found: %w", n, ErrCorrupt)
	}
	return img, err
}

// animated makes an animated thumbnail of every frame of src, resized for
// spec, with the original timing: a GIF (each frame quantised to its
// original palette, or Plan 9's for sources without one) and, where spec
// allows WebP, an animated WebP, answering whichever is smaller.
func (g *Generator) animated(ctx context.Context, src io.Reader, info imageInfo, spec Spec) (*Thumbnail, error) {
	out := &gif.GIF{}
	var wp *webpAnimation
	if spec.WebP {
		wp = &webpAnimation{quality: g.cfg.WebPQuality}
	}
	var failed error
	loops, err := eachFrame(src, info, func(f frame) bool {
		if failed = ctx.Err(); failed != nil {
			return false
		}
		var small *image.NRGBA
		if small, failed = resize(f.canvas, spec); failed != nil {
			return false
		}
		pal := f.palette
		if len(pal) == 0 {
			pal = palette.Plan9
		}
		p := image.NewPaletted(small.Rect, pal)
		draw.FloydSteinberg.Draw(p, p.Rect, small, image.Point{})
		out.Image = append(out.Image, p)
		out.Delay = append(out.Delay, (f.delayMs+5)/10)
		out.Disposal = append(out.Disposal, gif.DisposalNone)
		if wp != nil {
			failed = wp.add(small, f.delayMs)
		}
		return failed == nil
	})
	if err != nil {
		return nil, fmt.Errorf("decode %s: %v: %w", info.format, err, ErrCorrupt)
	}
	if failed != nil {
		return nil, failed
	}
	if len(out.Image) == 0 {
		return nil, fmt.Errorf("animation without frames: %w", ErrCorrupt)
	}
	out.LoopCount = loops
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, out); err != nil {
		return nil, fmt.Errorf("encode gif: %w", err)
	}
	b := out.Image[0].Rect
	th := &Thumbnail{Data: buf.Bytes(), ContentType: "image/gif", Width: b.Dx(), Height: b.Dy(), Animated: true}
	if wp != nil {
		data, err := wp.encode(loops)
		if err != nil {
			return nil, err
		}
		if len(data) < len(th.Data) {
			th.Data, th.ContentType = data, "image/webp"
		}
	}
	return th, nil
}

// toNRGBA is m as the resize and encoders want it, converted only if need be.
func toNRGBA(m image.Image) *image.NRGBA {
	if n, ok := m.(*image.NRGBA); ok {
		return n
	}
	return imaging.Clone(m)
}
