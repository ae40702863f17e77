package api_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"testing"

	"github.com/buckket/go-blurhash"

	"github.com/mediarepo/mediarepo/config"
)

// average is an image's mean colour.
func average(img image.Image) (r, g, b float64) {
	bounds := img.Bounds()
	n := float64(bounds.Dx() * bounds.Dy())
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			r, g, b = r+float64(cr>>8)/n, g+float64(cg>>8)/n, b+float64(cb>>8)/n
		}
	}
	return r, g, b
}

// halves is a PNG whose left half is red and right half blue.
func halves(t *testing.T) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 600, 400))
	for y := 0; y < 400; y++ {
		for x := 0; x < 600; x++ {
			c := color.NRGBA{220, 30, 30, 255}
			if x >= 300 {
				c = color.NRGBA{30, 30, 220, 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// TestBlurhash: with featureSupport.MSC2448, an uploaded image is answered
// with its blurhash (xyz.amorgan.blurhash), which decodes to the image's
// colours where they are, and /info gives the same; other files and
// servers without the feature have none.
func TestBlurhash(t *testing.T) {
	ts := newTestServer(t, "sqlite", func(c *config.Config) { c.FeatureSupport.MSC2448.Enabled = true })
	img := halves(t)
	resp, body := ts.do(t, "POST", "/_matrix/media/v3/upload", bytes.NewReader(img), withToken(carolToken), withHeader("Content-Type", "image/png"))
	var up map[string]string
	if err := json.Unmarshal(body, &up); err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload = %d %s", resp.StatusCode, body)
	}
	hash := up["xyz.amorgan.blurhash"]
	if x, y, err := blurhash.Components(hash); err != nil || x != 4 || y != 3 {
		t.Fatalf("blurhash %q: %d x %d components, %v; want 4 x 3", hash, x, y, err)
	}
	decoded, err := blurhash.Decode(hash, 60, 40, 1)
	if err != nil {
		t.Fatal(err)
	}
	left := decoded.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(0, 0, 20, 40))
	right := decoded.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(40, 0, 60, 40))
	if r, _, b := average(left); r < b+60 {
		t.Errorf("left third of the decoded blurhash is r %.0f b %.0f; want red", r, b)
	}
	if r, _, b := average(right); b < r+60 {
		t.Errorf("right third of the decoded blurhash is r %.0f b %.0f; want blue", r, b)
	}

	id := up["content_uri"][len("mxc://example.org/"):]
	var info map[string]any
	ts.adminJSON(t, asUploader, "GET", "/_matrix/media/unstable/info/example.org/"+id, &info)
	if info["xyz.amorgan.blurhash"] != hash {
		t.Errorf("info blurhash = %v, want %q", info["xyz.amorgan.blurhash"], hash)
	}

	resp, body = ts.do(t, "POST", "/_matrix/media/v3/upload", bytes.NewReader([]byte("not an image")), withToken(carolToken))
	if resp.StatusCode != 200 || bytes.Contains(body, []byte("blurhash")) {
		t.Errorf("text upload = %d %s, want no blurhash", resp.StatusCode, body)
	}

	reserved := ts.mustCreate(t, carolToken)
	if resp, body := ts.do(t, "PUT", "/_matrix/media/v3/upload/example.org/"+reserved, bytes.NewReader(img), withToken(carolToken), withHeader("Content-Type", "image/png")); resp.StatusCode != 200 {
		t.Fatalf("async upload = %d %s", resp.StatusCode, body)
	}
	ts.adminJSON(t, asUploader, "GET", "/_matrix/media/unstable/info/example.org/"+reserved, &info)
	if info["xyz.amorgan.blurhash"] != hash {
		t.Errorf("async upload's info blurhash = %v, want %q", info["xyz.amorgan.blurhash"], hash)
	}

	off := newTestServer(t, "sqlite", nil)
	resp, body = off.do(t, "POST", "/_matrix/media/v3/upload", bytes.NewReader(img), withToken(carolToken), withHeader("Content-Type", "image/png"))
	if resp.StatusCode != 200 || bytes.Contains(body, []byte("blurhash")) {
		t.Errorf("without MSC2448: %d %s, want no blurhash", resp.StatusCode, body)
	}
}

// BenchmarkUploadBlurhash is the upload of a 12 MP JPEG with and without
// MSC2448's blurhash, in one run: what computing it adds to the answer.
func BenchmarkUploadBlurhash(b *testing.B) {
	src, _, err := image.Decode(bytes.NewReader(photo(b, 4000, 3000)))
	if err != nil {
		b.Fatal(err)
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, src, &jpeg.Options{Quality: 85}); err != nil {
		b.Fatal(err)
	}
	img := jpg.Bytes()
	for _, on := range []bool{false, true} {
		ts := newTestServer(b, "sqlite", func(c *config.Config) {
			c.FeatureSupport.MSC2448.Enabled = on
			c.Thumbnails.Pregenerate = nil // only the upload's own work
		})
		ts.log.SetOutput(io.Discard)
		name := "without"
		if on {
			name = "with"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				body := bytes.Clone(img)
				body[len(body)-3] = byte(i) // new bytes each time
				resp, out := ts.do(b, "POST", "/_matrix/media/v3/upload", bytes.NewReader(body), withToken(carolToken), withHeader("Content-Type", "image/jpeg"))
				if resp.StatusCode != 200 || (on != bytes.Contains(out, []byte("blurhash"))) {
					b.Fatalf("upload = %d %s", resp.StatusCode, out)
				}
			}
		})
	}
}
