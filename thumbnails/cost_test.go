package thumbnails_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// mustCJPEG encodes img with libjpeg-turbo's cjpeg and args (for what
// image/jpeg cannot write: progressive scans, other subsampling, restart
// markers). make test-deps installs it.
func mustCJPEG(t testing.TB, img image.Image, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("cjpeg"); err != nil {
		t.Fatal("cjpeg not found: run make test-deps (libjpeg-turbo-progs)")
	}
	b := img.Bounds()
	var ppm bytes.Buffer
	fmt.Fprintf(&ppm, "P6\n%d %d\n255\n", b.Dx(), b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			ppm.Write([]byte{byte(r >> 8), byte(g >> 8), byte(bl >> 8)})
		}
	}
	in := filepath.Join(t.TempDir(), "in.ppm")
	if err := os.WriteFile(in, ppm.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("cjpeg", append(args, in)...).Output()
	if err != nil {
		t.Fatalf("cjpeg %v: %v", args, err)
	}
	return out
}

// gradient is a smooth w x h image: it compresses well, as photos of skies do.
func gradient(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	return img
}

func encodedPNG(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDecodeCostCoversTheDecoder decodes each kind of image and compares the
// memory admitted for it with what the decoder allocates (TotalAlloc, which
// does not depend on when the collector runs): never less, and not wildly more.
func TestDecodeCostCoversTheDecoder(t *testing.T) {
	const w, h = 900, 700
	src := gradient(w, h)
	var jpg bytes.Buffer
	jpeg.Encode(&jpg, src, &jpeg.Options{Quality: 90})
	wide := image.NewNRGBA64(image.Rect(0, 0, w, h))
	gray := image.NewGray(image.Rect(0, 0, w, h))
	pal := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.White})
	tests := map[string][]byte{
		"baseline jpeg 4:2:0":    jpg.Bytes(),
		"progressive jpeg 4:4:4": mustCJPEG(t, src, "-progressive", "-sample", "1x1"),
		"progressive jpeg 4:2:0": mustCJPEG(t, src, "-progressive"),
		"baseline jpeg 4:2:2":    mustCJPEG(t, src, "-sample", "2x1"),
		"grayscale jpeg":         mustCJPEG(t, src, "-grayscale"),
		"png rgba":               encodedPNG(t, src),
		"png 16-bit":             encodedPNG(t, wide),
		"png gray":               encodedPNG(t, gray),
		"png paletted":           encodedPNG(t, pal),
	}
	g := thumbnails.New(config.Default().Thumbnails)
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			cost, err := g.DecodeCostForTest(data, thumbnails.Spec{Width: 96, Height: 96, Method: "crop"})
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if _, err := g.Generate(context.Background(), bytes.NewReader(data), int64(len(data)), thumbnails.Spec{Width: 96, Height: 96, Method: "crop"}); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			used := int64(after.TotalAlloc - before.TotalAlloc)
			t.Logf("admitted %.1f bytes/pixel, decoder and pipeline allocated %.1f", float64(cost)/(w*h), float64(used)/(w*h))
			if cost < used*9/10 {
				t.Errorf("admitted %d bytes, but %d were allocated", cost, used)
			}
			if cost > 4*used+8<<20 {
				t.Errorf("admitted %d bytes for %d allocated: far too pessimistic", cost, used)
			}
		})
	}
}

func TestDecodeOverTheBudgetIsRefusedBeforeDecoding(t *testing.T) {
	cfg := config.Default().Thumbnails
	cfg.DecodeMemoryBytes = 32 << 20
	g := thumbnails.New(cfg)
	// 3000x3000 progressive 4:4:4: its coefficients alone, two bytes for each
	// of 27 million samples, are about 54 MB.
	data := mustCJPEG(t, gradient(3000, 3000), "-progressive", "-sample", "1x1")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := g.Generate(context.Background(), bytes.NewReader(data), int64(len(data)), thumbnails.Spec{Width: 96, Height: 96, Method: "crop"})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, thumbnails.ErrTooManyPixels) {
		t.Fatalf("Generate = %v, want ErrTooManyPixels (413)", err)
	}
	if used := after.TotalAlloc - before.TotalAlloc; used > 1<<20 {
		t.Errorf("refusal allocated %d bytes: it decoded", used)
	}
}

func TestDecodesWaitForTheBudget(t *testing.T) {
	cfg := config.Default().Thumbnails
	data := encodedPNG(t, noise(1000, 1000)) // about 4.5 MB to decode, 4 MB to read
	cost, _ := thumbnails.New(cfg).DecodeCostForTest(data, thumbnails.Spec{Width: 96, Height: 96, Method: "crop"})
	cfg.DecodeMemoryBytes = cost + cost/2 // room for one at a time
	g := thumbnails.New(cfg)
	hold := make(chan struct{})
	held := &gatedReader{r: bytes.NewReader(data), gate: hold, started: make(chan struct{})}
	first := make(chan error, 1)
	go func() {
		_, err := g.Generate(context.Background(), held, int64(len(data)), thumbnails.Spec{Width: 96, Height: 96, Method: "crop"})
		first <- err
	}()
	<-held.started // the first decode holds its memory
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	second := &gatedReader{r: bytes.NewReader(data), started: make(chan struct{})}
	_, err := g.Generate(ctx, second, int64(len(data)), thumbnails.Spec{Width: 96, Height: 96, Method: "crop"})
	if !errors.Is(err, context.DeadlineExceeded) || second.decodeReads > 0 {
		t.Errorf("second decode = %v after %d reads past the header; want it to wait without decoding", err, second.decodeReads)
	}
	close(hold)
	if err := <-first; err != nil {
		t.Errorf("first decode = %v", err)
	}
	if _, err := g.Generate(context.Background(), bytes.NewReader(data), int64(len(data)), thumbnails.Spec{Width: 96, Height: 96, Method: "crop"}); err != nil {
		t.Errorf("decode after the first finished = %v, want room again", err)
	}
}

// gatedReader counts the reads past the first 64 KiB, which only a decoder
// makes (the header is read at the start), and holds them until gate is
// closed, if it is set.
type gatedReader struct {
	r           *bytes.Reader
	gate        chan struct{}
	started     chan struct{}
	decodeReads int
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if pos, _ := g.r.Seek(0, io.SeekCurrent); pos > 64<<10 {
		if g.decodeReads == 0 {
			close(g.started)
		}
		g.decodeReads++
		if g.gate != nil {
			<-g.gate
		}
	}
	return g.r.Read(p)
}

func (g *gatedReader) Seek(off int64, whence int) (int64, error) { return g.r.Seek(off, whence) }

// noise is w x h of random pixels: it does not compress.
func noise(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rand.NewChaCha8([32]byte{7}).Read(img.Pix)
	return img
}
