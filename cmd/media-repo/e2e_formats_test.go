//go:build e2e

package main

import (
	"bytes"
	"context"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "golang.org/x/image/webp"
)

// checkFormats: with video and audio opted in and preferWebp on, what
// mautrix-go uploads through nginx gets its thumbnails made by the real
// ffmpeg: a JPEG still of an MP4 recorded phone-style (index last), a PNG
// waveform of an Opus voice message; a client naming image/webp gets WebP
// and the answer, through the proxy, says it varies by Accept.
func checkFormats(t *testing.T, hs *dendrite, bin string, png []byte) {
	repo := startRepoWith(t, bin, hs.port, "sqlite", true, `thumbnails:
  types: [image/jpeg, image/png, video/mp4, audio/ogg]
  preferWebp: true
  maxSourceBytes: 0`)
	c := newE2EClient(t, startProxy(t, "nginx", repo.port, hs.port, true), true)
	cli := c.mautrix(t, "alice", "alice-password")
	ctx := context.Background()
	dir := t.TempDir()
	encode := func(name string, args ...string) []byte {
		cmd := exec.Command("ffmpeg", append(append([]string{"-loglevel", "error", "-y"}, args...), filepath.Join(dir, name))...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %s: %v %s", name, err, out)
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	video := encode("clip.mp4", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=3", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "6M")
	voice := encode("voice.ogg", "-f", "lavfi", "-i", "sine=f=300:d=5", "-c:a", "libopus")

	thumb := func(mxc, accept string) (*http.Response, []byte) {
		t.Helper()
		path := "/_matrix/client/v1/media/thumbnail/" + strings.TrimPrefix(mxc, "mxc://") + "?width=320&height=240&method=scale"
		h := map[string]string{}
		if accept != "" {
			h["Accept"] = accept
		}
		return c.do(t, "GET", path, cli.AccessToken, nil, h)
	}
	for _, tc := range []struct {
		name, contentType string
		data              []byte
		wantType          string
		wantW, wantH      int
	}{
		{"mp4", "video/mp4", video, "image/jpeg", 320, 180},
		{"opus voice message", "audio/ogg", voice, "image/png", 320, 240},
	} {
		up, err := cli.UploadBytesWithName(ctx, tc.data, tc.contentType, tc.name)
		if err != nil {
			t.Fatalf("%s upload: %v", tc.name, err)
		}
		resp, body := thumb(up.ContentURI.String(), "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.wantType {
			t.Fatalf("%s thumbnail = %d %s %.200s", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != tc.wantW || cfg.Height != tc.wantH {
			t.Errorf("%s thumbnail %dx%d (%v), want %dx%d", tc.name, cfg.Width, cfg.Height, err, tc.wantW, tc.wantH)
		}
		resp, body = thumb(up.ContentURI.String(), "image/avif,image/webp,image/apng,image/*,*/*;q=0.8")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/webp" || !strings.Contains(resp.Header.Get("Vary"), "Accept") {
			t.Errorf("%s thumbnail for a browser = %d %s Vary %q", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Vary"))
		} else if cfg, format, err := image.DecodeConfig(bytes.NewReader(body)); err != nil || format != "webp" || cfg.Width != tc.wantW {
			t.Errorf("%s WebP thumbnail: %s %dx%d %v", tc.name, format, cfg.Width, cfg.Height, err)
		}
		if got, err := cli.DownloadBytes(ctx, up.ContentURI); err != nil || !bytes.Equal(got, tc.data) {
			t.Errorf("%s download: %d bytes, %v", tc.name, len(got), err)
		}
	}
	// A PNG still thumbnails as before, JPEG for a client without WebP.
	up, err := cli.UploadBytesWithName(ctx, png, "image/png", "still.png")
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := thumb(up.ContentURI.String(), "*/*"); resp.Header.Get("Content-Type") == "image/webp" {
		t.Error("a client accepting */* got WebP")
	}
}
