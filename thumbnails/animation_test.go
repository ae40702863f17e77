package thumbnails_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	gwebp "github.com/gen2brain/webp"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// tool returns the path of a program the test set-up installs (make
// test-deps), failing the test when it is missing.
func tool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: run make test-deps: %v", name, err)
	}
	return path
}

// run runs a program in dir and fails the test on error.
func run(t testing.TB, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// framesOf writes 100x100 frames: red, then green on the left half only
// (the rest of the red frame shows through where an encoder blends), then
// blue. They show as red, green|red, blue. A little noise keeps the
// originals from compressing smaller than their thumbnails, which would
// then not be made (the original is served).
func framesOf(t testing.TB, dir string) []string {
	t.Helper()
	var names []string
	for i, fill := range []func(x, y int) color.NRGBA{
		func(x, y int) color.NRGBA { return red },
		func(x, y int) color.NRGBA {
			if x < 50 {
				return green
			}
			return red
		},
		func(x, y int) color.NRGBA { return blue },
	} {
		img := image.NewNRGBA(image.Rect(0, 0, 100, 100))
		seed := uint32(i + 1)
		for y := range 100 {
			for x := range 100 {
				c := fill(x, y)
				seed = seed*1664525 + 1013904223
				d := uint8(seed >> 28) // 0-15
				c.R, c.G, c.B = c.R^d, c.G^d, c.B^d
				img.SetNRGBA(x, y, c)
			}
		}
		name := filepath.Join(dir, "f"+string(rune('0'+i))+".png")
		if err := os.WriteFile(name, encodePNG(t, img), 0o600); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

// animatedInputs are the same three-frame animation (100 ms a frame) as an
// APNG (ffmpeg's encoder, which writes the changed region only and blends)
// and an animated WebP (img2webp).
func animatedInputs(t testing.TB) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	frames := framesOf(t, dir)
	run(t, dir, "ffmpeg", "-loglevel", "error", "-framerate", "10", "-i", "f%d.png", "-plays", "0", "-f", "apng", "anim.apng")
	args := []string{"-loop", "0", "-lossy", "-q", "90", "-d", "100"}
	args = append(args, frames...)
	run(t, dir, "img2webp", append(args, "-o", "anim.webp")...)
	out := map[string][]byte{}
	for format, name := range map[string]string{"image/apng": "anim.apng", "image/webp": "anim.webp"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[format] = data
	}
	return out
}

// wantFrames checks the three frames, scaled to 32x32: red, green|red, blue.
func wantFrames(t *testing.T, frames []image.Image) {
	t.Helper()
	if len(frames) != 3 {
		t.Fatalf("%d frames, want 3", len(frames))
	}
	for i, want := range [][2]color.Color{{red, red}, {green, red}, {blue, blue}} {
		b := frames[i].Bounds()
		if b.Dx() != 32 || b.Dy() != 32 {
			t.Errorf("frame %d is %v, want 32x32", i, b)
		}
		left, right := mean(frames[i], b.Min.X+3, b.Min.Y+12), mean(frames[i], b.Min.X+21, b.Min.Y+12)
		if !near(left, want[0], 60) || !near(right, want[1], 60) {
			t.Errorf("frame %d: left %v right %v, want %v and %v", i, left, right, want[0], want[1])
		}
	}
}

// mean is the average colour of the 8x8 block at x, y: dithering to a
// GIF palette scatters single pixels.
func mean(img image.Image, x0, y0 int) color.Color {
	var r, g, b, a uint32
	for y := y0; y < y0+8; y++ {
		for x := x0; x < x0+8; x++ {
			cr, cg, cb, ca := img.At(x, y).RGBA()
			r, g, b, a = r+cr>>8, g+cg>>8, b+cb>>8, a+ca>>8
		}
	}
	return color.RGBA{uint8(r / 64), uint8(g / 64), uint8(b / 64), uint8(a / 64)}
}

func TestAnimatedAPNGAndWebP(t *testing.T) {
	for format, data := range animatedInputs(t) {
		t.Run(format, func(t *testing.T) {
			spec := thumbnails.Spec{Width: 32, Height: 32, Method: config.MethodCrop, Animated: true}
			th, err := generate(t, newGenerator(), data, spec)
			if err != nil {
				t.Fatal(err)
			}
			if th.ContentType != "image/gif" || !th.Animated || th.Width != 32 || th.Height != 32 {
				t.Fatalf("got %s %dx%d animated=%v, want an animated 32x32 GIF", th.ContentType, th.Width, th.Height, th.Animated)
			}
			g, err := gif.DecodeAll(bytes.NewReader(th.Data))
			if err != nil {
				t.Fatal(err)
			}
			var frames []image.Image
			for i, m := range g.Image {
				frames = append(frames, m)
				if g.Delay[i] != 10 {
					t.Errorf("frame %d delay %d cs, want 10", i, g.Delay[i])
				}
			}
			wantFrames(t, frames)

			// The still is the first frame; stillFrame 1 picks the last.
			spec.Animated = false
			th, err = generate(t, newGenerator(), data, spec)
			if err != nil || th.Animated {
				t.Fatalf("still = %v, %v", th, err)
			}
			if got := mustDecode(t, th).At(16, 16); !near(got, red, 40) {
				t.Errorf("still = %v, want the first frame (red)", got)
			}
			cfg := config.Default().Thumbnails
			cfg.StillFrame = 1
			th, err = generate(t, thumbnails.New(cfg), data, spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := mustDecode(t, th).At(16, 16); !near(got, blue, 40) {
				t.Errorf("stillFrame 1 = %v, want the last frame (blue)", got)
			}
		})
	}
}

// With WebP allowed, an animated thumbnail is the smaller of the GIF and
// the animated WebP, and its Content-Type says which.
func TestAnimatedWebPWhenSmaller(t *testing.T) {
	inputs := animatedInputs(t)
	inputs["noise gif"] = noiseAnimation(t)
	webps := 0
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			spec := thumbnails.Spec{Width: 32, Height: 32, Method: config.MethodCrop, Animated: true}
			asGIF, err := generate(t, newGenerator(), data, spec)
			if err != nil {
				t.Fatal(err)
			}
			spec.WebP = true
			th, err := generate(t, newGenerator(), data, spec)
			if err != nil {
				t.Fatal(err)
			}
			switch th.ContentType {
			case "image/webp":
				webps++
				if len(th.Data) >= len(asGIF.Data) {
					t.Errorf("WebP of %d bytes chosen over a GIF of %d", len(th.Data), len(asGIF.Data))
				}
				anim, err := gwebp.DecodeAll(bytes.NewReader(th.Data))
				if err != nil {
					t.Fatalf("animated WebP does not decode: %v", err)
				}
				for i, d := range anim.Delay {
					if d != 100 {
						t.Errorf("frame %d shows %d ms, want 100", i, d)
					}
				}
				if name != "noise gif" {
					wantFrames(t, anim.Image)
				}
			case "image/gif":
				if !bytes.Equal(th.Data, asGIF.Data) {
					t.Error("GIF chosen, but not the GIF made without WebP")
				}
			default:
				t.Fatalf("content type %s", th.ContentType)
			}
		})
	}
	if webps == 0 {
		t.Error("no input got an animated WebP: the noise animation should")
	}
}

