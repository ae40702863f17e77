package api_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"mime"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/postgres"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

func TestDownloadConditionalAndRanges(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, nil)
		content := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
		id := ts.mustUpload(t, content, "text/plain", "digits.txt")
		path := "/_matrix/client/v1/media/download/example.org/" + id
		resp, _ := ts.do(t, "GET", path, nil, withToken(aliceToken))
		etag := resp.Header.Get("ETag")
		lastMod := resp.Header.Get("Last-Modified")
		if len(etag) != 66 || !strings.HasPrefix(etag, `"`) {
			t.Fatalf("ETag = %q, want a strong quoted sha256", etag)
		}
		if _, err := http.ParseTime(lastMod); err != nil {
			t.Fatalf("Last-Modified = %q: %v", lastMod, err)
		}

		tests := map[string]struct {
			method           string
			reqHeader        map[string]string
			wantStatus       int
			wantBody         string
			wantContentRange string
		}{
			"full":               {"GET", nil, 200, string(content), ""},
			"head":               {"HEAD", nil, 200, "", ""},
			"first bytes":        {"GET", map[string]string{"Range": "bytes=0-4"}, 206, "01234", "bytes 0-4/36"},
			"suffix":             {"GET", map[string]string{"Range": "bytes=-3"}, 206, "xyz", "bytes 33-35/36"},
			"open ended":         {"GET", map[string]string{"Range": "bytes=30-"}, 206, "uvwxyz", "bytes 30-35/36"},
			"unsatisfiable":      {"GET", map[string]string{"Range": "bytes=100-200"}, 416, "", "bytes */36"},
			"if-none-match":      {"GET", map[string]string{"If-None-Match": etag}, 304, "", ""},
			"if-none-match miss": {"GET", map[string]string{"If-None-Match": `"other"`}, 200, string(content), ""},
			"if-modified-since":  {"GET", map[string]string{"If-Modified-Since": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, 304, "", ""},
			"if-range match":     {"GET", map[string]string{"Range": "bytes=0-1", "If-Range": etag}, 206, "01", "bytes 0-1/36"},
			"if-range stale":     {"GET", map[string]string{"Range": "bytes=0-1", "If-Range": `"stale"`}, 200, string(content), ""},
		}
		for name, tt := range tests {
			t.Run(name, func(t *testing.T) {
				opts := []reqOpt{withToken(aliceToken)}
				for k, v := range tt.reqHeader {
					opts = append(opts, withHeader(k, v))
				}
				resp, body := ts.do(t, tt.method, path, nil, opts...)
				if resp.StatusCode != tt.wantStatus {
					t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
				}
				if tt.wantStatus != 416 && string(body) != tt.wantBody {
					t.Errorf("body = %q, want %q", body, tt.wantBody)
				}
				if got := resp.Header.Get("Content-Range"); got != tt.wantContentRange {
					t.Errorf("Content-Range = %q, want %q", got, tt.wantContentRange)
				}
				if tt.method == "HEAD" && resp.ContentLength != int64(len(content)) {
					t.Errorf("HEAD Content-Length = %d, want %d", resp.ContentLength, len(content))
				}
			})
		}
	})
}

func TestDownloadHeaders(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	tests := map[string]struct {
		contentType, filename string
		pathName              string
		wantDisposition       string
		wantContentType       string // "" means contentType verbatim
	}{
		"safe image inline":   {"image/png", "a.png", "", "inline; filename=a.png", ""},
		"safe with params":    {"text/plain; charset=utf-8", "a.txt", "", "inline; filename=a.txt", ""},
		"case-insensitive":    {"IMAGE/JPEG", "a.jpg", "", "inline; filename=a.jpg", "image/jpeg"},
		"unusual type kept":   {"img/png", "a.png", "", "attachment; filename=a.png", ""},
		"svg attachment":      {"image/svg+xml", "x.svg", "", "attachment; filename=x.svg", ""},
		"html attachment":     {"text/html", "x.html", "", "attachment; filename=x.html", ""},
		"no filename":         {"image/gif", "", "", "inline", ""},
		"path override":       {"image/png", "a.png", "/b.png", "inline; filename=b.png", ""},
		"override with slash": {"image/png", "a.png", "/a%2Fb.png", "inline; filename*=utf-8''a%2Fb.png", ""},
		"spaces and emoji":    {"image/png", "my cat 🐱.png", "", "inline; filename*=utf-8''my%20cat%20%F0%9F%90%B1.png", ""},
		"header injection":    {"image/png", "a\r\nSet-Cookie: x=1;.png", "", "inline; filename*=utf-8''a__Set-Cookie%3A%20x%3D1%3B.png", ""},
		"bidi override":       {"image/png", "cat\u202egnp.exe", "", "inline; filename=cat_gnp.exe", ""},
		// Browsers take the last type of a list: it must not reach them.
		"type list":           {"text/plain;,text/html", "a.txt", "", "inline; filename=a.txt", "text/plain"},
		"image then html":     {"image/png;,text/html", "a.png", "", "inline; filename=a.png", "image/png"},
		"text params dropped": {"text/plain; charset=UTF-8; evil=1", "a.txt", "", "inline; filename=a.txt", "text/plain; charset=utf-8"},
		"not a type":          {"garbage", "a", "", "attachment; filename=a", "application/octet-stream"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			id := ts.mustUpload(t, []byte("bytes of "+name), tt.contentType, tt.filename)
			resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id+tt.pathName, nil, withToken(aliceToken))
			if resp.StatusCode != 200 {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			h := resp.Header
			if got := h.Get("Content-Disposition"); got != tt.wantDisposition {
				t.Errorf("Content-Disposition = %q, want %q", got, tt.wantDisposition)
			}
			if h.Get("Set-Cookie") != "" {
				t.Error("a filename injected a header")
			}
			wantType := cmp.Or(tt.wantContentType, tt.contentType)
			if got := h.Get("Content-Type"); got != wantType {
				t.Errorf("Content-Type = %q, want %q", got, wantType)
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":  "*",
				"Cross-Origin-Resource-Policy": "cross-origin",
				"X-Content-Type-Options":       "nosniff",
				"Cache-Control":                "private, max-age=86400",
			}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox; default-src 'none'; script-src 'none';") {
				t.Errorf("Content-Security-Policy = %q, want the spec's sandbox policy", csp)
			}
		})
	}
}

