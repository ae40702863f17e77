package thumbnails_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
	"github.com/mediarepo/mediarepo/thumbnails/ffmpeg"
)

var avTypes = []string{"video/mp4", "video/quicktime", "video/webm", "audio/mpeg", "audio/ogg", "audio/wav", "audio/flac"}

// avGenerator thumbnails video and audio with the real ffmpeg.
func avGenerator(t testing.TB) *thumbnails.Generator {
	t.Helper()
	cfg := config.Default().Thumbnails
	cfg.Types = append(cfg.Types, avTypes...)
	tool(t, "ffmpeg")
	r, err := ffmpeg.New(cfg.FFmpeg)
	if err != nil {
		t.Fatal(err)
	}
	return thumbnails.New(cfg, thumbnails.WithAV(r))
}

// ffmpegOutput runs ffmpeg to make a test input and returns its bytes.
func ffmpegOutput(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	run(t, dir, "ffmpeg", append(append([]string{"-loglevel", "error", "-y"}, args...), name)...)
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// halvesVideo is 2 s of 320x240 video, red on the left and blue on the right.
const halvesVideo = "color=c=red:s=320x240:r=10:d=2,drawbox=x=160:y=0:w=160:h=240:color=blue:t=fill"

func videoInputs(t testing.TB) map[string][]byte {
	t.Helper()
	lavfi := []string{"-f", "lavfi", "-i", halvesVideo, "-pix_fmt", "yuv420p"}
	return map[string][]byte{
		// ffmpeg writes moov after the media data unless asked: as phones do.
		"mp4, index at the end": ffmpegOutput(t, "v.mp4", append(lavfi, "-c:v", "libx264")...),
		"mp4, index first":      ffmpegOutput(t, "v.mp4", append(lavfi, "-c:v", "libx264", "-movflags", "+faststart")...),
		"quicktime":             ffmpegOutput(t, "v.mov", append(lavfi, "-c:v", "libx264")...),
		"webm":                  ffmpegOutput(t, "v.webm", append(lavfi, "-c:v", "libvpx", "-b:v", "300k")...),
	}
}

func TestVideoStills(t *testing.T) {
	g := avGenerator(t)
	for name, data := range videoInputs(t) {
		t.Run(name, func(t *testing.T) {
			if w, h, err := thumbnails.Dimensions(bytes.NewReader(data)); err != nil || w != 320 || h != 240 {
				t.Fatalf("Dimensions = %dx%d, %v; want 320x240 from the header", w, h, err)
			}
			for _, spec := range []thumbnails.Spec{
				{Width: 96, Height: 96, Method: config.MethodScale},
				{Width: 320, Height: 240, Method: config.MethodScale}, // its own size: still a picture, never the video
				{Width: 32, Height: 32, Method: config.MethodCrop, WebP: true},
			} {
				th, err := generate(t, g, data, spec)
				if err != nil {
					t.Fatalf("%+v: %v", spec, err)
				}
				img := mustDecode(t, th)
				b := img.Bounds()
				wantW, wantH := min(spec.Width, 320), min(spec.Width, 320)*240/320
				if spec.Method == config.MethodCrop {
					wantW, wantH = spec.Width, spec.Height
				}
				if b.Dx() != wantW || b.Dy() != wantH {
					t.Fatalf("%+v: %v, want %dx%d", spec, b, wantW, wantH)
				}
				wantPixels(t, img, map[image.Point]color.Color{
					{b.Dx() / 8, b.Dy() / 2}: color.NRGBA{255, 0, 0, 255}, {b.Dx() * 7 / 8, b.Dy() / 2}: color.NRGBA{0, 0, 255, 255},
				}, 50)
			}
		})
	}
}

// sineThenSilence is 2 s of audio: a 440 Hz tone, then silence.
const sineThenSilence = "aevalsrc=if(lt(t\\,1)\\,0.8*sin(2*PI*440*t)\\,0):s=22050:d=2"

func TestAudioWaveforms(t *testing.T) {
	g := avGenerator(t)
	lavfi := []string{"-f", "lavfi", "-i", sineThenSilence}
	inputs := map[string][]byte{
		"audio/mpeg": ffmpegOutput(t, "a.mp3", append(lavfi, "-c:a", "libmp3lame")...),
		"audio/ogg":  ffmpegOutput(t, "a.ogg", append(lavfi, "-c:a", "libopus", "-ar", "48000")...),
		"audio/wav":  ffmpegOutput(t, "a.wav", lavfi...),
		"audio/flac": ffmpegOutput(t, "a.flac", lavfi...),
	}
	for format, data := range inputs {
		t.Run(format, func(t *testing.T) {
			th, err := generate(t, g, data, thumbnails.Spec{Width: 320, Height: 240, Method: config.MethodScale})
			if err != nil {
				t.Fatal(err)
			}
			if th.ContentType != "image/png" {
				t.Errorf("waveform is %s, want image/png (transparent)", th.ContentType)
			}
			img := mustDecode(t, th)
			if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
				t.Fatalf("waveform %v, want 320x240", b)
			}
			// The tone fills the left half's bars nearly to the edges;
			// the silence leaves the right half a line along the middle.
			bar := func(x, y int) bool {
				for dx := range 4 { // a bar or its gap
					if _, _, _, a := img.At(x+dx, y).RGBA(); a > 0 {
						return true
					}
				}
				return false
			}
			if !bar(80, 30) || !bar(80, 210) {
				t.Error("no bar reaches near the top and bottom in the tone")
			}
			if bar(240, 100) || bar(240, 140) {
				t.Error("a bar stands in the silence")
			}
			if !bar(240, 120) {
				t.Error("no line along the middle in the silence")
			}
		})
	}
}

