package thumbnails_test

import (
	"bytes"
	"testing"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// FuzzContainers: the header readers of MP4, QuickTime and WebM (and the
// MP4 reordering for the pipe) never panic, never allocate beyond their
// bounds, and a reordered stream keeps the file's length.
func FuzzContainers(f *testing.F) {
	lavfi := []string{"-f", "lavfi", "-i", "color=c=red:s=16x16:r=1:d=1"}
	f.Add(ffmpegOutput(f, "v.mp4", append(lavfi, "-c:v", "libx264")...))
	f.Add(ffmpegOutput(f, "v.mov", append(lavfi, "-c:v", "libx264")...))
	f.Add(ffmpegOutput(f, "v.webm", append(lavfi, "-c:v", "libvpx")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		thumbnails.Dimensions(bytes.NewReader(data))
		var out countingWriter
		if _, _, err := thumbnails.MP4StreamForTest(data, &out); err == nil && int(out) != len(data) {
			t.Fatalf("reordered stream of %d bytes from a %d-byte file", out, len(data))
		}
	})
}

type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// FuzzAPNG: APNG inputs, still and animated, give a thumbnail within the
// box that decodes, or an error; never a panic. (The WebAssembly decoders
// are left out: under the fuzzer's coverage instrumentation wazero's
// compiler takes minutes per worker, and TestHostileAnimations covers the
// animated WebP headers this package reads itself.)
func FuzzAPNG(f *testing.F) {
	// A small seed: the fuzzer minimises what it finds before going on, and
	// a large one keeps it minimising.
	f.Add(ffmpegOutput(f, "s.apng", "-f", "lavfi", "-i", "testsrc=s=12x12:r=10:d=0.3", "-plays", "0", "-f", "apng"))
	cfg := config.Default().Thumbnails
	cfg.Types = []string{"image/png", "image/apng"}
	g := thumbnails.New(cfg)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzInBox(t, g, data, thumbnails.Spec{Width: 8, Height: 8, Method: config.MethodCrop, Animated: true},
			thumbnails.Spec{Width: 8, Height: 8, Method: config.MethodScale})
	})
}
