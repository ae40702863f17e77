package jpegscale_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/mediarepo/mediarepo/thumbnails/jpegscale"
	"github.com/mediarepo/mediarepo/thumbnails/thumbnailstest"
)

// photo is a w x h test picture with smooth areas, edges and texture, as a
// camera's: a gradient, hard-edged disks and noise.
func photo(w, h int, seed uint64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(seed, 1))
	type disk struct {
		x, y, rad int
		c         color.RGBA
	}
	var disks []disk
	for range 6 {
		disks = append(disks, disk{r.IntN(w), r.IntN(h), 5 + r.IntN(max(w, h)/4+1), color.RGBA{uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32()), 255}})
	}
	for y := range h {
		for x := range w {
			c := color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x*y)/(w+h+1)) & 0xff, 255}
			for _, d := range disks {
				if (x-d.x)*(x-d.x)+(y-d.y)*(y-d.y) < d.rad*d.rad {
					c = d.c
				}
			}
			n := uint8(r.IntN(12))
			c.R, c.G = c.R^n, c.G^n
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// cjpeg encodes img with libjpeg-turbo's cjpeg and args (make test-deps
// installs it): the shapes image/jpeg cannot write.
func cjpeg(t testing.TB, img *image.RGBA, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("cjpeg"); err != nil {
		t.Fatal("cjpeg not found: run make test-deps (libjpeg-turbo-progs)")
	}
	var ppm bytes.Buffer
	fmt.Fprintf(&ppm, "P6\n%d %d\n255\n", img.Rect.Dx(), img.Rect.Dy())
	for i := 0; i < len(img.Pix); i += 4 {
		ppm.Write(img.Pix[i : i+3])
	}
	path := filepath.Join(t.TempDir(), "in.ppm")
	if err := os.WriteFile(path, ppm.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("cjpeg", append(args, path)...).Output()
	if err != nil {
		t.Fatalf("cjpeg %v: %v", args, err)
	}
	return out
}

// corpus is the real-world shapes of JPEG the decoder is checked on, made
// once per test binary.
var corpus = sync.OnceValue(func() map[string][]byte {
	t := &testing.T{}
	files := map[string][]byte{}
	odd := photo(203, 157, 1) // not a multiple of any MCU size
	big := photo(640, 480, 2)
	tiny := photo(37, 19, 4) // seeds for the fuzzer: small inputs mutate well
	var std bytes.Buffer
	jpeg.Encode(&std, big, &jpeg.Options{Quality: 90})
	files["image/jpeg 4:2:0 q90"] = std.Bytes()
	for name, args := range map[string][]string{
		"baseline 4:4:4":                 {"-sample", "1x1"},
		"baseline 4:2:2":                 {"-sample", "2x1"},
		"baseline 4:2:0 q50":             {"-quality", "50"},
		"baseline 4:4:0":                 {"-sample", "1x2"},
		"baseline 4:1:1":                 {"-sample", "4x1"},
		"baseline 4:1:0":                 {"-sample", "4x2"},
		"grayscale":                      {"-grayscale"},
		"optimized Huffman":              {"-optimize"},
		"restart every MCU":              {"-restart", "1B"},
		"restart every 3 rows":           {"-restart", "3"},
		"progressive 4:2:0":              {"-progressive"},
		"progressive 4:4:4":              {"-progressive", "-sample", "1x1"},
		"progressive gray":               {"-progressive", "-grayscale"},
		"progressive with restarts":      {"-progressive", "-restart", "2B"},
		"progressive 4:1:1 q98":          {"-progressive", "-sample", "4x1", "-quality", "98"},
		"RGB, no colour transform":       {"-rgb"},
		"baseline q100 (large values)":   {"-quality", "100"},
		"16-bit quantisation tables q10": {"-quality", "10", "-baseline"},
	} {
		files[name+" 640x480"] = cjpeg(t, big, args...)
		files[name+" 203x157"] = cjpeg(t, odd, args...)
		files[name+" 37x19"] = cjpeg(t, tiny, args...)
	}
	files["progressive, many scans"] = cjpeg(t, big, "-progressive", "-scans", writeScans(t))
	return files
})

// writeScans writes a scan script with spectral selection and successive
// approximation in many small steps.
func writeScans(t *testing.T) string {
	script := `0,1,2: 0-0, 0, 2;
0,1,2: 0-0, 2, 1;
0: 1-2, 0, 3; 0: 3-9, 0, 3; 0: 10-63, 0, 3;
1: 1-63, 0, 1; 2: 1-63, 0, 1;
0: 1-63, 3, 2; 0: 1-63, 2, 1; 0: 1-63, 1, 0;
1: 1-63, 1, 0; 2: 1-63, 1, 0;
0,1,2: 0-0, 1, 0;
`
	path := filepath.Join(os.TempDir(), "mediarepo-scans.txt")
	os.WriteFile(path, []byte(script), 0o600)
	return path
}

func TestCorpusMatchesImageJPEG(t *testing.T) {
	for name, data := range corpus() {
		t.Run(name, func(t *testing.T) {
			want, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				// image/jpeg cannot read some valid files (progressive with
				// restart markers): libjpeg's djpeg is the reference then.
				want = djpeg(t, data)
			}
			for _, scale := range []int{1, 2, 4, 8} {
				got, err := jpegscale.Decode(context.Background(), data, scale)
				if err != nil {
					t.Fatalf("scale 1/%d: %v", scale, err)
				}
				b := want.Bounds()
				if wantSize := image.Pt((b.Dx()+scale-1)/scale, (b.Dy()+scale-1)/scale); got.Bounds().Size() != wantSize {
					t.Fatalf("scale 1/%d: %v, want %v", scale, got.Bounds().Size(), wantSize)
				}
				if scale == 1 {
					// Against djpeg's RGB the chroma error is seen through the
					// colour conversion, which adds one.
					limit := 2
					if _, ok := want.(*image.RGBA); ok && fmt.Sprintf("%T", got) != "*image.RGBA" {
						limit = 3
					}
					if d := maxSampleDiff(got, want); d > limit {
						t.Errorf("scale 1: a sample differs by %d from the reference's, want at most %d", d, limit)
					}
					continue
				}
				mean, worst := compareToBox(got, want, scale)
				if fmt.Sprintf("%T", got) != fmt.Sprintf("%T", want) {
					// Against djpeg's RGB, luma is computed from colour, which
					// clips: a little more room.
					if mean > 1.5 || worst > 16 {
						t.Errorf("scale 1/%d: mean luma difference %.2f, worst %d from a box-downsample of djpeg's output; want at most 1.5 and 16", scale, mean, worst)
					}
					continue
				}
				// The worst case is where the full-size pixels clip at 0 or 255:
				// the mean of clipped values is not the clipped mean.
				if mean > 1.0 || worst > 12 {
					t.Errorf("scale 1/%d: mean difference %.2f, worst %d from a box-downsample of image/jpeg's output; want at most 1.0 and 12", scale, mean, worst)
				}
			}
		})
	}
}