// failingAV fails the test if it is asked to decode anything.
type failingAV struct{ t testing.TB }

func (a failingAV) Frame(context.Context, string, func(io.Writer) error, int64) ([]byte, error) {
	a.t.Error("the decoder ran")
	return nil, errors.New("no")
}

func (a failingAV) Samples(context.Context, string, func(io.Writer) error, int, int, func([]int16)) error {
	a.t.Error("the decoder ran")
	return errors.New("no")
}

// patchTkhd sets every track header's size in an MP4 to w x h.
func patchTkhd(data []byte, w, h uint32) []byte {
	out := bytes.Clone(data)
	for i := 4; i+4 < len(out); i++ {
		if string(out[i:i+4]) != "tkhd" {
			continue
		}
		body := i + 4
		off := body + 4 + 20 + 8 + 8 + 36
		if out[body] == 1 {
			off += 12
		}
		if string(out[i-4:i]) != "\x00\x00\x00\x5c" && out[body] == 0 { // a real tkhd v0 is 92 bytes
			continue
		}
		binary.BigEndian.PutUint32(out[off:], w<<16)
		binary.BigEndian.PutUint32(out[off+4:], h<<16)
	}
	return out
}

func TestHostileVideoAndAudio(t *testing.T) {
	videos := videoInputs(t)
	mp4 := videos["mp4, index first"]
	webm := videos["webm"]
	// PixelWidth (0xB0) of 1 byte: 0xB0 0x81 <value>; rewrite it as 2^24.
	hugeWebM := bytes.Clone(webm)
	if i := bytes.Index(hugeWebM, []byte{0xb0, 0x82, 0x01, 0x40}); i >= 0 { // 320, two bytes
		copy(hugeWebM[i:], []byte{0xb0, 0x82, 0xff, 0xff}) // 65535
	} else {
		t.Fatal("no PixelWidth 320 in the WebM")
	}
	cfg := config.Default().Thumbnails
	cfg.Types = append(cfg.Types, avTypes...)
	cfg.MaxPixels = 10_000_000 // 65535 x 240 is more
	refusing := thumbnails.New(cfg, thumbnails.WithAV(failingAV{t}))
	for name, data := range map[string][]byte{
		"mp4 of 30000x30000":  patchTkhd(mp4, 30000, 30000),
		"webm 65535 wide":     hugeWebM,
		"mp4 of 50000x50000 ": patchTkhd(videos["mp4, index at the end"], 50000, 50000),
	} {
		t.Run(name+" refused before decoding", func(t *testing.T) {
			if _, err := generate(t, refusing, data, thumbnails.Spec{Width: 96, Height: 96, Method: config.MethodCrop}); !errors.Is(err, thumbnails.ErrTooManyPixels) {
				t.Errorf("got %v, want ErrTooManyPixels", err)
			}
		})
	}
	g := avGenerator(t)
	garbage := append([]byte("OggS"), bytes.Repeat([]byte{0x5a}, 5000)...)
	for name, data := range map[string][]byte{
		"truncated mp4 (index at the end)": videos["mp4, index at the end"][:len(videos["mp4, index at the end"])/2],
		"mp4 with its media data cut":      mp4[:len(mp4)*2/3],
		"webm header only":                 webm[:200],
		"ogg of garbage":                   garbage,
		"wav header only":                  ffmpegOutput(t, "a.wav", "-f", "lavfi", "-i", sineThenSilence)[:44],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := generate(t, g, data, thumbnails.Spec{Width: 96, Height: 96, Method: config.MethodCrop})
			if !errors.Is(err, thumbnails.ErrCorrupt) {
				t.Errorf("got %v, want ErrCorrupt", err)
			}
		})
	}
	t.Run("without ffmpeg", func(t *testing.T) {
		cfg := config.Default().Thumbnails
		cfg.Types = append(cfg.Types, avTypes...)
		if _, err := generate(t, thumbnails.New(cfg), mp4, thumbnails.Spec{Width: 96, Height: 96}); !errors.Is(err, thumbnails.ErrUnsupported) {
			t.Errorf("got %v, want ErrUnsupported", err)
		}
	})
	t.Run("not in types", func(t *testing.T) {
		r, _ := ffmpeg.New(config.Default().Thumbnails.FFmpeg)
		g := thumbnails.New(config.Default().Thumbnails, thumbnails.WithAV(r))
		if _, err := generate(t, g, mp4, thumbnails.Spec{Width: 96, Height: 96}); !errors.Is(err, thumbnails.ErrUnsupported) {
			t.Errorf("got %v, want ErrUnsupported (video is opt-in)", err)
		}
	})
}

