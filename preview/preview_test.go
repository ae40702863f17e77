package preview_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/netguard"
	"github.com/mediarepo/mediarepo/preview"
)

// site is the test's own web site on 127.0.0.1.
func site(t *testing.T, hits *atomic.Int32) *httptest.Server {
	img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	img.SetNRGBA(1, 1, color.NRGBA{255, 0, 0, 255})
	var pngData bytes.Buffer
	png.Encode(&pngData, img)

	mux := http.NewServeMux()
	mux.HandleFunc("/og", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html><head>
<meta property="og:title" content="  An   OpenGraph   title ">
<meta property="og:description" content="Told by OpenGraph.">
<meta property="og:image" content="/img.png">
<meta property="og:site_name" content="Test site">
<title>Ignored title</title></head><body>hi</body></html>`)
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		words := strings.Repeat("word ", 80)
		fmt.Fprintf(w, `<html><head><title>Plain page</title><meta name="description" content="%s"></head></html>`, words)
	})
	mux.HandleFunc("/img.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(pngData.Bytes())
	})
	mux.HandleFunc("/latin1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=iso-8859-1")
		w.Write([]byte("<html><head><title>caf\xe9</title></head></html>"))
	})
	mux.HandleFunc("/redirect/", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/redirect/"), "%d", &n)
		if n == 0 {
			http.Redirect(w, r, "/og", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/redirect/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html><title>x</title>"))
		w.Write(bytes.Repeat([]byte("a"), 2<<20))
	})
	mux.HandleFunc("/bomb", func(w http.ResponseWriter, r *http.Request) {
		// A few hundred kilobytes on the wire, 1 GiB once decompressed.
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		zeros := make([]byte, 1<<20)
		for range 1024 {
			if _, err := gz.Write(zeros); err != nil {
				return
			}
		}
		gz.Close()
	})
	mux.HandleFunc("/deep", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html><head><title>deep</title></head><body>"))
		w.Write(bytes.Repeat([]byte("<div>"), 200_000))
	})
	mux.HandleFunc("/pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Write([]byte("%PDF-1.7"))
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits != nil {
			hits.Add(1)
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fetcher(t *testing.T, allowed []string) *preview.Fetcher {
	cfg := config.Default().URLPreviews
	cfg.MaxPageSizeBytes = 1 << 20
	policy, err := netguard.NewPolicy(allowed, netguard.DefaultDenied())
	if err != nil {
		t.Fatal(err)
	}
	return preview.NewFetcher(cfg, policy.Client(10*time.Second, false))
}

func get(t *testing.T, f *preview.Fetcher, raw string) (*preview.Result, error) {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return f.Preview(context.Background(), u, "en")
}

func TestPreviews(t *testing.T) {
	srv := site(t, nil)
	f := fetcher(t, []string{"127.0.0.0/8"}) // the test site is on loopback, explicitly allowed

	t.Run("opengraph", func(t *testing.T) {
		res, err := get(t, f, srv.URL+"/og")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"og:title": "An OpenGraph title", "og:description": "Told by OpenGraph.", "og:site_name": "Test site"}
		if fmt.Sprint(res.OG) != fmt.Sprint(want) {
			t.Errorf("OG = %v, want %v", res.OG, want)
		}
		if res.Image == nil || res.Image.ContentType != "image/png" || res.Image.Width != 40 || res.Image.Height != 30 {
			t.Errorf("image = %+v, want the 40x30 PNG", res.Image)
		}
	})
	t.Run("title and description fallback, truncated", func(t *testing.T) {
		res, err := get(t, f, srv.URL+"/plain")
		if err != nil {
			t.Fatal(err)
		}
		if res.OG["og:title"] != "Plain page" {
			t.Errorf("og:title = %v", res.OG["og:title"])
		}
		d, _ := res.OG["og:description"].(string)
		if !strings.HasSuffix(d, "…") || len([]rune(d)) > 201 || strings.Count(d, "word") > 50 {
			t.Errorf("og:description = %q (%d runes), want at most 50 words and 200 characters, marked cut", d, len([]rune(d)))
		}
	})
	t.Run("image url", func(t *testing.T) {
		res, err := get(t, f, srv.URL+"/img.png")
		if err != nil || res.Image == nil || res.Image.Width != 40 {
			t.Errorf("image preview = %+v, %v", res, err)
		}
	})
	t.Run("charset", func(t *testing.T) {
		res, err := get(t, f, srv.URL+"/latin1")
		if err != nil || res.OG["og:title"] != "café" {
			t.Errorf("og:title = %v, %v; want café decoded from ISO-8859-1", res.OG["og:title"], err)
		}
	})
	t.Run("redirect chain", func(t *testing.T) {
		res, err := get(t, f, srv.URL+"/redirect/3")
		if err != nil || res.OG["og:title"] != "An OpenGraph title" {
			t.Errorf("after 4 redirects = %v, %v", res, err)
		}
		if _, err := get(t, f, srv.URL+"/redirect/8"); !errors.Is(err, preview.ErrFetch) {
			t.Errorf("9 redirects = %v, want ErrFetch", err)
		}
	})
	t.Run("oversize page", func(t *testing.T) {
		if _, err := get(t, f, srv.URL+"/huge"); !errors.Is(err, preview.ErrTooLarge) {
			t.Errorf("2 MiB page = %v, want ErrTooLarge", err)
		}
	})
	t.Run("gzip bomb", func(t *testing.T) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := get(t, f, srv.URL+"/bomb")
		runtime.ReadMemStats(&after)
		if !errors.Is(err, preview.ErrTooLarge) {
			t.Errorf("gzip bomb = %v, want ErrTooLarge", err)
		}
		if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<20 {
			t.Errorf("allocated %d MiB reading a bomb capped at 1 MiB", grown>>20)
		}
	})
	t.Run("deep nesting", func(t *testing.T) {
		res, err := get(t, f, srv.URL+"/deep")
		if err != nil || res.OG["og:title"] != "deep" {
			t.Errorf("deep page = %v, %v", res, err)
		}
	})
	t.Run("other types", func(t *testing.T) {
		res, err := get(t, f, srv.URL+"/pdf")
		if err != nil || len(res.OG) != 0 || res.Image != nil {
			t.Errorf("pdf = %+v, %v; want an empty preview", res, err)
		}
	})
}

func TestLoopbackNotAllowed(t *testing.T) {
	var hits atomic.Int32
	srv := site(t, &hits)
	f := fetcher(t, nil) // defaults: loopback denied
	target := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/og"
	_, err := get(t, f, target)
	if !netguard.Blocked(err) {
		t.Fatalf("preview of %s = %v, want a netguard refusal", target, err)
	}
	if hits.Load() != 0 {
		t.Errorf("the site was contacted %d times, want none", hits.Load())
	}
}