func TestDispositionRoundTrips(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	for name, want := range map[string]string{
		"plain.png": "", "with space.png": "", "semi;colon.png": "", `quote".png`: "", "back\\slash.png": "",
		"🐱🐶.png": "", "ünïcödé.png": "", "percent%41.png": "", "star*.png": "", "a'b.png": "",
		// Control characters are replaced at upload.
		"new\nline.png": "new_line.png", "tab\t.png": "tab_.png", "nul\x00.png": "nul_.png", "c1\u0085.png": "c1_.png",
	} {
		want = cmp.Or(want, name)
		id := ts.mustUpload(t, []byte("x"), "image/png", name)
		resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken))
		_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
		if err != nil || params["filename"] != want {
			t.Errorf("filename %q came back as %q (header %q, err %v), want %q", name, params["filename"], resp.Header.Get("Content-Disposition"), err, want)
		}
	}
}

func TestFreeze(t *testing.T) {
	tests := map[string]struct {
		freeze           bool
		wantLegacyStatus int
	}{
		"frozen media only on authenticated route": {true, 404},
		"unfrozen media on both":                   {false, 200},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, "sqlite", func(c *config.Config) { c.Repo.FreezeUnauthenticatedMedia = tt.freeze })
			id := ts.mustUpload(t, []byte("freeze me"), "text/plain", "")
			for _, v := range []string{"r0", "v1", "v3"} {
				resp, body := ts.do(t, "GET", "/_matrix/media/"+v+"/download/example.org/"+id, nil)
				if resp.StatusCode != tt.wantLegacyStatus {
					t.Errorf("legacy %s download = %d, want %d", v, resp.StatusCode, tt.wantLegacyStatus)
				}
				if tt.wantLegacyStatus == 404 {
					wantError(t, resp, body, 404, "M_NOT_FOUND")
				} else if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=86400" {
					t.Errorf("legacy Cache-Control = %q", cc)
				}
			}
			resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken))
			if resp.StatusCode != 200 || string(body) != "freeze me" {
				t.Errorf("authenticated download = %d %q", resp.StatusCode, body)
			}
		})
	}
}

func TestDownloadNotFound(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	tests := map[string]string{
		"unknown media":       "/example.org/doesnotexist",
		"remote server":       "/matrix.org/abcdef",
		"remote with port":    "/example.org:8448/abcdef",
		"invalid media id":    "/example.org/abc%2F..%2F..",
		"invalid server":      "/exa%20mple.org/abcdef",
		"traversal in server": "/..%2F..%2Fetc/passwd",
	}
	for name, path := range tests {
		t.Run(name, func(t *testing.T) {
			before := ts.meta.Lookups()
			resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download"+path, nil, withToken(aliceToken))
			wantError(t, resp, body, 404, "M_NOT_FOUND")
			if name != "unknown media" && ts.meta.Lookups() != before {
				t.Error("an invalid or remote ID reached the database")
			}
		})
	}
}

func TestNotFoundIsRemembered(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	get := func() {
		resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/neverUploaded", nil, withToken(aliceToken))
		wantError(t, resp, body, 404, "M_NOT_FOUND")
	}
	get()
	before := ts.meta.Lookups()
	for range 5 {
		get()
	}
	if n := ts.meta.Lookups() - before; n != 0 {
		t.Errorf("5 more 404s of one ID made %d queries, want 0", n)
	}
	// An upload to a reserved ID is not hidden by it: reserved IDs are never remembered as missing.
	id := ts.mustCreate(t, aliceToken)
	resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id+"?timeout_ms=0", nil, withToken(aliceToken))
	if resp.StatusCode != 504 {
		t.Fatalf("reserved ID = %d, want 504", resp.StatusCode)
	}
	ts.do(t, "PUT", "/_matrix/media/v3/upload/example.org/"+id, strings.NewReader("now here"), withToken(aliceToken))
	if resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken)); resp.StatusCode != 200 || string(body) != "now here" {
		t.Errorf("download after PUT = %d %q", resp.StatusCode, body)
	}
}

