package api_test

import (
	"bytes"
	"crypto/rand"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/thumbnails/thumbnailstest"
)

// BenchmarkDownload measures an authenticated 10 KiB download through the
// whole handler chain (token and metadata cached, access line written), next
// to BenchmarkServeContentBare, the floor set by net/http itself.
func BenchmarkDownload(b *testing.B) {
	ts := newTestServer(b, "sqlite", nil)
	content := make([]byte, 10<<10)
	rand.Read(content)
	id := ts.mustUpload(b, content, "image/png", "bench.png")
	handler := ts.Config.Handler
	// Access lines go to a real file, as in production.
	f, err := os.CreateTemp(b.TempDir(), "log")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ts.log.SetOutput(f)
	ts.log.SetLevel(logrus.InfoLevel)

	req := httptest.NewRequest("GET", "/_matrix/client/v1/media/download/example.org/"+id, nil)
	req.Host = "example.org"
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := newDiscardWriter()
		handler.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}

func BenchmarkServeContentBare(b *testing.B) {
	path := b.TempDir() + "/blob"
	content := make([]byte, 10<<10)
	rand.Read(content)
	os.WriteFile(path, content, 0o600)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		w.Header().Set("Content-Type", "image/png")
		http.ServeContent(w, r, "", time.Time{}, f)
	})
	req := httptest.NewRequest("GET", "/x", nil)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := newDiscardWriter()
		handler.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkUpload20MiB measures one 20 MiB upload: read, hash, write, fsync,
// rename, insert.
func BenchmarkUpload20MiB(b *testing.B) {
	ts := newTestServer(b, "sqlite", nil)
	ts.log.SetOutput(io.Discard)
	body := bytes.Repeat([]byte("m"), 20<<20)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("POST", "/_matrix/media/v3/upload", bytes.NewReader(body))
		req.Host = "example.org"
		req.Header.Set("Authorization", "Bearer "+aliceToken)
		w := newDiscardWriter()
		ts.Config.Handler.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}

// discardWriter is a ResponseWriter that keeps only the status, so the
// benchmark measures the server rather than a recorder's buffer.
type discardWriter struct {
	h      http.Header
	status int
}

func newDiscardWriter() *discardWriter { return &discardWriter{h: http.Header{}} }

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = 200
	}
	return len(p), nil
}
func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}

// BenchmarkThumbnailCached serves a stored 96x96 thumbnail through the whole
// handler chain.
func BenchmarkThumbnailCached(b *testing.B) {
	ts := newTestServer(b, "sqlite", nil)
	ts.log.SetOutput(io.Discard)
	id := ts.mustUpload(b, photo(b, 400, 300), "image/png", "")
	req := httptest.NewRequest("GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?width=96&height=96&method=crop", nil)
	req.Host = "example.org"
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	handler := ts.Config.Handler
	handler.ServeHTTP(newDiscardWriter(), req) // generate it once
	b.ReportAllocs()
	for b.Loop() {
		w := newDiscardWriter()
		handler.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkUploadThenFirstThumbnail uploads a 4000x3000 photo-like JPEG and
// at once asks for the 800x600 thumbnail Element shows: the first view waits
// for (or joins) the background generation started by the upload. The
// first-view metric is the thumbnail request alone.
func BenchmarkUploadThenFirstThumbnail(b *testing.B) {
	ts := newTestServer(b, "sqlite", nil)
	ts.log.SetOutput(io.Discard)
	var src bytes.Buffer
	jpeg.Encode(&src, thumbnailstest.PhotoLike(4000, 3000), &jpeg.Options{Quality: 90})
	var firstView time.Duration
	for i := 0; b.Loop(); i++ {
		body := append(src.Bytes()[:len(src.Bytes()):len(src.Bytes())], byte(i)) // new bytes each time
		id := ts.mustUpload(b, body, "image/jpeg", "")
		start := time.Now()
		resp, _ := ts.do(b, "GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?width=800&height=600&method=scale", nil, withToken(aliceToken))
		firstView += time.Since(start)
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(firstView.Milliseconds())/float64(b.N), "first-view-ms/op")
}
