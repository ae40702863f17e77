package api_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	_ "image/gif"
	"image/jpeg"
	"image/png"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// photo is an opaque w x h PNG with a red left half and a blue right half.
func photo(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBA{255, 0, 0, 255}
			if x >= w/2 {
				c = color.NRGBA{0, 0, 255, 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func decodeImage(t *testing.T, body []byte) (image.Image, string) {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("thumbnail does not decode: %v (%d bytes)", err, len(body))
	}
	return img, format
}

func TestThumbnail(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, nil)
		id := ts.mustUpload(t, photo(t, 400, 300), "image/png", "photo.png")
		tests := map[string]struct {
			query        string
			wantW, wantH int
		}{
			"crop 96":           {"width=96&height=96&method=crop", 96, 96},
			"scale 320x240":     {"width=320&height=240&method=scale", 320, 240},
			"default method":    {"width=320&height=240", 320, 240},
			"picked size":       {"width=50&height=50&method=crop", 96, 96},
			"unstable animated": {"width=32&height=32&method=crop&org.matrix.msc2705.animated=true", 32, 32},
		}
		for name, tt := range tests {
			t.Run(name, func(t *testing.T) {
				resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?"+tt.query, nil, withToken(aliceToken))
				if resp.StatusCode != 200 {
					t.Fatalf("status = %d %s", resp.StatusCode, body)
				}
				img, format := decodeImage(t, body)
				if b := img.Bounds(); b.Dx() != tt.wantW || b.Dy() != tt.wantH {
					t.Errorf("size = %dx%d, want %dx%d", b.Dx(), b.Dy(), tt.wantW, tt.wantH)
				}
				if format != "jpeg" || resp.Header.Get("Content-Type") != "image/jpeg" {
					t.Errorf("format %s, Content-Type %q; want JPEG for an opaque source", format, resp.Header.Get("Content-Type"))
				}
				if cd := resp.Header.Get("Content-Disposition"); cd != "inline; filename=thumbnail.jpg" {
					t.Errorf("Content-Disposition = %q", cd)
				}
				if r, _, b, _ := img.At(2, img.Bounds().Dy()/2).RGBA(); r>>8 < 200 || b>>8 > 60 {
					t.Errorf("left edge is not red")
				}
				if resp.Header.Get("ETag") == "" || resp.Header.Get("Content-Security-Policy") == "" {
					t.Errorf("thumbnail lacks media headers: %v", resp.Header)
				}
			})
		}
	})
}

func TestThumbnailConditionalAndHead(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	id := ts.mustUpload(t, photo(t, 400, 300), "image/png", "")
	path := "/_matrix/client/v1/media/thumbnail/example.org/" + id + "?width=96&height=96&method=crop"
	resp, body := ts.do(t, "GET", path, nil, withToken(aliceToken))
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	resp2, body2 := ts.do(t, "GET", path, nil, withToken(aliceToken), withHeader("If-None-Match", resp.Header.Get("ETag")))
	if resp2.StatusCode != 304 || len(body2) != 0 {
		t.Errorf("conditional = %d, want 304", resp2.StatusCode)
	}
	resp3, body3 := ts.do(t, "HEAD", path, nil, withToken(aliceToken))
	if resp3.StatusCode != 200 || len(body3) != 0 || resp3.ContentLength != int64(len(body)) {
		t.Errorf("HEAD = %d, length %d; want 200, %d", resp3.StatusCode, resp3.ContentLength, len(body))
	}
	resp4, body4 := ts.do(t, "GET", path, nil, withToken(aliceToken), withHeader("Range", "bytes=0-9"))
	if resp4.StatusCode != 206 || !bytes.Equal(body4, body[:10]) {
		t.Errorf("ranged = %d %d bytes", resp4.StatusCode, len(body4))
	}
}