func TestDownloadParams(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	id := ts.mustUpload(t, []byte("params"), "text/plain", "")
	for q, want := range map[string]int{
		"allow_remote=false": 200,
		"allow_remote=maybe": 400,
		"allow_redirect=1":   400,
		"timeout_ms=5000":    200,
		"timeout_ms=-1":      400,
		"timeout_ms=soon":    400,
		"unrelated=whatever": 200,
	} {
		resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id+"?"+q, nil, withToken(aliceToken))
		if resp.StatusCode != want {
			t.Errorf("?%s = %d, want %d", q, resp.StatusCode, want)
		}
		if want == 400 {
			wantError(t, resp, body, 400, "M_INVALID_PARAM")
		}
	}
}

func TestDownloadHotPathIsCached(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	id := ts.mustUpload(t, []byte("hot"), "text/plain", "")
	whoami := ts.fake.Calls()
	for range 20 {
		resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken))
		if resp.StatusCode != 200 || !bytes.Equal(body, []byte("hot")) {
			t.Fatalf("download = %d %q", resp.StatusCode, body)
		}
	}
	if n := ts.meta.Lookups(); n != 1 {
		t.Errorf("20 downloads made %d metadata lookups, want 1", n)
	}
	if n := ts.fake.Calls() - whoami; n != 0 {
		t.Errorf("20 downloads made %d whoami calls, want 0 (token cached at upload)", n)
	}
}

func TestStoredTypeListIsNotServed(t *testing.T) {
	// A row stored before types were normalised still reaches browsers as one type.
	ts := newTestServer(t, "sqlite", nil)
	ctx := context.Background()
	sum, size, err := storage.Put(ctx, ts.blobs, strings.NewReader("<script>alert(1)</script>"))
	if err != nil {
		t.Fatal(err)
	}
	m := &storage.Media{Origin: "example.org", MediaID: "legacyRow", ContentType: "text/plain;,text/html", UploadName: "a\r\nb.txt",
		SHA256: sum, SizeBytes: size, DatastoreID: "local", CreatedAt: time.Now()}
	if err := ts.meta.CreateMedia(ctx, m, storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/legacyRow", nil, withToken(aliceToken))
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "text/plain" || cd != "inline; filename=a__b.txt" {
		t.Errorf("served as %q, %q; want text/plain and a clean name", ct, cd)
	}
}

func TestDatabaseOutage(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	proxy := storagetest.StartProxy(t, storagetest.PostgresHost(t))
	viaProxy, _, err := postgres.Open(context.Background(), storagetest.PostgresDSNVia(t, dsn, proxy), config.Pool{MaxConnections: 4, MaxIdleConnections: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { viaProxy.Close() })
	direct, _, err := postgres.Open(context.Background(), dsn, config.Pool{MaxConnections: 4, MaxIdleConnections: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	blobDir := filepath.Join(t.TempDir(), "blobs")
	ts := newTestServerOn(t, viaProxy, blobDir, nil)
	other := newTestServerOn(t, direct, blobDir, nil) // a second process, still connected

	id := ts.mustCreate(t, aliceToken)
	waited := make(chan string, 1)
	go func() {
		resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id+"?timeout_ms=20000", nil, withToken(aliceToken))
		waited <- fmt.Sprint(resp.StatusCode, " ", string(body))
	}()
	time.Sleep(200 * time.Millisecond) // the download is waiting
	proxy.Cut()
	for range 3 {
		resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/neverThere", nil, withToken(aliceToken))
		wantError(t, resp, body, 503, "M_UNKNOWN")
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
	if n := strings.Count(ts.logs.String(), "storage outage"); n != 1 {
		t.Errorf("the outage's cause was logged %d times for 3 requests, want once:\n%s", n, ts.logs.String())
	}
	// The upload lands through the other process during the outage; the
	// waiting download sees it once the database is back.
	if resp, body := other.do(t, "PUT", "/_matrix/media/v3/upload/example.org/"+id, strings.NewReader("through the outage"), withToken(aliceToken)); resp.StatusCode != 200 {
		t.Fatalf("PUT on the other process = %d %s", resp.StatusCode, body)
	}
	time.Sleep(1500 * time.Millisecond) // a couple of re-checks fail
	proxy.Restore()
	if got := <-waited; got != "200 through the outage" {
		t.Errorf("download waiting across the outage = %q, want 200 with the bytes", got)
	}
}
