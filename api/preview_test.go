package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/netguard"
	"github.com/mediarepo/mediarepo/preview"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// testSite serves an OpenGraph page with an image and counts requests.
func testSite(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	img := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	img.Set(0, 0, color.Black)
	var pngData bytes.Buffer
	png.Encode(&pngData, img)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/page":
			fmt.Fprint(w, `<html><head><meta property="og:title" content="Hello"><meta property="og:image" content="/i.png"></head></html>`)
		case "/i.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(pngData.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func newPreviewServer(t *testing.T, allowed []string) *testServer {
	return newTestServerOn(t, storagetest.OpenSQLite(t), filepath.Join(t.TempDir(), "blobs"),
		func(c *config.Config) { c.URLPreviews.Enabled = true },
		func(o *stack) {
			policy, err := netguard.NewPolicy(allowed, netguard.DefaultDenied())
			if err != nil {
				t.Fatal(err)
			}
			o.previews = preview.NewFetcher(o.cfg.URLPreviews, policy.Client(10*time.Second, false))
		})
}

func previewPath(target string) string {
	return "/_matrix/client/v1/media/preview_url?url=" + url.QueryEscape(target)
}

func TestPreviewURL(t *testing.T) {
	site, hits := testSite(t)
	ts := newPreviewServer(t, []string{"127.0.0.0/8"}) // the site is on loopback

	resp, body := ts.do(t, "GET", previewPath(site.URL+"/page"), nil, withToken(aliceToken))
	if resp.StatusCode != 200 {
		t.Fatalf("preview = %d %s", resp.StatusCode, body)
	}
	var og map[string]any
	json.Unmarshal(body, &og)
	imgURI, _ := og["og:image"].(string)
	if og["og:title"] != "Hello" || !strings.HasPrefix(imgURI, "mxc://example.org/") ||
		og["og:image:width"] != float64(64) || og["matrix:image:size"] == nil {
		t.Fatalf("preview = %s", body)
	}
	// The image is ordinary media now.
	resp, img := ts.do(t, "GET", "/_matrix/client/v1/media/download/"+strings.TrimPrefix(imgURI, "mxc://"), nil, withToken(aliceToken))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || len(img) == 0 {
		t.Errorf("og:image download = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Cached: the same URL in the same hour does not reach the site again,
	// on the legacy route either.
	before := hits.Load()
	resp, again := ts.do(t, "GET", strings.Replace(previewPath(site.URL+"/page"), "/_matrix/client/v1/media/", "/_matrix/media/v3/", 1), nil, withToken(aliceToken))
	if resp.StatusCode != 200 || !bytes.Equal(again, body) || hits.Load() != before {
		t.Errorf("cached preview = %d, same body %v, %d more site hits", resp.StatusCode, bytes.Equal(again, body), hits.Load()-before)
	}
	// A ts of another hour, past or future, with nothing kept for it gets the
	// current answer (the spec allows a newer one) and causes no fetch.
	for _, ts1 := range []string{"1000", "99999999999999"} {
		resp, other := ts.do(t, "GET", previewPath(site.URL+"/page")+"&ts="+ts1, nil, withToken(aliceToken))
		if resp.StatusCode != 200 || !bytes.Equal(other, body) || hits.Load() != before {
			t.Errorf("ts=%s: %d, same body %v, %d more site hits; want the cached answer", ts1, resp.StatusCode, bytes.Equal(other, body), hits.Load()-before)
		}
	}

	// Failures are answered and cached too.
	resp, body = ts.do(t, "GET", previewPath(site.URL+"/missing"), nil, withToken(aliceToken))
	wantError(t, resp, body, 502, "M_UNKNOWN")
	before = hits.Load()
	resp, body = ts.do(t, "GET", previewPath(site.URL+"/missing"), nil, withToken(aliceToken))
	wantError(t, resp, body, 502, "M_UNKNOWN")
	if hits.Load() != before {
		t.Error("a cached failure reached the site again")
	}
}

func TestPreviewURLErrors(t *testing.T) {
	site, hits := testSite(t)
	ts := newPreviewServer(t, nil) // defaults: loopback refused
	tests := map[string]struct {
		path        string
		token       string
		wantStatus  int
		wantErrcode string
	}{
		"no token":          {previewPath("https://example.com/"), "", 401, "M_MISSING_TOKEN"},
		"guest":             {previewPath("https://example.com/"), guestToken, 403, "M_GUEST_ACCESS_FORBIDDEN"},
		"missing url":       {"/_matrix/client/v1/media/preview_url", aliceToken, 400, "M_MISSING_PARAM"},
		"not http":          {previewPath("file:///etc/passwd"), aliceToken, 400, "M_INVALID_PARAM"},
		"relative":          {previewPath("/just/a/path"), aliceToken, 400, "M_INVALID_PARAM"},
		"bad ts":            {previewPath("https://example.com/") + "&ts=soon", aliceToken, 400, "M_INVALID_PARAM"},
		"too long":          {previewPath("https://example.com/" + strings.Repeat("a", 2100)), aliceToken, 400, "M_INVALID_PARAM"},
		"loopback by name":  {previewPath(strings.Replace(site.URL, "127.0.0.1", "localhost", 1) + "/page"), aliceToken, 403, "M_FORBIDDEN"},
		"loopback literal":  {previewPath(site.URL + "/page"), aliceToken, 403, "M_FORBIDDEN"},
		"metadata endpoint": {previewPath("http://169.254.169.254/latest/meta-data/"), aliceToken, 403, "M_FORBIDDEN"},
		"invalid utf-8 url": {"/_matrix/client/v1/media/preview_url?url=https%3A%2F%2Fexample.com%2F%FF%FE", aliceToken, 400, "M_INVALID_PARAM"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var opts []reqOpt
			if tt.token != "" {
				opts = append(opts, withToken(tt.token))
			}
			resp, body := ts.do(t, "GET", tt.path, nil, opts...)
			wantError(t, resp, body, tt.wantStatus, tt.wantErrcode)
		})
	}
	if hits.Load() != 0 {
		t.Errorf("the loopback site was contacted %d times, want none", hits.Load())
	}
}

func TestPreviewAcceptLanguageNotUTF8(t *testing.T) {
	// Invalid UTF-8 in Accept-Language must not reach PostgreSQL (it refuses
	// it, which was a 500): the default language is used instead.
	site, _ := testSite(t)
	ts := newTestServerOn(t, storagetest.OpenPostgres(t), filepath.Join(t.TempDir(), "blobs"),
		func(c *config.Config) { c.URLPreviews.Enabled = true },
		func(o *stack) {
			policy, err := netguard.NewPolicy([]string{"127.0.0.0/8"}, netguard.DefaultDenied())
			if err != nil {
				t.Fatal(err)
			}
			o.previews = preview.NewFetcher(o.cfg.URLPreviews, policy.Client(10*time.Second, false))
		})
	resp, body := ts.do(t, "GET", previewPath(site.URL+"/page"), nil, withToken(aliceToken), withHeader("Accept-Language", "de\xff\xfe"))
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello") {
		t.Errorf("preview with a binary Accept-Language = %d %s, want 200", resp.StatusCode, body)
	}
}

func TestPreviewTenantsApart(t *testing.T) {
	site, hits := testSite(t)
	ts := newPreviewServer(t, []string{"127.0.0.0/8"})
	resp, body := ts.do(t, "GET", previewPath(site.URL+"/page"), nil, withToken(aliceToken))
	if resp.StatusCode != 200 || !strings.Contains(string(body), "mxc://example.org/") {
		t.Fatalf("example.org preview = %d %s", resp.StatusCode, body)
	}
	before := hits.Load()
	resp, body = ts.do(t, "GET", previewPath(site.URL+"/page"), nil, withToken(aliceToken), withHost("other.example"))
	if resp.StatusCode != 200 || !strings.Contains(string(body), "mxc://other.example/") || strings.Contains(string(body), "example.org") {
		t.Errorf("other.example preview = %d %s, want its own image and nothing of example.org", resp.StatusCode, body)
	}
	if hits.Load() == before {
		t.Error("other.example got example.org's cached answer")
	}
}

func TestPreviewURLDisabled(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	resp, body := ts.do(t, "GET", previewPath("https://example.com/"), nil, withToken(aliceToken))
	wantError(t, resp, body, 404, "M_UNRECOGNIZED")
}