func TestThumbnailLegacyAndFreeze(t *testing.T) {
	for name, freeze := range map[string]bool{"frozen": true, "not frozen": false} {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, "sqlite", func(c *config.Config) { c.Repo.FreezeUnauthenticatedMedia = freeze })
			id := ts.mustUpload(t, photo(t, 400, 300), "image/png", "")
			want := 200
			if freeze {
				want = 404
			}
			for _, v := range []string{"r0", "v1", "v3"} {
				resp, body := ts.do(t, "GET", "/_matrix/media/"+v+"/thumbnail/example.org/"+id+"?width=32&height=32&method=crop", nil)
				if resp.StatusCode != want {
					t.Errorf("legacy %s = %d %s, want %d", v, resp.StatusCode, body, want)
				}
			}
		})
	}
}

func TestThumbnailOriginalWhenSmaller(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	small := photo(t, 20, 20)
	id := ts.mustUpload(t, small, "image/png", "tiny.png")
	resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?width=96&height=96&method=crop", nil, withToken(aliceToken))
	if resp.StatusCode != 200 || !bytes.Equal(body, small) {
		t.Fatalf("status %d, %d bytes; want the %d-byte original", resp.StatusCode, len(body), len(small))
	}
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "image/png" || cd != "inline; filename=tiny.png" {
		t.Errorf("Content-Type %q, Content-Disposition %q", ct, cd)
	}
}

