package thumbnails_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
	"github.com/mediarepo/mediarepo/thumbnails/thumbnailstest"
)

var (
	red   = color.NRGBA{255, 0, 0, 255}
	green = color.NRGBA{0, 255, 0, 255}
	blue  = color.NRGBA{0, 0, 255, 255}
	white = color.NRGBA{255, 255, 255, 255}
)

func newGenerator() *thumbnails.Generator {
	return thumbnails.New(config.Default().Thumbnails)
}

// quadrants is a w x h image with red, green, blue and white quadrants
// (top-left, top-right, bottom-left, bottom-right).
func quadrants(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := red
			switch {
			case x >= w/2 && y < h/2:
				c = green
			case x < w/2 && y >= h/2:
				c = blue
			case x >= w/2 && y >= h/2:
				c = white
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func generate(t testing.TB, g *thumbnails.Generator, data []byte, spec thumbnails.Spec) (*thumbnails.Thumbnail, error) {
	t.Helper()
	return g.Generate(context.Background(), bytes.NewReader(data), int64(len(data)), spec)
}

func mustDecode(t *testing.T, th *thumbnails.Thumbnail) image.Image {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(th.Data))
	if err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	if "image/"+format != th.ContentType {
		t.Errorf("output is %s, labelled %s", format, th.ContentType)
	}
	return img
}

// near reports whether two colours are within tol per channel (JPEG is lossy).
func near(a, b color.Color, tol int) bool {
	ar, ag, ab, aa := a.RGBA()
	br, bg, bb, ba := b.RGBA()
	d := func(x, y uint32) bool { return abs(int(x>>8)-int(y>>8)) <= tol }
	return d(ar, br) && d(ag, bg) && d(ab, bb) && d(aa, ba)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestSizes(t *testing.T) {
	g := newGenerator()
	tests := map[string]struct {
		srcW, srcH   int
		spec         thumbnails.Spec
		wantW, wantH int
		wantOriginal bool
	}{
		"scale fits width":             {400, 300, thumbnails.Spec{Width: 320, Height: 240, Method: "scale"}, 320, 240, false},
		"scale keeps aspect":           {1000, 100, thumbnails.Spec{Width: 320, Height: 240, Method: "scale"}, 320, 32, false},
		"scale tall":                   {300, 1200, thumbnails.Spec{Width: 320, Height: 240, Method: "scale"}, 60, 240, false},
		"crop fills box":               {400, 300, thumbnails.Spec{Width: 96, Height: 96, Method: "crop"}, 96, 96, false},
		"crop wide source":             {1000, 100, thumbnails.Spec{Width: 32, Height: 32, Method: "crop"}, 32, 32, false},
		"crop source shorter than box": {1000, 100, thumbnails.Spec{Width: 320, Height: 240, Method: "crop"}, 133, 100, false},
		"scale never upscales":         {200, 100, thumbnails.Spec{Width: 800, Height: 600, Method: "scale"}, 0, 0, true},
		"crop never upscales":          {30, 20, thumbnails.Spec{Width: 32, Height: 32, Method: "crop"}, 0, 0, true},
		"exact size is the original":   {320, 240, thumbnails.Spec{Width: 320, Height: 240, Method: "scale"}, 0, 0, true},
		"default method scales":        {400, 300, thumbnails.Spec{Width: 200, Height: 200}, 200, 150, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			th, err := generate(t, g, encodeJPEG(t, quadrants(tt.srcW, tt.srcH)), tt.spec)
			if tt.wantOriginal {
				if !errors.Is(err, thumbnails.ErrUseOriginal) {
					t.Fatalf("Generate = %v, want ErrUseOriginal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			img := mustDecode(t, th)
			if b := img.Bounds(); b.Dx() != tt.wantW || b.Dy() != tt.wantH || th.Width != tt.wantW || th.Height != tt.wantH {
				t.Errorf("size = %v (reported %dx%d), want %dx%d", b, th.Width, th.Height, tt.wantW, tt.wantH)
			}
			if th.ContentType != "image/jpeg" {
				t.Errorf("opaque source gave %s, want image/jpeg", th.ContentType)
			}
		})
	}
}

func TestCropIsCentredAndColoursKept(t *testing.T) {
	th, err := generate(t, newGenerator(), encodePNG(t, quadrants(400, 200)), thumbnails.Spec{Width: 100, Height: 100, Method: "crop"})
	if err != nil {
		t.Fatal(err)
	}
	img := mustDecode(t, th)
	// The centred square of a 2:1 image keeps all four quadrants, meeting in the middle.
	wantQuadrants(t, img, 10, 90)
}

// wantQuadrants checks the quadrants' colours at (lo,lo), (hi,lo), (lo,hi), (hi,hi).
func wantQuadrants(t *testing.T, img image.Image, lo, hi int) {
	t.Helper()
	wantPixels(t, img, map[image.Point]color.Color{{lo, lo}: red, {hi, lo}: green, {lo, hi}: blue, {hi, hi}: white}, 40)
}

// wantPixels checks sampled pixels, within tol per channel.
func wantPixels(t *testing.T, img image.Image, probes map[image.Point]color.Color, tol int) {
	t.Helper()
	for p, want := range probes {
		if got := img.At(p.X, p.Y); !near(got, want, tol) {
			t.Errorf("pixel %v = %v, want %v", p, got, want)
		}
	}
}

func TestTransparencyKeptAsPNG(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 200, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 200; x++ {
			if x < 100 {
				src.SetNRGBA(x, y, red)
			} // right half stays transparent
		}
	}
	th, err := generate(t, newGenerator(), encodePNG(t, src), thumbnails.Spec{Width: 96, Height: 96, Method: "crop"})
	if err != nil {
		t.Fatal(err)
	}
	if th.ContentType != "image/png" {
		t.Fatalf("transparent source gave %s, want image/png", th.ContentType)
	}
	img := mustDecode(t, th)
	if _, _, _, a := img.At(90, 48).RGBA(); a != 0 {
		t.Errorf("transparent area has alpha %d, want 0", a>>8)
	}
	if got := img.At(5, 48); !near(got, red, 10) {
		t.Errorf("opaque area = %v, want red", got)
	}
}

// withOrientation inserts an EXIF APP1 segment with the given orientation
// right after a JPEG's SOI marker.
func withOrientation(jpg []byte, o uint16) []byte {
	tiffData := []byte("II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	binary.LittleEndian.PutUint16(tiffData[18:], o)
	payload := append([]byte("Exif\x00\x00"), tiffData...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

func TestEXIFOrientation(t *testing.T) {
	// 200x100: left half red, right half blue.
	src := image.NewNRGBA(image.Rect(0, 0, 200, 100))
	for y := 0; y < 100; y++ {
		for x := 0; x < 200; x++ {
			if x < 100 {
				src.SetNRGBA(x, y, red)
			} else {
				src.SetNRGBA(x, y, blue)
			}
		}
	}
	tests := map[string]struct {
		orientation  uint16
		wantW, wantH int
		probes       map[image.Point]color.Color
	}{
		"none":              {1, 100, 50, map[image.Point]color.Color{{10, 25}: red, {90, 25}: blue}},
		"rotate 90 cw (6)":  {6, 50, 100, map[image.Point]color.Color{{25, 10}: red, {25, 90}: blue}},
		"rotate 90 ccw (8)": {8, 50, 100, map[image.Point]color.Color{{25, 10}: blue, {25, 90}: red}},
		"rotate 180 (3)":    {3, 100, 50, map[image.Point]color.Color{{10, 25}: blue, {90, 25}: red}},
		"mirrored (2)":      {2, 100, 50, map[image.Point]color.Color{{10, 25}: blue, {90, 25}: red}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			data := withOrientation(encodeJPEG(t, src), tt.orientation)
			th, err := generate(t, newGenerator(), data, thumbnails.Spec{Width: 100, Height: 100, Method: "scale"})
			if err != nil {
				t.Fatal(err)
			}
			img := mustDecode(t, th)
			if b := img.Bounds(); b.Dx() != tt.wantW || b.Dy() != tt.wantH {
				t.Fatalf("size = %v, want %dx%d", b, tt.wantW, tt.wantH)
			}
			wantPixels(t, img, tt.probes, 40)
		})
	}
}

// animation is a 3-frame 100x100 GIF: red, green, blue.
func animation(t testing.TB) []byte {
	t.Helper()
	pal := color.Palette{red, green, blue, white}
	g := &gif.GIF{}
	for i := 0; i < 3; i++ {
		f := image.NewPaletted(image.Rect(0, 0, 100, 100), pal)
		for j := range f.Pix {
			f.Pix[j] = uint8(i)
		}
		g.Image = append(g.Image, f)
		g.Delay = append(g.Delay, 10)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestAnimated(t *testing.T) {
	data := animation(t)
	t.Run("animated requested", func(t *testing.T) {
		th, err := generate(t, newGenerator(), data, thumbnails.Spec{Width: 32, Height: 32, Method: "crop", Animated: true})
		if err != nil {
			t.Fatal(err)
		}
		if th.ContentType != "image/gif" || !th.Animated {
			t.Fatalf("got %s animated=%v, want an animated image/gif", th.ContentType, th.Animated)
		}
		out, err := gif.DecodeAll(bytes.NewReader(th.Data))
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Image) != 3 || out.Delay[1] != 10 {
			t.Fatalf("frames = %d, delay %v; want 3 frames of 10", len(out.Image), out.Delay)
		}
		for i, want := range []color.Color{red, green, blue} {
			if b := out.Image[i].Bounds(); b.Dx() != 32 || b.Dy() != 32 {
				t.Errorf("frame %d is %v, want 32x32", i, b)
			}
			if got := out.Image[i].At(16, 16); !near(got, want, 0) {
				t.Errorf("frame %d = %v, want %v", i, got, want)
			}
		}
	})
	t.Run("still when not requested", func(t *testing.T) {
		th, err := generate(t, newGenerator(), data, thumbnails.Spec{Width: 32, Height: 32, Method: "crop"})
		if err != nil {
			t.Fatal(err)
		}
		if th.Animated || th.ContentType == "image/gif" {
			t.Fatalf("got %s animated=%v, want a still", th.ContentType, th.Animated)
		}
		if got := mustDecode(t, th).At(16, 16); !near(got, red, 30) {
			t.Errorf("still = %v, want the first frame (red)", got)
		}
	})
	t.Run("still frame from config", func(t *testing.T) {
		cfg := config.Default().Thumbnails
		cfg.StillFrame = 1
		th, err := generate(t, thumbnails.New(cfg), data, thumbnails.Spec{Width: 32, Height: 32, Method: "crop"})
		if err != nil {
			t.Fatal(err)
		}
		if got := mustDecode(t, th).At(16, 16); !near(got, blue, 30) {
			t.Errorf("still = %v, want the last frame (blue)", got)
		}
	})
	t.Run("animated on a still source is a still", func(t *testing.T) {
		th, err := generate(t, newGenerator(), encodeJPEG(t, quadrants(100, 100)), thumbnails.Spec{Width: 32, Height: 32, Method: "crop", Animated: true})
		if err != nil || th.Animated || th.ContentType != "image/jpeg" {
			t.Fatalf("got %v, %v; want a still JPEG", th, err)
		}
	})
	t.Run("too much work to animate: a still", func(t *testing.T) {
		cfg := config.Default().Thumbnails
		cfg.MaxAnimatePixels = 20_000 // the animation has 3 x 100 x 100
		th, err := generate(t, thumbnails.New(cfg), data, thumbnails.Spec{Width: 32, Height: 32, Method: "crop", Animated: true})
		if err != nil || th.Animated || th.ContentType == "image/gif" {
			t.Fatalf("got %v, %v; want a still", th, err)
		}
	})
	t.Run("never larger than the original", func(t *testing.T) {
		// One-pixel stripes compress to almost nothing; scaled by 0.8 and
		// dithered they do not.
		var pal color.Palette
		for i := range 256 {
			pal = append(pal, color.RGBA{uint8(i), uint8(255 - i), uint8(i * 7), 255})
		}
		g := &gif.GIF{}
		for i := range 4 {
			f := image.NewPaletted(image.Rect(0, 0, 400, 400), pal)
			for j := range f.Pix {
				f.Pix[j] = uint8((j + i) % 2 * 255)
			}
			g.Image, g.Delay = append(g.Image, f), append(g.Delay, 10)
		}
		var b bytes.Buffer
		if err := gif.EncodeAll(&b, g); err != nil {
			t.Fatal(err)
		}
		_, err := generate(t, newGenerator(), b.Bytes(), thumbnails.Spec{Width: 320, Height: 240, Method: "scale", Animated: true})
		if !errors.Is(err, thumbnails.ErrUseOriginal) {
			t.Errorf("animated thumbnail of %d-byte stripes = %v, want ErrUseOriginal (the original is smaller)", b.Len(), err)
		}
	})
	t.Run("animation disabled", func(t *testing.T) {
		cfg := config.Default().Thumbnails
		cfg.AllowAnimated = false
		th, err := generate(t, thumbnails.New(cfg), data, thumbnails.Spec{Width: 32, Height: 32, Method: "crop", Animated: true})
		if err != nil || th.Animated {
			t.Fatalf("got %v, %v; want a still", th, err)
		}
	})
}

// pngWithIHDR returns a PNG signature and a valid IHDR claiming w x h, then
// optional extra chunks, then nothing: no pixel data at all.
func pngWithIHDR(w, h uint32, extra ...[]byte) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	b = append(b, chunk("IHDR", ihdr)...)
	for _, c := range extra {
		b = append(b, c...)
	}
	return b
}

func chunk(typ string, data []byte) []byte {
	out := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(out, uint32(len(data)))
	copy(out[4:], typ)
	out = append(out, data...)
	crc := crc32.NewIEEE()
	crc.Write(out[4:])
	return binary.BigEndian.AppendUint32(out, crc.Sum32())
}

func TestHostileImages(t *testing.T) {
	acTL := make([]byte, 8)
	binary.BigEndian.PutUint32(acTL, 1<<31)
	jpegBomb := encodeJPEG(t, quadrants(16, 16))
	// Patch the SOF0 frame header: 65500 x 65500.
	for i := 0; i+8 < len(jpegBomb); i++ {
		if jpegBomb[i] == 0xff && jpegBomb[i+1] == 0xc0 {
			binary.BigEndian.PutUint16(jpegBomb[i+5:], 65500)
			binary.BigEndian.PutUint16(jpegBomb[i+7:], 65500)
			break
		}
	}
	gifBomb := []byte("GIF89a\xff\xff\xff\xff\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00\x00\xff\xff\xff\xff\x00\x02\x01D\x00;")
	truncated := encodePNG(t, quadrants(64, 64))
	truncated = truncated[:len(truncated)/2]

	tests := map[string]struct {
		data []byte
		want error
	}{
		"100000x100000 png":           {pngWithIHDR(100000, 100000), thumbnails.ErrTooManyPixels},
		"65535x65535 gif":             {gifBomb, thumbnails.ErrTooManyPixels},
		"65500x65500 jpeg":            {jpegBomb, thumbnails.ErrTooManyPixels},
		"apng with 2^31 frames":       {pngWithIHDR(100, 100, chunk("acTL", acTL)), thumbnails.ErrTooManyPixels},
		"truncated png":               {truncated, thumbnails.ErrCorrupt},
		"png without pixels":          {pngWithIHDR(100, 100), thumbnails.ErrCorrupt},
		"tiny png is served as it is": {pngWithIHDR(10, 10), thumbnails.ErrUseOriginal},
		"zero-size png":               {pngWithIHDR(0, 10), thumbnails.ErrCorrupt},
		"text":                        {[]byte("hello, this is not an image"), thumbnails.ErrUnsupported},
		"svg":                         {[]byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>`), thumbnails.ErrUnsupported},
		"pdf":                         {[]byte("%PDF-1.7\n1 0 obj"), thumbnails.ErrUnsupported},
		"empty":                       {nil, thumbnails.ErrUnsupported},
		"jpeg magic only":             {[]byte("\xff\xd8\xff"), thumbnails.ErrCorrupt},
	}
	if len(gifBomb) != 34 {
		t.Fatalf("gif bomb is %d bytes, want 34", len(gifBomb))
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			th, err := generate(t, newGenerator(), tt.data, thumbnails.Spec{Width: 32, Height: 32, Method: "crop"})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.want) {
				t.Errorf("Generate = %v, %v; want %v", th, err, tt.want)
			}
			// Refused from the header: nothing near the claimed size is allocated.
			if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
				t.Errorf("allocated %d bytes to refuse it, want under 4 MiB", got)
			}
		})
	}
}

func TestTypesAndSourceSize(t *testing.T) {
	cfg := config.Default().Thumbnails
	cfg.Types = []string{"image/png"}
	cfg.MaxSourceBytes = 5000
	g := thumbnails.New(cfg)
	if _, err := generate(t, g, encodeJPEG(t, quadrants(100, 100)), thumbnails.Spec{Width: 32, Height: 32}); !errors.Is(err, thumbnails.ErrUnsupported) {
		t.Errorf("JPEG with only PNG allowed = %v, want ErrUnsupported", err)
	}
	noise := image.NewNRGBA(image.Rect(0, 0, 100, 100))
	rand.NewChaCha8([32]byte{1}).Read(noise.Pix)
	big := encodePNG(t, noise)
	if len(big) <= 5000 {
		t.Fatalf("test image is only %d bytes", len(big))
	}
	if _, err := generate(t, g, big, thumbnails.Spec{Width: 32, Height: 32}); !errors.Is(err, thumbnails.ErrTooLarge) {
		t.Errorf("source over maxSourceBytes = %v, want ErrTooLarge", err)
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := encodeJPEG(t, quadrants(100, 100))
	if _, err := newGenerator().Generate(ctx, bytes.NewReader(data), int64(len(data)), thumbnails.Spec{Width: 32, Height: 32}); !errors.Is(err, context.Canceled) {
		t.Errorf("Generate with cancelled ctx = %v, want context.Canceled", err)
	}
}

func FuzzGenerate(f *testing.F) {
	f.Add(encodeJPEG(f, quadrants(20, 20)))
	f.Add(encodePNG(f, quadrants(20, 20)))
	f.Add(animation(f))
	f.Add(pngWithIHDR(100000, 100000))
	f.Add([]byte("GIF89a\x10\x00\x10\x00\x00\x00\x00,\x00\x00\x00\x00\x10\x00\x10\x00\x00\x02\x02D\x01\x00;"))
	g := newGenerator()
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzInBox(t, g, data, thumbnails.Spec{Width: 8, Height: 8, Method: "crop"}, thumbnails.Spec{Width: 8, Height: 8, Method: "scale", Animated: true})
	})
}

// fuzzInBox fails t if a thumbnail made of data for one of specs (8x8 boxes)
// is outside the box or does not decode; errors are fine.
func fuzzInBox(t *testing.T, g *thumbnails.Generator, data []byte, specs ...thumbnails.Spec) {
	for _, spec := range specs {
		th, err := g.Generate(context.Background(), bytes.NewReader(data), int64(len(data)), spec)
		if err != nil {
			continue
		}
		if th.Width > 8 || th.Height > 8 || th.Width < 1 || th.Height < 1 {
			t.Fatalf("thumbnail %dx%d for an 8x8 box", th.Width, th.Height)
		}
		if _, _, err := image.Decode(bytes.NewReader(th.Data)); err != nil {
			t.Fatalf("output does not decode: %v", err)
		}
	}
}

func TestPreShrinkKeepsColoursAndEdges(t *testing.T) {
	// A large photo takes the box pre-shrink path: quadrant colours must
	// survive it for every chroma subsampling the JPEG encoder makes (4:2:0)
	// and for PNG's NRGBA.
	for name, data := range map[string][]byte{
		"jpeg": encodeJPEG(t, quadrants(2000, 1000)),
		"png":  encodePNG(t, quadrants(2000, 1000)),
	} {
		t.Run(name, func(t *testing.T) {
			th, err := generate(t, newGenerator(), data, thumbnails.Spec{Width: 100, Height: 100, Method: "crop"})
			if err != nil {
				t.Fatal(err)
			}
			img := mustDecode(t, th)
			if b := img.Bounds(); b.Dx() != 100 || b.Dy() != 100 {
				t.Fatalf("size = %v", b)
			}
			wantQuadrants(t, img, 5, 94)
		})
	}
}

func TestPreShrinkSubImage(t *testing.T) {
	// A YCbCr sub-image with an odd origin still averages the right chroma.
	full := image.NewYCbCr(image.Rect(0, 0, 401, 401), image.YCbCrSubsampleRatio420)
	for i := range full.Y {
		full.Y[i] = 76 // red in YCbCr is about (76, 85, 255)
	}
	for i := range full.Cb {
		full.Cb[i], full.Cr[i] = 85, 255
	}
	sub := full.SubImage(image.Rect(1, 1, 401, 401))
	out := thumbnails.PreShrinkForTest(sub, 0.1)
	if b := out.Bounds(); b.Dx() != 80 || b.Dy() != 80 {
		t.Fatalf("size = %v, want 80x80 (k=5)", b)
	}
	if got := out.At(40, 40); !near(got, red, 10) {
		t.Errorf("pixel = %v, want red", got)
	}
}

func TestGenerateAll(t *testing.T) {
	data := encodeJPEG(t, quadrants(700, 500))
	specs := []thumbnails.Spec{
		{Width: 32, Height: 32, Method: "crop"},
		{Width: 320, Height: 240, Method: "scale"},
		{Width: 800, Height: 600, Method: "scale"}, // larger than the original
	}
	res, err := newGenerator().GenerateAll(context.Background(), bytes.NewReader(data), int64(len(data)), specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results, want 3", len(res))
	}
	for i, want := range [][2]int{{32, 32}, {320, 228}} {
		if res[i].Err != nil || res[i].Thumbnail.Width != want[0] || res[i].Thumbnail.Height != want[1] {
			t.Errorf("result %d = %v, %dx%d; want %dx%d", i, res[i].Err, res[i].Thumbnail.Width, res[i].Thumbnail.Height, want[0], want[1])
		}
	}
	if !errors.Is(res[2].Err, thumbnails.ErrUseOriginal) {
		t.Errorf("result 2 = %v, want ErrUseOriginal", res[2].Err)
	}
	if _, err := newGenerator().GenerateAll(context.Background(), bytes.NewReader([]byte("text")), 4, specs); !errors.Is(err, thumbnails.ErrUnsupported) {
		t.Errorf("GenerateAll(text) = %v, want ErrUnsupported for the whole source", err)
	}
}

func TestInputFormats(t *testing.T) {
	src := quadrants(200, 100)
	var bmpData, tiffData bytes.Buffer
	if err := bmp.Encode(&bmpData, src); err != nil {
		t.Fatal(err)
	}
	if err := tiff.Encode(&tiffData, src, nil); err != nil {
		t.Fatal(err)
	}
	webpData, err := os.ReadFile("testdata/halves.webp") // 64x48, left red, right blue (cwebp)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		data         []byte
		wantW, wantH int
		probes       map[image.Point]color.Color
	}{
		"bmp":  {bmpData.Bytes(), 64, 32, map[image.Point]color.Color{{5, 5}: red, {60, 28}: white}},
		"tiff": {tiffData.Bytes(), 64, 32, map[image.Point]color.Color{{5, 5}: red, {60, 28}: white}},
		"webp": {webpData, 32, 24, map[image.Point]color.Color{{3, 12}: red, {29, 12}: blue}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			th, err := generate(t, newGenerator(), tt.data, thumbnails.Spec{Width: 64, Height: 32, Method: "scale"})
			if name == "webp" {
				th, err = generate(t, newGenerator(), tt.data, thumbnails.Spec{Width: 32, Height: 32, Method: "scale"})
			}
			if err != nil {
				t.Fatal(err)
			}
			img := mustDecode(t, th)
			if b := img.Bounds(); b.Dx() != tt.wantW || b.Dy() != tt.wantH {
				t.Fatalf("size = %v, want %dx%d", b, tt.wantW, tt.wantH)
			}
			wantPixels(t, img, tt.probes, 60)
		})
	}
}

// A 12000x12000 JPEG is refused by the default pixel limit from its header,
// and thumbnailed within a raised one from a 1/8 decode: a fraction of its
// 144 million pixels is ever held.
func TestHugeJPEGWithinLimits(t *testing.T) {
	data := thumbnailstest.FlatGrayJPEG(12000, 12000)
	spec := thumbnails.Spec{Width: 320, Height: 240, Method: "crop"}
	if _, err := generate(t, newGenerator(), data, spec); !errors.Is(err, thumbnails.ErrTooManyPixels) {
		t.Fatalf("with the default maxPixels: %v, want ErrTooManyPixels", err)
	}
	cfg := config.Default().Thumbnails
	cfg.MaxPixels, cfg.MaxSourceBytes = 150_000_000, 0
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	th, err := generate(t, thumbnails.New(cfg), data, spec)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	img := mustDecode(t, th)
	if img.Bounds() != image.Rect(0, 0, 320, 240) {
		t.Errorf("thumbnail %v, want 320x240", img.Bounds())
	}
	if r, g, b, _ := img.At(160, 120).RGBA(); r>>8 < 126 || r>>8 > 130 || g != r || b != r {
		t.Errorf("centre pixel %d,%d,%d, want grey 128", r>>8, g>>8, b>>8)
	}
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes for a %d-byte file", got, len(data))
	if full := uint64(12000 * 12000); got > full/8 {
		t.Errorf("allocated %d bytes, want under %d (1/8 of the full image's pixels)", got, full/8)
	}
}