// A video whose index (moov) follows megabytes of media data cannot be read
// from a pipe as it is; handed over with the index moved first, it is.
func TestVideoIndexAtTheEnd(t *testing.T) {
	data := ffmpegOutput(t, "big.mp4", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=3", "-pix_fmt", "yuv420p",
		"-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M")
	var order []string
	for pos := 0; pos+8 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[pos:]))
		order = append(order, string(data[pos+4:pos+8]))
		if n < 8 {
			break
		}
		pos += n
	}
	if len(data) < 1<<20 || order[len(order)-1] != "moov" {
		t.Fatalf("test input: %d bytes, boxes %v; want over 1 MiB with moov last", len(data), order)
	}
	raw := exec.Command(tool(t, "ffmpeg"), "-loglevel", "error", "-f", "mov", "-i", "pipe:0", "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "pipe:1")
	raw.Stdin = bytes.NewReader(data)
	if out, err := raw.Output(); err == nil && len(out) > 0 {
		t.Fatal("ffmpeg read the file from a pipe as it is: the test shows nothing")
	}
	th, err := generate(t, avGenerator(t), data, thumbnails.Spec{Width: 320, Height: 240, Method: config.MethodScale})
	if err != nil {
		t.Fatal(err)
	}
	if b := mustDecode(t, th).Bounds(); b.Dx() != 320 || b.Dy() != 180 {
		t.Errorf("still %v, want 320x180", b)
	}
}