func TestThumbnailErrors(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	img := ts.mustUpload(t, photo(t, 100, 100), "image/png", "")
	text := ts.mustUpload(t, []byte("just some text, not an image"), "text/plain", "")
	svg := ts.mustUpload(t, []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="900" height="900"/>`), "image/svg+xml", "")
	bomb := ts.mustUpload(t, pngBomb(100000, 100000), "image/png", "")
	liar := ts.mustUpload(t, photo(t, 100, 100), "text/plain", "")
	base := "/_matrix/client/v1/media/thumbnail/example.org/"
	tests := map[string]struct {
		path        string
		token       bool
		wantStatus  int
		wantErrcode string
	}{
		"auth before params":  {base + img, false, 401, "M_MISSING_TOKEN"},
		"missing width":       {base + img + "?height=32", true, 400, "M_MISSING_PARAM"},
		"missing height":      {base + img + "?width=32", true, 400, "M_MISSING_PARAM"},
		"non-integer width":   {base + img + "?width=abc&height=32", true, 400, "M_INVALID_PARAM"},
		"negative height":     {base + img + "?width=32&height=-5", true, 400, "M_INVALID_PARAM"},
		"zero width":          {base + img + "?width=0&height=32", true, 400, "M_INVALID_PARAM"},
		"bad method":          {base + img + "?width=32&height=32&method=zoom", true, 400, "M_INVALID_PARAM"},
		"bad animated":        {base + img + "?width=32&height=32&animated=yes", true, 400, "M_INVALID_PARAM"},
		"bad timeout":         {base + img + "?width=32&height=32&timeout_ms=x", true, 400, "M_INVALID_PARAM"},
		"text":                {base + text + "?width=32&height=32", true, 400, "M_UNKNOWN"},
		"svg is not rendered": {base + svg + "?width=32&height=32", true, 400, "M_UNKNOWN"},
		"pixel bomb":          {base + bomb + "?width=32&height=32", true, 413, "M_TOO_LARGE"},
		"unknown media":       {base + "nope?width=32&height=32", true, 404, "M_NOT_FOUND"},
		"remote media":        {"/_matrix/client/v1/media/thumbnail/matrix.org/abc?width=32&height=32", true, 404, "M_NOT_FOUND"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var opts []reqOpt
			if tt.token {
				opts = append(opts, withToken(aliceToken))
			}
			resp, body := ts.do(t, "GET", tt.path, nil, opts...)
			wantError(t, resp, body, tt.wantStatus, tt.wantErrcode)
		})
	}
	// The claimed type does not matter: the bytes are sniffed.
	resp, _ := ts.do(t, "GET", base+liar+"?width=32&height=32&method=crop", nil, withToken(aliceToken))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("PNG uploaded as text/plain = %d %q, want a JPEG thumbnail", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// pngBomb is a PNG header claiming w x h, with no pixel data.
func pngBomb(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6
	c := make([]byte, 8, 25)
	binary.BigEndian.PutUint32(c, 13)
	copy(c[4:], "IHDR")
	c = append(c, ihdr...)
	c = binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
	return append([]byte("\x89PNG\r\n\x1a\n"), c...)
}

func TestThumbnailGeneratedOnce(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		// Dynamic sizing, and a size no upload pre-generates.
		ts := newTestServer(t, backend, func(c *config.Config) { c.Thumbnails.DynamicSizing = true })
		id := ts.mustUpload(t, photo(t, 400, 300), "image/png", "")
		waitForPregeneration(t, ts, 2) // 96x96 crop, 320x240 scale; 800x600 is the original
		before := ts.meta.ThumbnailInserts()

		const n = 50
		bodies := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?width=50&height=70&method=crop", nil, withToken(aliceToken))
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
				bodies[i] = body
			}()
		}
		wg.Wait()
		if got := ts.meta.ThumbnailInserts() - before; got != 1 {
			t.Errorf("%d simultaneous first requests made %d thumbnails, want 1", n, got)
		}
		for i := 1; i < n; i++ {
			if !bytes.Equal(bodies[i], bodies[0]) {
				t.Fatalf("response %d differs from response 0", i)
			}
		}
		img, _ := decodeImage(t, bodies[0])
		if b := img.Bounds(); b.Dx() != 50 || b.Dy() != 70 {
			t.Errorf("dynamic size = %v, want 50x70", b)
		}
	})
}

// waitForPregeneration waits until the background workers stored n thumbnails.
func waitForPregeneration(t *testing.T, ts *testServer, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ts.meta.ThumbnailInserts() >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("only %d thumbnails pre-generated, want %d", ts.meta.ThumbnailInserts(), n)
}

func TestThumbnailsPregenerated(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	id := ts.mustUpload(t, photo(t, 850, 650), "image/png", "")
	waitForPregeneration(t, ts, 3)
	inserts := ts.meta.ThumbnailInserts()
	if inserts != 3 {
		t.Errorf("pre-generated %d thumbnails, want the 3 of thumbnails.pregenerate", inserts)
	}
	// A client's first view is a cache hit: nothing more is generated.
	for _, q := range []string{"width=800&height=600&method=scale", "width=64&height=64&method=crop", "width=300&height=200&method=scale"} {
		resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?"+q, nil, withToken(aliceToken))
		if resp.StatusCode != 200 {
			t.Fatalf("%s = %d %s", q, resp.StatusCode, body)
		}
	}
	if ts.meta.ThumbnailInserts() != inserts {
		t.Errorf("first views generated %d more thumbnails, want 0", ts.meta.ThumbnailInserts()-inserts)
	}
}

func TestThumbnailOfGreyJPEG(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	var b bytes.Buffer
	jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 500, 500)), nil)
	id := ts.mustUpload(t, b.Bytes(), "image/jpeg", "")
	resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?width=96&height=96&method=crop", nil, withToken(aliceToken))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("grey JPEG thumbnail = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestThumbnailTwoProcessesOneDatabase(t *testing.T) {
	// Two servers on one PostgreSQL schema and one datastore, as two
	// processes behind a load balancer: racing first requests for one
	// thumbnail all succeed, and all get the one stored thumbnail.
	meta := storagetest.OpenPostgres(t)
	blobDir := filepath.Join(t.TempDir(), "blobs")
	dynamic := func(c *config.Config) { c.Thumbnails.DynamicSizing = true }
	a := newTestServerOn(t, meta, blobDir, dynamic)
	b := newTestServerOn(t, meta, blobDir, dynamic)
	id := a.mustUpload(t, photo(t, 400, 300), "image/png", "")

	const n = 20
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		ts := a
		if i%2 == 1 {
			ts = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?width=60&height=40&method=crop", nil, withToken(aliceToken))
			if resp.StatusCode != 200 {
				t.Errorf("request %d: status %d %s", i, resp.StatusCode, body)
			}
			bodies[i] = body
		}()
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("response %d differs from response 0: both processes served their own thumbnail", i)
		}
	}
}
