package thumbnails

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"io"
	"strings"
)

// Video and audio are decoded by an AV, which thumbnails/ffmpeg implements by
// running ffmpeg as a contained subprocess; without one they are not
// thumbnailed (ErrUnsupported). This package sniffs their containers and reads
// a video's frame size from its header first, so the pixel limits apply
// before anything decodes it, and draws an audio's waveform itself.

// AV decodes what Go does not: a video's frame, an audio's samples. Its
// errors about the input wrap ErrCorrupt.
type AV interface {
	// Frame writes input to a decoder of format (a video/* type) and
	// returns a PNG of its first frame, at most maxBytes long.
	Frame(ctx context.Context, format string, input func(io.Writer) error, maxBytes int64) ([]byte, error)
	// Samples decodes the first maxSeconds of an audio input of format
	// into mono 16-bit samples at rate per second, handed to fn as they
	// come.
	Samples(ctx context.Context, format string, input func(io.Writer) error, rate, maxSeconds int, fn func([]int16)) error
}

// Option configures a Generator.
type Option func(*Generator)

// WithAV lets the Generator thumbnail video and audio through av.
func WithAV(av AV) Option { return func(g *Generator) { g.av = av } }

// AVTypes are the video and audio types among types: those an AV decodes.
func AVTypes(types []string) []string {
	var out []string
	for _, t := range types {
		if isVideo(t) || isAudio(t) {
			out = append(out, t)
		}
	}
	return out
}

func isVideo(format string) bool { return strings.HasPrefix(format, "video/") }
func isAudio(format string) bool { return strings.HasPrefix(format, "audio/") }

// sniffAV names a video or audio container from its first bytes, or "".
// MP4 and QuickTime are named by bmffBrand.
func sniffAV(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x1a\x45\xdf\xa3")):
		if bytes.Contains(b, []byte("webm")) {
			return "video/webm"
		}
		return "video/x-matroska"
	case bytes.HasPrefix(b, []byte("OggS")):
		return "audio/ogg"
	case len(b) >= 12 && bytes.Equal(b[0:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WAVE")):
		return "audio/wav"
	case bytes.HasPrefix(b, []byte("fLaC")):
		return "audio/flac"
	case bytes.HasPrefix(b, []byte("ID3")), mpegAudioFrame(b):
		return "audio/mpeg"
	case len(b) >= 8 && (string(b[4:8]) == "moov" || string(b[4:8]) == "wide" || string(b[4:8]) == "mdat"):
		return "video/quicktime" // old QuickTime files have no ftyp
	}
	return ""
}

// mpegAudioFrame reports whether b starts with an MPEG audio frame header
// (frame sync, a layer, a valid bitrate and sample rate).
func mpegAudioFrame(b []byte) bool {
	return len(b) >= 4 && b[0] == 0xff && b[1]&0xe0 == 0xe0 && (b[1]>>1)&3 != 0 &&
		b[2]>>4 != 0 && b[2]>>4 != 15 && (b[2]>>2)&3 != 3
}

// videoInput is how a video is handed to the decoder: MP4 and QuickTime
// with their index first (as inspect read it), others as they are.
func videoInput(src io.ReadSeeker, info imageInfo) func(io.Writer) error {
	if info.mp4 != nil {
		return func(w io.Writer) error { return info.mp4.stream(src, w) }
	}
	return func(w io.Writer) error {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return err
		}
		_, err := io.Copy(w, src)
		return err
	}
}

// videoFrame decodes the first frame of a video into an image, at 1/scale.
func (g *Generator) videoFrame(ctx context.Context, src io.ReadSeeker, info imageInfo, scale int) (image.Image, error) {
	input := videoInput(src, info)
	// A PNG of the frame is at most its RGBA pixels plus a little; the
	// decoder may have turned it (rotation metadata), which keeps the count.
	maxBytes := 4*int64(info.width)*int64(info.height) + 1<<20
	data, err := g.av.Frame(ctx, info.format, input, maxBytes)
	if err != nil {
		return nil, err
	}
	frame, err := inspect(bytes.NewReader(data))
	if err != nil || frame.format != "image/png" || int64(frame.width)*int64(frame.height) > int64(info.width)*int64(info.height) {
		return nil, fmt.Errorf("the video decoder wrote an unexpected image (%v)", err)
	}
	return decodePNG(ctx, bytes.NewReader(data), scale)
}

// Waveforms: the first maxAudioSeconds of the audio at waveformRate samples
// a second, the loudest sample of each 10 ms kept, drawn as bars scaled to
// the loudest, mirrored about the middle, on a transparent background.
const (
	waveformRate     = 8000
	waveformBucket   = waveformRate / 100
	waveformBarWidth = 3
	waveformGap      = 1
)

var waveformColor = color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff}

// waveform draws the waveform of an audio source in a w x h image.
func (g *Generator) waveform(ctx context.Context, src io.ReadSeeker, info imageInfo, w, h int) (*image.NRGBA, error) {
	input := func(out io.Writer) error {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return err
		}
		_, err := io.Copy(out, src)
		return err
	}
	var peaks []uint16
	var peak uint16
	n := 0
	err := g.av.Samples(ctx, info.format, input, waveformRate, g.cfg.FFmpeg.MaxAudioSeconds, func(samples []int16) {
		for _, s := range samples {
			a := uint16(s)
			if s < 0 {
				a = uint16(-int32(s))
			}
			peak = max(peak, a)
			if n++; n == waveformBucket {
				peaks, peak, n = append(peaks, peak), 0, 0
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if n > 0 {
		peaks = append(peaks, peak)
	}
	if len(peaks) == 0 {
		return nil, fmt.Errorf("audio without samples: %w", ErrCorrupt)
	}
	return drawWaveform(peaks, w, h), nil
}

// drawWaveform draws peaks as bars across a w x h image.
func drawWaveform(peaks []uint16, w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	bars := max(1, (w+waveformGap)/(waveformBarWidth+waveformGap))
	heights := make([]uint16, bars)
	var loudest uint16
	for i := range bars {
		lo, hi := i*len(peaks)/bars, (i+1)*len(peaks)/bars
		hi = max(hi, lo+1)
		for _, p := range peaks[min(lo, len(peaks)-1):min(hi, len(peaks))] {
			heights[i] = max(heights[i], p)
		}
		loudest = max(loudest, heights[i])
	}
	fill := image.NewUniform(waveformColor)
	mid := h / 2
	for i, v := range heights {
		half := 0
		if loudest > 0 {
			half = int(float64(v) / float64(loudest) * float64(h-2) / 2)
		}
		half = max(half, 1) // silence still shows a line
		x := i * (waveformBarWidth + waveformGap)
		draw.Draw(img, image.Rect(x, mid-half, min(x+waveformBarWidth, w), mid+half), fill, image.Point{}, draw.Src)
	}
	return img
}

// avError wraps what the decoder said about an input as ErrCorrupt, unless
// the work was cancelled.
func avError(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%v: %w", err, ErrCorrupt)
}