// djpeg decodes data with libjpeg-turbo's djpeg (integer IDCT, chroma
// replicated rather than interpolated, as image/jpeg does).
func djpeg(t *testing.T, data []byte) image.Image {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.jpg")
	os.WriteFile(path, data, 0o600)
	out, err := exec.Command("djpeg", "-pnm", "-nosmooth", "-dct", "int", path).Output()
	if err != nil {
		t.Fatalf("djpeg: %v", err)
	}
	var w, h, maxv int
	var magic string
	n, _ := fmt.Sscan(string(out[:min(len(out), 32)]), &magic, &w, &h, &maxv)
	if n != 4 {
		t.Fatalf("djpeg output header %q", out[:20])
	}
	pix := out[len(out)-w*h*3:]
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = pix[3*i], pix[3*i+1], pix[3*i+2], 255
	}
	return img
}

// maxSampleDiff compares two images of the same type and size sample by
// sample: Y, Cb and Cr planes for YCbCr, or their colour values.
func maxSampleDiff(a, b image.Image) int {
	worst := 0
	diff := func(x, y byte) {
		worst = max(worst, int(math.Abs(float64(int(x)-int(y)))))
	}
	if ya, ok := a.(*image.YCbCr); ok {
		yb, ok := b.(*image.YCbCr)
		if !ok { // a reference in RGB (djpeg): compare colours, converted alike
			return maxColourDiff(a, b)
		}
		r := ya.Rect
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				diff(ya.Y[ya.YOffset(x, y)], yb.Y[yb.YOffset(x, y)])
				diff(ya.Cb[ya.COffset(x, y)], yb.Cb[yb.COffset(x, y)])
				diff(ya.Cr[ya.COffset(x, y)], yb.Cr[yb.COffset(x, y)])
			}
		}
		return worst
	}
	return maxColourDiff(a, b)
}

func maxColourDiff(a, b image.Image) int {
	worst := 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c1, c2 := color.NRGBAModel.Convert(a.At(x, y)).(color.NRGBA), color.NRGBAModel.Convert(b.At(x, y)).(color.NRGBA)
			for _, d := range []int{int(c1.R) - int(c2.R), int(c1.G) - int(c2.G), int(c1.B) - int(c2.B)} {
				worst = max(worst, max(d, -d))
			}
		}
	}
	return worst
}

