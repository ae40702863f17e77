package thumbnails_test

import (
	"bytes"
	"context"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/disintegration/imaging"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
	"github.com/mediarepo/mediarepo/thumbnails/thumbnailstest"
)

var sources = sync.OnceValues(func() (jpg, pngData []byte) {
	var b bytes.Buffer
	jpeg.Encode(&b, thumbnailstest.PhotoLike(4000, 3000), &jpeg.Options{Quality: 90})
	jpg = append([]byte(nil), b.Bytes()...)
	b.Reset()
	png.Encode(&b, thumbnailstest.PhotoLike(2000, 2000))
	return jpg, b.Bytes()
})

var benchSpecs = []struct {
	name string
	spec thumbnails.Spec
}{
	{"320x240crop", thumbnails.Spec{Width: 320, Height: 240, Method: "crop"}},
	{"800x600scale", thumbnails.Spec{Width: 800, Height: 600, Method: "scale"}},
	{"96x96crop", thumbnails.Spec{Width: 96, Height: 96, Method: "crop"}},
}

func BenchmarkThumbnailJPEG4000x3000(b *testing.B) {
	jpg, _ := sources()
	benchGenerate(b, jpg)
}

func BenchmarkThumbnailPNG2000x2000(b *testing.B) {
	_, pngData := sources()
	benchGenerate(b, pngData)
}

// BenchmarkThumbnailJPEG4000x3000WebP is the same as WebP output, for
// clients that accept it (thumbnails.preferWebp).
func BenchmarkThumbnailJPEG4000x3000WebP(b *testing.B) {
	jpg, _ := sources()
	g := thumbnails.New(config.Default().Thumbnails)
	for _, bs := range benchSpecs {
		spec := bs.spec
		spec.WebP = true
		b.Run(bs.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				th, err := g.Generate(context.Background(), bytes.NewReader(jpg), int64(len(jpg)), spec)
				if err != nil {
					b.Fatal(err)
				}
				size = len(th.Data)
			}
			b.ReportMetric(float64(size), "bytes/thumbnail")
		})
	}
}

func benchGenerate(b *testing.B, data []byte) {
	g := thumbnails.New(config.Default().Thumbnails)
	for _, bs := range benchSpecs {
		b.Run(bs.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				th, err := g.Generate(context.Background(), bytes.NewReader(data), int64(len(data)), bs.spec)
				if err != nil {
					b.Fatal(err)
				}
				size = len(th.Data)
			}
			b.ReportMetric(float64(size), "bytes/thumbnail")
		})
	}
}

// BenchmarkReferenceStraightforward is the reference path for the same JPEG:
// image/jpeg decode, imaging.Fill with Lanczos, encode.
func BenchmarkReferenceStraightforward(b *testing.B) {
	jpg, _ := sources()
	b.Run("jpeg-320x240crop", func(b *testing.B) {
		for b.Loop() {
			img, err := jpeg.Decode(bytes.NewReader(jpg))
			if err != nil {
				b.Fatal(err)
			}
			out := imaging.Fill(img, 320, 240, imaging.Center, imaging.Lanczos)
			if err := jpeg.Encode(&bytes.Buffer{}, out, &jpeg.Options{Quality: 85}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-only", func(b *testing.B) {
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(jpg)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReferenceVips runs Debian's vipsthumbnail (libvips-tools) on the
// same JPEG, whole process; skipped where it is not installed.
func BenchmarkReferenceVips(b *testing.B) {
	vips, err := exec.LookPath("vipsthumbnail")
	if err != nil {
		b.Skip("vipsthumbnail not installed (apt-get install libvips-tools)")
	}
	jpg, _ := sources()
	dir := b.TempDir()
	src := filepath.Join(dir, "src.jpg")
	os.WriteFile(src, jpg, 0o600)
	for b.Loop() {
		out, err := exec.Command(vips, src, "-s", "320x240", "-m", "centre", "-o", filepath.Join(dir, "out.jpg[Q=85]")).CombinedOutput()
		if err != nil {
			b.Fatalf("vipsthumbnail: %v %s", err, out)
		}
	}
}
