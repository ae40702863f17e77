package pngscale_test

import (
	"bufio"
	"bytes"
	"context"
	"image/png"
	"testing"

	"github.com/mediarepo/mediarepo/thumbnails/pngscale"
	"github.com/mediarepo/mediarepo/thumbnails/thumbnailstest"
)

// BenchmarkDecode2000 decodes a photo-like 2000x2000 RGBA PNG at each factor,
// with image/png at full size as the reference.
func BenchmarkDecode2000(b *testing.B) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, thumbnailstest.PhotoLike(2000, 2000)); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	for _, k := range []int{1, 3, 8} {
		b.Run("pngscale-1/"+string(rune('0'+k)), func(b *testing.B) {
			for b.Loop() {
				if _, err := pngscale.Decode(context.Background(), bytes.NewReader(data), k); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("image-png", func(b *testing.B) {
		for b.Loop() {
			if _, err := png.Decode(bufio.NewReader(bytes.NewReader(data))); err != nil {
				b.Fatal(err)
			}
		}
	})
}
