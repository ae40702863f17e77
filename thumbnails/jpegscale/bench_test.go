package jpegscale_test

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"sync"
	"testing"

	"github.com/mediarepo/mediarepo/thumbnails/jpegscale"
)

// photo12MP is a 4000x3000 JPEG at quality 90, as a phone writes them.
var photo12MP = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	jpeg.Encode(&b, photo(4000, 3000, 7), &jpeg.Options{Quality: 90})
	return b.Bytes()
})

func BenchmarkDecode12MP(b *testing.B) {
	data := photo12MP()
	for _, scale := range []int{8, 4, 2, 1} {
		b.Run(fmt.Sprintf("jpegscale-1:%d", scale), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jpegscale.Decode(context.Background(), data, scale); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("image-jpeg", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
