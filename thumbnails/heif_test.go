package thumbnails_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gen2brain/avif"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// halvesImage is red on the left, blue on the right.
func halvesImage(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBA{220, 30, 30, 255}
			if x >= w/2 {
				c = color.NRGBA{30, 30, 220, 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// heicOf encodes img with libheif's heif-enc (Debian's libheif-examples).
func heicOf(t testing.TB, img image.Image) []byte {
	t.Helper()
	if _, err := exec.LookPath("heif-enc"); err != nil {
		t.Fatalf("heif-enc not found: run make test-deps (libheif-examples): %v", err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.png"), filepath.Join(dir, "out.heic")
	var b bytes.Buffer
	png.Encode(&b, img)
	os.WriteFile(in, b.Bytes(), 0o600)
	if msg, err := exec.Command("heif-enc", "-q", "90", "-o", out, in).CombinedOutput(); err != nil {
		t.Fatalf("heif-enc: %v\n%s", err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// avifOf encodes img with libavif (the WebAssembly encoder of the same module).
func avifOf(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := avif.Encode(&b, img, avif.Options{Quality: 90, Speed: 10}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func heifInputs(t testing.TB) map[string][]byte {
	img := halvesImage(600, 400)
	return map[string][]byte{"image/heic": heicOf(t, img), "image/avif": avifOf(t, img)}
}

func TestHEICAndAVIF(t *testing.T) {
	g := newGenerator()
	for format, data := range heifInputs(t) {
		t.Run(format, func(t *testing.T) {
			if w, h, err := thumbnails.Dimensions(bytes.NewReader(data)); err != nil || w != 600 || h != 400 {
				t.Fatalf("Dimensions = %dx%d, %v; want 600x400 from the header", w, h, err)
			}
			th, err := g.Generate(context.Background(), bytes.NewReader(data), int64(len(data)), thumbnails.Spec{Width: 96, Height: 96, Method: config.MethodScale})
			if err != nil {
				t.Fatal(err)
			}
			img, _, err := image.Decode(bytes.NewReader(th.Data))
			if err != nil || th.Width != 96 || th.Height != 64 || img.Bounds().Dx() != 96 || img.Bounds().Dy() != 64 {
				t.Fatalf("thumbnail %dx%d %s (%v); want 96x64", th.Width, th.Height, th.ContentType, err)
			}
			if th.ContentType != "image/jpeg" {
				t.Errorf("an opaque photo's thumbnail is %s, want image/jpeg", th.ContentType)
			}
			for _, p := range []struct {
				x    int
				want color.NRGBA
			}{{10, color.NRGBA{220, 30, 30, 255}}, {85, color.NRGBA{30, 30, 220, 255}}} {
				r, g, b, _ := img.At(p.x, 32).RGBA()
				if d := absDiff(r>>8, p.want.R) + absDiff(g>>8, p.want.G) + absDiff(b>>8, p.want.B); d > 60 {
					t.Errorf("pixel (%d, 32) = %d,%d,%d; want about %v", p.x, r>>8, g>>8, b>>8, p.want)
				}
			}
		})
	}
}

func absDiff(a uint32, b uint8) uint32 {
	if a > uint32(b) {
		return a - uint32(b)
	}
	return uint32(b) - a
}

// TestHEIFBadInput: truncated and corrupted files are refused as corrupt
// (a 4xx), a header claiming huge dimensions is refused before anything is
// decoded, and nothing panics.
func TestHEIFBadInput(t *testing.T) {
	g := newGenerator()
	spec := thumbnails.Spec{Width: 96, Height: 96, Method: config.MethodScale}
	for format, data := range heifInputs(t) {
		t.Run(format, func(t *testing.T) {
			bad := map[string][]byte{
				"truncated header": data[:60],
				"truncated pixels": data[:len(data)*3/4],
				"garbage pixels":   append(bytes.Clone(data[:len(data)/2]), bytes.Repeat([]byte{0xa5}, len(data)/2)...),
			}
			for name, b := range bad {
				_, err := g.Generate(context.Background(), bytes.NewReader(b), int64(len(b)), spec)
				if !errors.Is(err, thumbnails.ErrCorrupt) && !errors.Is(err, thumbnails.ErrUnsupported) {
					t.Errorf("%s: %v, want ErrCorrupt", name, err)
				}
			}
			// A bomb: the image extents say 60000 x 60000.
			bomb := bytes.Clone(data)
			i := bytes.Index(bomb, []byte("ispe"))
			if i < 0 {
				t.Fatal("no ispe box")
			}
			binary.BigEndian.PutUint32(bomb[i+8:], 60000)
			binary.BigEndian.PutUint32(bomb[i+12:], 60000)
			if _, err := g.Generate(context.Background(), bytes.NewReader(bomb), int64(len(bomb)), spec); !errors.Is(err, thumbnails.ErrTooManyPixels) {
				t.Errorf("60000x60000 in the header: %v, want ErrTooManyPixels before decoding", err)
			}
		})
	}
}

// FuzzBMFF: the HEIC/AVIF header reader never panics or loops on any bytes.
func FuzzBMFF(f *testing.F) {
	for _, data := range heifInputs(f) {
		f.Add(data[:min(len(data), 2048)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		thumbnails.Dimensions(bytes.NewReader(data))
	})
}

// TestHEIFDecodeCost: the budget admits what a WebAssembly decode holds
// (measured 26 bytes a pixel and 44 MB for the module), so a 12 MP HEIC
// needs more than the default budget of 192 MiB and is refused before
// decoding rather than taking the process over its bound.
func TestHEIFDecodeCost(t *testing.T) {
	data := heifInputs(t)["image/heic"]
	g := newGenerator()
	cost, err := g.DecodeCostForTest(data, thumbnails.Spec{Width: 96, Height: 96, Method: config.MethodScale})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(600*400*26 + 44<<20); cost < want {
		t.Errorf("cost of a 600x400 HEIC = %d, want at least %d", cost, want)
	}
	big := bytes.Clone(data)
	i := bytes.Index(big, []byte("ispe"))
	binary.BigEndian.PutUint32(big[i+8:], 4000)
	binary.BigEndian.PutUint32(big[i+12:], 3000)
	if _, err := g.Generate(context.Background(), bytes.NewReader(big), int64(len(big)), thumbnails.Spec{Width: 96, Height: 96, Method: config.MethodScale}); !errors.Is(err, thumbnails.ErrTooManyPixels) {
		t.Errorf("a 12 MP HEIC with the default budget: %v, want ErrTooManyPixels (over the budget) before decoding", err)
	}
}
