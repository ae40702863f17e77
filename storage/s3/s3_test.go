package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/s3"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// shared is the server the tests that do not stop it share; each test
// works in buckets of its own.
var shared *storagetest.S3Server

func TestMain(m *testing.M) {
	os.Exit(storagetest.WithS3(m, &shared))
}

func TestBlobStore(t *testing.T) {
	srv := shared
	storagetest.RunBlobStore(t, func(t *testing.T) storage.BlobStore { return srv.Open(t, nil) })
}

// counting counts the requests a store makes, by method.
type counting struct {
	gets, puts, heads atomic.Int32
	ranges            atomic.Int32
	next              http.RoundTripper
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.Method {
	case http.MethodGet:
		c.gets.Add(1)
		if r.Header.Get("Range") != "" {
			c.ranges.Add(1)
		}
	case http.MethodPut:
		c.puts.Add(1)
	case http.MethodHead:
		c.heads.Add(1)
	}
	return c.next.RoundTrip(r)
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadsAndWrites: a whole read is one GET, a seek a ranged GET; a blob
// over the part size goes up in parts and comes back whole; keys honour
// prefixLength.
func TestReadsAndWrites(t *testing.T) {
	srv := shared
	ctx := context.Background()
	c := &counting{next: http.DefaultTransport}
	st := srv.Open(t, c)
	big := randomBytes(t, 40<<20) // three parts of 16 MiB
	sum, size, err := storage.Put(ctx, st, bytes.NewReader(big))
	if err != nil || size != int64(len(big)) {
		t.Fatalf("Put = %s %d, %v", sum, size, err)
	}
	if c.puts.Load() < 3 {
		t.Errorf("a 40 MiB blob went up in %d PUTs, want parts", c.puts.Load())
	}
	c.gets.Store(0)
	r, err := st.Open(ctx, sum)
	if err != nil {
		t.Fatal(err)
	}
	if end, err := r.Seek(0, io.SeekEnd); err != nil || end != int64(len(big)) {
		t.Errorf("Seek(end) = %d, %v", end, err)
	}
	r.Seek(0, io.SeekStart)
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if n := c.gets.Load(); n != 1 {
		t.Errorf("a whole read made %d GETs, want 1", n)
	}
	// A range, as http.ServeContent asks for one.
	r, _ = st.Open(ctx, sum)
	r.Seek(30<<20, io.SeekStart)
	part := make([]byte, 1000)
	if _, err := io.ReadFull(r, part); err != nil || !bytes.Equal(part, big[30<<20:30<<20+1000]) {
		t.Errorf("ranged read = %v", err)
	}
	r.Close()
	if c.ranges.Load() == 0 {
		t.Error("a seek made no ranged GET")
	}

	o := srv.Options(t, srv.NewBucket(t))
	o.PrefixLength = 3
	prefixed, err := s3.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	sum, _, err = storage.Put(ctx, prefixed, strings.NewReader("prefixed"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.Endpoint + "/" + o.Bucket + "/" + sum[:3] + "/" + sum)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Errorf("no object at %s/%s", sum[:3], sum)
	}
}

// TestUploadMemory: a 30 MiB blob goes up without the process holding it
// in memory.
func TestUploadMemory(t *testing.T) {
	srv := shared
	st := srv.Open(t, nil)
	body := randomBytes(t, 30<<20)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, _, err := storage.Put(context.Background(), st, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 30<<20 {
		t.Errorf("a 30 MiB upload allocated %d MiB, more than its size", allocated>>20)
	}
}

// TestOutage: with the server stopped, every call fails fast as
// ErrUnavailable (an answer, not a hang); once it is back, they work.
func TestOutage(t *testing.T) {
	srv := storagetest.StartS3(t)
	ctx := context.Background()
	st := srv.Open(t, nil)
	sum, _, err := storage.Put(ctx, st, strings.NewReader("before the outage"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for name, call := range map[string]func() error{
		"open":   func() error { _, err := st.Open(ctx, sum); return err },
		"put":    func() error { _, _, err := storage.Put(ctx, st, strings.NewReader("during")); return err },
		"check":  func() error { return st.Check(ctx) },
		"delete": func() error { return st.Delete(ctx, sum) },
	} {
		start := time.Now()
		err := call()
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s during the outage = %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("%s took %s to fail", name, d)
		}
	}
	srv.Start(t)
	r, err := st.Open(ctx, sum)
	if err != nil {
		t.Fatalf("open after the outage: %v", err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "before the outage" {
		t.Errorf("after the outage: %q", b)
	}
}

// TestRedirects: the public base URL takes media shown inline; presigned
// URLs take the rest, carrying type and disposition, and work.
func TestRedirects(t *testing.T) {
	srv := shared
	ctx := context.Background()
	o := srv.Options(t, srv.NewBucket(t))
	o.PublicBaseURL = "https://cdn.example.org/media/"
	o.PresignSeconds = 300
	st, err := s3.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	sum, _, err := storage.Put(ctx, st, strings.NewReader("<html>not inline</html>"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.RedirectURL(ctx, sum, storage.RedirectHeaders{ContentType: "image/png", ContentDisposition: "inline", Inline: true})
	if err != nil || u != "https://cdn.example.org/media/"+sum {
		t.Errorf("inline redirect = %q, %v", u, err)
	}
	u, err = st.RedirectURL(ctx, sum, storage.RedirectHeaders{ContentType: "text/html", ContentDisposition: "attachment; filename=x.html"})
	if err != nil || !strings.HasPrefix(u, "http://"+srv.Endpoint+"/") {
		t.Fatalf("attachment redirect = %q, %v", u, err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "<html>not inline</html>" ||
		resp.Header.Get("Content-Disposition") != "attachment; filename=x.html" || resp.Header.Get("Content-Type") != "text/html" {
		t.Errorf("presigned GET = %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if q, _ := url.ParseQuery(strings.SplitN(u, "?", 2)[1]); q.Get("X-Amz-Expires") != "300" {
		t.Errorf("presigned URL lives %s s, want 300", q.Get("X-Amz-Expires"))
	}
	o.PublicBaseURL, o.PresignSeconds = "", 0
	plain, _ := s3.Open(ctx, o)
	if u, err := plain.RedirectURL(ctx, sum, storage.RedirectHeaders{Inline: true}); u != "" || err != nil {
		t.Errorf("without publicBaseUrl or presigning: %q, %v; want no redirect", u, err)
	}
}

// TestMissingBucket: a bucket that does not exist stops start-up with why.
func TestMissingBucket(t *testing.T) {
	srv := shared
	o := srv.Options(t, "no-such-bucket")
	if _, err := s3.Open(context.Background(), o); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("open = %v", err)
	}
	o = srv.Options(t, srv.NewBucket(t))
	o.AccessSecret = "wrong"
	if _, err := s3.Open(context.Background(), o); err == nil {
		t.Error("wrong credentials opened")
	}
}