// compareToBox compares a scaled decode with the box-downsampled full-size
// decode of image/jpeg, on luma (or gray, or the mean of RGB): the mean and
// the worst absolute difference of the samples whose box is whole.
func compareToBox(got, full image.Image, scale int) (float64, int) {
	sameType := fmt.Sprintf("%T", got) == fmt.Sprintf("%T", full)
	level := func(img image.Image, x, y int) float64 {
		if !sameType { // luma, which chroma subsampling does not touch
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			return 0.299*float64(c.R) + 0.587*float64(c.G) + 0.114*float64(c.B)
		}
		switch p := img.(type) {
		case *image.YCbCr:
			return float64(p.Y[p.YOffset(x, y)])
		case *image.Gray:
			return float64(p.Pix[p.PixOffset(x, y)])
		}
		c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
		return (float64(c.R) + float64(c.G) + float64(c.B)) / 3
	}
	fb := full.Bounds()
	sum, n, worst := 0.0, 0, 0
	for y := 0; (y+1)*scale <= fb.Dy(); y++ {
		for x := 0; (x+1)*scale <= fb.Dx(); x++ {
			box := 0.0
			for yy := y * scale; yy < (y+1)*scale; yy++ {
				for xx := x * scale; xx < (x+1)*scale; xx++ {
					box += level(full, xx, yy)
				}
			}
			box /= float64(scale * scale)
			d := math.Abs(level(got, x, y) - box)
			sum += d
			n++
			worst = max(worst, int(math.Round(d)))
		}
	}
	return sum / float64(n), worst
}

func TestTruncatedAndCorrupt(t *testing.T) {
	data := corpus()["progressive 4:2:0 640x480"]
	base := corpus()["baseline 4:4:4 640x480"]
	for name, bad := range map[string][]byte{
		"empty":                 nil,
		"SOI only":              {0xff, 0xd8},
		"progressive cut":       data[:len(data)/3],
		"baseline cut":          base[:len(base)/2],
		"baseline, header only": base[:600],
		"not a jpeg":            []byte("GIF89a............"),
	} {
		t.Run(name, func(t *testing.T) {
			for _, scale := range []int{1, 8} {
				if _, err := jpegscale.Decode(context.Background(), bad, scale); err == nil || errors.Is(err, jpegscale.ErrUnsupported) {
					t.Errorf("scale 1/%d: err = %v, want a malformed-file error", scale, err)
				}
			}
		})
	}
}

func TestUnsupportedIsSaid(t *testing.T) {
	img := photo(64, 48, 3)
	arith := cjpeg(t, img, "-arithmetic")
	if _, err := jpegscale.Decode(context.Background(), arith, 4); !errors.Is(err, jpegscale.ErrUnsupported) {
		t.Errorf("arithmetic-coded file = %v, want ErrUnsupported", err)
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := jpegscale.Decode(ctx, corpus()["baseline 4:4:4 640x480"], 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Decode with a cancelled context = %v, want context.Canceled", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, data := range corpus() {
		if len(data) < 8<<10 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width*cfg.Height > 1<<20 {
			return
		}
		for _, scale := range []int{8, 4, 2} {
			jpegscale.Decode(context.Background(), data, scale) // must not panic or hang
		}
		got, err := jpegscale.Decode(context.Background(), data, 1)
		want, werr := jpeg.Decode(bytes.NewReader(data))
		if err != nil || werr != nil {
			return // only files both decode are compared
		}
		// An encoder of 8-bit samples writes no coefficient past about 1152
		// (the DCT of samples within ±128 stays within 1024, plus half a step
		// of an 8-bit quantiser). Far past that, image/jpeg's integer inverse
		// DCT overflows (and libjpeg's 16-bit storage wraps): decoders
		// disagree, and this one saturates, as the exact transform does.
		if peak, _ := jpegscale.PeakCoefficient(data); peak > 2048 {
			return
		}
		if got.Bounds() != want.Bounds() || fmt.Sprintf("%T", got) != fmt.Sprintf("%T", want) {
			t.Fatalf("decoded %T %v, image/jpeg %T %v", got, got.Bounds(), want, want.Bounds())
		}
		if d := maxSampleDiff(got, want); d > 2 {
			t.Fatalf("a sample differs by %d from image/jpeg's", d)
		}
	})
}

// A 12000x12000 JPEG decoded at 1/8 holds 1/64 of its pixels: 1500x1500 of
// grey, and next to nothing allocated beyond it and the file.
func TestHugeAtOneEighth(t *testing.T) {
	data := thumbnailstest.FlatGrayJPEG(12000, 12000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	img, err := jpegscale.Decode(context.Background(), data, 8)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Bounds() != image.Rect(0, 0, 1500, 1500) {
		t.Fatalf("decoded %T %v, want *image.Gray of 1500x1500", img, img.Bounds())
	}
	for i, v := range g.Pix {
		if v != 128 {
			t.Fatalf("pixel %d = %d, want 128", i, v)
		}
	}
	full := int64(12000 * 12000)
	t.Logf("allocated %d bytes for a %d-byte file of %d pixels", after.TotalAlloc-before.TotalAlloc, len(data), full)
	if got := int64(after.TotalAlloc - before.TotalAlloc); got > full/16 {
		t.Errorf("allocated %d bytes, want under %d (1/16 of the full image's pixels)", got, full/16)
	}
	// The reference decodes it too, at full size.
	ref, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil || ref.Bounds().Dx() != 12000 || ref.At(5000, 7000).(color.Gray).Y != 128 {
		t.Fatalf("image/jpeg: %v", err)
	}
}