// noiseAnimation is three frames of 100x100 noise, which GIF's palette and
// LZW compress badly.
func noiseAnimation(t testing.TB) []byte {
	t.Helper()
	var pal color.Palette
	for i := range 256 {
		pal = append(pal, color.RGBA{uint8(i), uint8(i * 3), uint8(255 - i), 255})
	}
	g := &gif.GIF{}
	seed := uint32(1)
	for range 3 {
		f := image.NewPaletted(image.Rect(0, 0, 100, 100), pal)
		for j := range f.Pix {
			seed = seed*1664525 + 1013904223
			f.Pix[j] = uint8(seed >> 24)
		}
		g.Image, g.Delay = append(g.Image, f), append(g.Delay, 10)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestWebPStills(t *testing.T) {
	data := encodeJPEG(t, quadrants(200, 100))
	th, err := generate(t, newGenerator(), data, thumbnails.Spec{Width: 64, Height: 32, Method: config.MethodScale, WebP: true})
	if err != nil {
		t.Fatal(err)
	}
	if th.ContentType != "image/webp" {
		t.Fatalf("content type %s, want image/webp", th.ContentType)
	}
	img := mustDecode(t, th)
	if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 32 {
		t.Fatalf("size %v, want 64x32", b)
	}
	wantPixels(t, img, map[image.Point]color.Color{{5, 5}: red, {60, 5}: green, {5, 28}: blue, {60, 28}: white}, 40)
	// Transparency is kept in WebP too.
	clear := image.NewNRGBA(image.Rect(0, 0, 100, 100))
	th, err = generate(t, newGenerator(), encodePNG(t, clear), thumbnails.Spec{Width: 32, Height: 32, Method: config.MethodScale, WebP: true})
	if err != nil || th.ContentType != "image/webp" {
		t.Fatalf("transparent: %v, %v", th, err)
	}
	if _, _, _, a := mustDecode(t, th).At(16, 16).RGBA(); a != 0 {
		t.Errorf("transparent pixel has alpha %d", a>>8)
	}
}

// anmf is an ANMF chunk header claiming a w x h frame, with no bitstream.
func anmf(w, h int) []byte {
	b := make([]byte, 24)
	copy(b, "ANMF")
	binary.LittleEndian.PutUint32(b[4:], 16)
	put24 := func(o, v int) { b[o], b[o+1], b[o+2] = byte(v), byte(v>>8), byte(v>>16) }
	put24(8+6, w-1)
	put24(8+9, h-1)
	return b
}

// animatedWebPHeader is a RIFF WEBP with a VP8X animation header of w x h,
// then the given chunks.
func animatedWebPHeader(w, h int, chunks ...[]byte) []byte {
	body := []byte("WEBPVP8X")
	body = binary.LittleEndian.AppendUint32(body, 10)
	body = append(body, 0x02, 0, 0, 0, byte(w-1), byte((w-1)>>8), byte((w-1)>>16), byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	body = append(body, "ANIM\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00"...)
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(len(body))), body...)
}

func TestHostileAnimations(t *testing.T) {
	inputs := animatedInputs(t)
	manyFrames := make([][]byte, 5000)
	for i := range manyFrames {
		manyFrames[i] = anmf(100, 100)
	}
	acTL := make([]byte, 8)
	binary.BigEndian.PutUint32(acTL, 3)
	apng := inputs["image/apng"]
	tests := map[string]struct {
		data []byte
		want error
	}{
		"webp canvas of 16384x16384":     {animatedWebPHeader(16384, 16384, anmf(16384, 16384), anmf(16384, 16384)), thumbnails.ErrTooManyPixels},
		"webp of 5000 frames":            {animatedWebPHeader(100, 100, manyFrames...), thumbnails.ErrTooManyPixels},
		"webp frames without bitstreams": {animatedWebPHeader(100, 100, anmf(100, 100), anmf(100, 100)), thumbnails.ErrCorrupt},
		"truncated webp":                 {inputs["image/webp"][:len(inputs["image/webp"])/2], thumbnails.ErrCorrupt},
		"apng of 60000x60000":            {pngWithIHDR(60000, 60000, chunk("acTL", acTL)), thumbnails.ErrTooManyPixels},
		"truncated apng":                 {apng[:len(apng)*3/4], thumbnails.ErrCorrupt},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			for _, animated := range []bool{true, false} {
				_, err := generate(t, newGenerator(), tt.data, thumbnails.Spec{Width: 32, Height: 32, Method: config.MethodCrop, Animated: animated})
				if err == nil && !animated && tt.want == thumbnails.ErrCorrupt {
					continue // a still of the frames that are whole
				}
				if !errors.Is(err, tt.want) {
					t.Errorf("animated=%v: %v, want %v", animated, err, tt.want)
				}
			}
		})
	}
}
