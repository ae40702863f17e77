package api_test

import (
	"bytes"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "golang.org/x/image/webp" // decodes the WebP thumbnails

	"github.com/mediarepo/mediarepo/config"
)

// With preferWebp, a client naming image/webp in Accept gets WebP; every
// other client JPEG; the answer says it varies by Accept. Both kinds of the
// pre-generated sizes are made at upload.
func TestThumbnailWebPNegotiated(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, func(c *config.Config) { c.Thumbnails.PreferWebP = true })
		id := ts.mustUpload(t, photo(t, 850, 650), "image/png", "photo.png")
		waitForPregeneration(t, ts, 6)
		if n := ts.meta.ThumbnailInserts(); n != 6 {
			t.Errorf("pre-generated %d thumbnails, want 3 sizes x (JPEG, WebP)", n)
		}
		path := "/_matrix/client/v1/media/thumbnail/example.org/" + id + "?width=320&height=240&method=scale"
		tests := map[string]struct {
			accept, wantType, wantFormat string
		}{
			"browser":       {"image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "image/webp", "webp"},
			"webp only":     {"image/webp", "image/webp", "webp"},
			"any":           {"*/*", "image/jpeg", "jpeg"},
			"image/*":       {"image/*", "image/jpeg", "jpeg"},
			"none":          {"", "image/jpeg", "jpeg"},
			"webp refused":  {"image/webp;q=0, */*", "image/jpeg", "jpeg"},
			"webp weighted": {"image/png, image/webp; q=0.5", "image/webp", "webp"},
		}
		for name, tt := range tests {
			t.Run(name, func(t *testing.T) {
				var opts []reqOpt
				if tt.accept != "" {
					opts = append(opts, withHeader("Accept", tt.accept))
				}
				resp, body := ts.do(t, "GET", path, nil, append(opts, withToken(aliceToken))...)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d %s", resp.StatusCode, body)
				}
				img, format := decodeImage(t, body)
				if ct := resp.Header.Get("Content-Type"); ct != tt.wantType || format != tt.wantFormat {
					t.Errorf("Content-Type %s, bytes %s; want %s", ct, format, tt.wantType)
				}
				if b := img.Bounds(); b.Dx() != 313 || b.Dy() != 240 { // 850x650 in 320x240
					t.Errorf("size %v", b)
				}
				if !strings.Contains(resp.Header.Get("Vary"), "Accept") {
					t.Errorf("Vary = %q, want Accept", resp.Header.Get("Vary"))
				}
				ext := map[string]string{"webp": "webp", "jpeg": "jpg"}[format]
				if cd := resp.Header.Get("Content-Disposition"); cd != "inline; filename=thumbnail."+ext {
					t.Errorf("Content-Disposition %q", cd)
				}
			})
		}
		if n := ts.meta.ThumbnailInserts(); n != 6 {
			t.Errorf("%d thumbnails stored after the requests, want the 6 pre-generated", n)
		}
	})
}

func TestThumbnailNoWebPUnlessPreferred(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	id := ts.mustUpload(t, photo(t, 400, 300), "image/png", "")
	resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?width=96&height=96&method=crop",
		nil, withToken(aliceToken), withHeader("Accept", "image/webp,*/*"))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || resp.Header.Get("Vary") != "" {
		t.Errorf("status %d, Content-Type %s, Vary %q; want JPEG without Vary", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Vary"))
	}
}

// testVideo is a 2 s 320x240 MP4, red left, blue right, made by ffmpeg.
func testVideo(t *testing.T) []byte {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg not found: run make test-deps: %v", err)
	}
	out := filepath.Join(t.TempDir(), "v.mp4")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
		"color=c=red:s=320x240:r=10:d=2,drawbox=x=160:y=0:w=160:h=240:color=blue:t=fill", "-pix_fmt", "yuv420p", "-c:v", "libx264", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestThumbnailOfVideo(t *testing.T) {
	video := testVideo(t)
	path := func(id string) string {
		return "/_matrix/client/v1/media/thumbnail/example.org/" + id + "?width=96&height=96&method=crop"
	}
	t.Run("with ffmpeg", func(t *testing.T) {
		ts := newTestServer(t, "sqlite", func(c *config.Config) {
			c.Thumbnails.Types = append(c.Thumbnails.Types, "video/mp4")
		})
		id := ts.mustUpload(t, video, "video/mp4", "clip.mp4")
		resp, body := ts.do(t, "GET", path(id), nil, withToken(aliceToken))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("status %d, %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		img, _ := decodeImage(t, body)
		if b := img.Bounds(); b != image.Rect(0, 0, 96, 96) {
			t.Errorf("size %v", b)
		}
		if r, _, b, _ := img.At(5, 48).RGBA(); r>>8 < 180 || b>>8 > 80 {
			t.Error("left of the still is not red")
		}
		// The download is the video itself, as uploaded.
		resp, body = ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken))
		if resp.StatusCode != 200 || !bytes.Equal(body, video) {
			t.Errorf("download %d, %d bytes", resp.StatusCode, len(body))
		}
	})
	t.Run("without ffmpeg", func(t *testing.T) {
		ts := newTestServer(t, "sqlite", func(c *config.Config) {
			c.Thumbnails.Types = append(c.Thumbnails.Types, "video/mp4")
			c.Thumbnails.FFmpeg.Path = "/nonexistent/ffmpeg"
		})
		id := ts.mustUpload(t, video, "video/mp4", "clip.mp4")
		resp, body := ts.do(t, "GET", path(id), nil, withToken(aliceToken))
		wantError(t, resp, body, 400, "M_UNKNOWN")
	})
	t.Run("not opted in", func(t *testing.T) {
		ts := newTestServer(t, "sqlite", nil)
		id := ts.mustUpload(t, video, "video/mp4", "clip.mp4")
		resp, body := ts.do(t, "GET", path(id), nil, withToken(aliceToken))
		wantError(t, resp, body, 400, "M_UNKNOWN")
	})
}
