package thumbnails

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"io"
)

// animatedGIF resizes every frame of an animated GIF and encodes the result
// as a GIF with the original timing. Frames are composed first, so disposal
// and partial frames come out right, then quantised back to each frame's
// palette.
func (g *Generator) animatedGIF(ctx context.Context, src io.Reader, spec Spec) (*Thumbnail, error) {
	all, err := gif.DecodeAll(bufio.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("decode gif: %v: %w", err, ErrCorrupt)
	}
	out := &gif.GIF{LoopCount: all.LoopCount}
	var failed error
	err = composeGIF(all, func(i int, canvas *image.NRGBA) bool {
		if failed = ctx.Err(); failed != nil {
			return false
		}
		small, err := resize(canvas, spec)
		if err != nil {
			failed = err
			return false
		}
		pal := all.Image[i].Palette
		if len(pal) == 0 {
			pal = palette.Plan9
		}
		frame := image.NewPaletted(small.Rect, pal)
		draw.FloydSteinberg.Draw(frame, frame.Rect, small, image.Point{})
		out.Image = append(out.Image, frame)
		out.Delay = append(out.Delay, all.Delay[i])
		out.Disposal = append(out.Disposal, gif.DisposalNone)
		return true
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		return nil, err
	}
	if len(out.Image) == 0 {
		return nil, fmt.Errorf("gif without frames: %w", ErrCorrupt)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, out); err != nil {
		return nil, fmt.Errorf("encode gif: %w", err)
	}
	b := out.Image[0].Rect
	return &Thumbnail{Data: buf.Bytes(), ContentType: "image/gif", Width: b.Dx(), Height: b.Dy(), Animated: true}, nil
}
