package api_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// mustCreate reserves a media ID for token's user and returns it.
func (ts *testServer) mustCreate(t testing.TB, token string) string {
	t.Helper()
	resp, body := ts.do(t, "POST", "/_matrix/media/v1/create", strings.NewReader("{}"), withToken(token))
	if resp.StatusCode != 200 {
		t.Fatalf("create = %d %s", resp.StatusCode, body)
	}
	var out struct {
		ContentURI      string `json:"content_uri"`
		UnusedExpiresAt int64  `json:"unused_expires_at"`
	}
	json.Unmarshal(body, &out)
	id, ok := strings.CutPrefix(out.ContentURI, "mxc://example.org/")
	if !ok || len(id) < 24 {
		t.Fatalf("content_uri = %q", out.ContentURI)
	}
	return id
}

func TestCreate(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	before := time.Now()
	resp, body := ts.do(t, "POST", "/_matrix/media/v1/create", strings.NewReader("{}"), withToken(aliceToken))
	var out struct {
		ContentURI      string `json:"content_uri"`
		UnusedExpiresAt int64  `json:"unused_expires_at"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil {
		t.Fatalf("create = %d %s", resp.StatusCode, body)
	}
	want := before.Add(24 * time.Hour).UnixMilli()
	if out.UnusedExpiresAt < want || out.UnusedExpiresAt > want+60_000 {
		t.Errorf("unused_expires_at = %d, want about now + 24 h (%d)", out.UnusedExpiresAt, want)
	}
	resp, body = ts.do(t, "POST", "/_matrix/media/v1/create", nil, withToken(guestToken))
	wantError(t, resp, body, 403, "M_GUEST_ACCESS_FORBIDDEN")
	resp, body = ts.do(t, "POST", "/_matrix/media/v1/create", nil)
	wantError(t, resp, body, 401, "M_MISSING_TOKEN")
}

func TestCreateLimit(t *testing.T) {
	ts := newTestServer(t, "sqlite", func(c *config.Config) { c.Uploads.MaxPending = 2 })
	ts.mustCreate(t, aliceToken)
	id := ts.mustCreate(t, aliceToken)
	resp, body := ts.do(t, "POST", "/_matrix/media/v1/create", nil, withToken(aliceToken))
	wantError(t, resp, body, 429, "M_LIMIT_EXCEEDED")
	// The place frees up when the oldest reservation expires, in 24 hours.
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 86000 || ra > 86400 {
		t.Errorf("Retry-After = %q, want about 86400 (the oldest reservation's expiry)", resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(string(body), `"retry_after_ms":86`) {
		t.Errorf("body = %s, want retry_after_ms near 86400000", body)
	}
	ts.mustCreate(t, bobToken) // per user
	// Uploading one frees its place.
	if resp, body := ts.do(t, "PUT", "/_matrix/media/v3/upload/example.org/"+id, strings.NewReader("done"), withToken(aliceToken)); resp.StatusCode != 200 {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	ts.mustCreate(t, aliceToken)
}

func TestUploadToReserved(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, func(c *config.Config) { c.Uploads.MaxBytes = 1000 })
		id := ts.mustCreate(t, aliceToken)
		put := "/_matrix/media/v3/upload/example.org/"

		// Too large: refused, and the ID can still be uploaded.
		resp, body := ts.do(t, "PUT", put+id, bytes.NewReader(make([]byte, 1001)), withToken(aliceToken))
		wantError(t, resp, body, 413, "M_TOO_LARGE")

		tests := map[string]struct {
			path, token string
			wantStatus  int
			wantErrcode string
		}{
			"another user":       {put + id, bobToken, 403, "M_FORBIDDEN"},
			"never created":      {put + "neverCreated123456789012", aliceToken, 404, "M_NOT_FOUND"},
			"another server":     {"/_matrix/media/v3/upload/other.example/" + id, aliceToken, 404, "M_NOT_FOUND"},
			"no token":           {put + id, "", 401, "M_MISSING_TOKEN"},
			"guest":              {put + id, guestToken, 403, "M_GUEST_ACCESS_FORBIDDEN"},
			"malformed media id": {put + "bad%2Fid", aliceToken, 404, "M_NOT_FOUND"},
		}
		for name, tt := range tests {
			t.Run(name, func(t *testing.T) {
				var opts []reqOpt
				if tt.token != "" {
					opts = append(opts, withToken(tt.token))
				}
				resp, body := ts.do(t, "PUT", tt.path, strings.NewReader("x"), opts...)
				wantError(t, resp, body, tt.wantStatus, tt.wantErrcode)
			})
		}

		resp, body = ts.do(t, "PUT", put+id+"?filename=late.txt", strings.NewReader("async bytes"),
			withToken(aliceToken), withHeader("Content-Type", "text/plain"))
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "{}" {
			t.Fatalf("PUT = %d %s, want 200 {}", resp.StatusCode, body)
		}
		resp, body = ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken))
		if resp.StatusCode != 200 || string(body) != "async bytes" || resp.Header.Get("Content-Disposition") != "inline; filename=late.txt" {
			t.Errorf("download = %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Disposition"))
		}
		// Already uploaded: 409, and the body is not even read.
		resp, body = ts.do(t, "PUT", put+id, strings.NewReader("again"), withToken(aliceToken))
		wantError(t, resp, body, 409, "M_CANNOT_OVERWRITE_MEDIA")
		// An ordinary upload's ID cannot be PUT to either.
		plain := ts.mustUpload(t, []byte("plain"), "", "")
		resp, body = ts.do(t, "PUT", put+plain, strings.NewReader("again"), withToken(aliceToken))
		wantError(t, resp, body, 409, "M_CANNOT_OVERWRITE_MEDIA")
	})
}

func TestReservationExpires(t *testing.T) {
	ts := newTestServer(t, "sqlite", func(c *config.Config) { c.Uploads.MaxAgeSeconds = 1 })
	id := ts.mustCreate(t, aliceToken)
	time.Sleep(1100 * time.Millisecond)
	resp, body := ts.do(t, "PUT", "/_matrix/media/v3/upload/example.org/"+id, strings.NewReader("late"), withToken(aliceToken))
	wantError(t, resp, body, 404, "M_NOT_FOUND")
	// An expired reservation is not waited for.
	resp, body = ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id+"?timeout_ms=5000", nil, withToken(aliceToken))
	wantError(t, resp, body, 404, "M_NOT_FOUND")
}

func TestDownloadWaitsForUpload(t *testing.T) {
	// No polling fallback: only the in-process wake-up can end the wait early.
	ts := newTestServerOn(t, storagetest.OpenSQLite(t), filepath.Join(t.TempDir(), "blobs"), nil,
		func(o *stack) { o.uploadRecheck = time.Hour })
	t.Run("times out", func(t *testing.T) {
		id := ts.mustCreate(t, aliceToken)
		for _, path := range []string{
			"/_matrix/client/v1/media/download/example.org/" + id + "?timeout_ms=300",
			"/_matrix/client/v1/media/thumbnail/example.org/" + id + "?width=32&height=32&timeout_ms=300",
		} {
			resp, body := ts.do(t, "GET", path, nil, withToken(aliceToken))
			wantError(t, resp, body, 504, "M_NOT_YET_UPLOADED")
		}
	})
	t.Run("woken by the upload", func(t *testing.T) {
		id := ts.mustCreate(t, aliceToken)
		got := make(chan string, 1)
		go func() {
			resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id+"?timeout_ms=10000", nil, withToken(aliceToken))
			got <- resp.Status + " " + string(body)
		}()
		time.Sleep(200 * time.Millisecond) // let the download start waiting
		if resp, body := ts.do(t, "PUT", "/_matrix/media/v3/upload/example.org/"+id, strings.NewReader("worth the wait"), withToken(aliceToken)); resp.StatusCode != 200 {
			t.Fatalf("PUT = %d %s", resp.StatusCode, body)
		}
		if g := <-got; g != "200 OK worth the wait" {
			t.Errorf("waiting download = %q, want 200 with the bytes", g)
		}
	})
}

func TestDownloadWaitsAcrossProcesses(t *testing.T) {
	// Two servers on one PostgreSQL: the upload lands on one, the waiting
	// download on the other is woken by LISTEN/NOTIFY. Their fallback re-check
	// is set far beyond the wait, so only a notification can wake them.
	meta := storagetest.OpenPostgres(t)
	blobDir := filepath.Join(t.TempDir(), "blobs")
	noPolling := func(o *stack) { o.uploadRecheck = time.Hour }
	a := newTestServerOn(t, meta, blobDir, nil, noPolling)
	b := newTestServerOn(t, meta, blobDir, nil, noPolling)
	id := a.mustCreate(t, aliceToken)
	got := make(chan string, 1)
	go func() {
		resp, body := b.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id+"?timeout_ms=10000", nil, withToken(aliceToken))
		got <- resp.Status + " " + string(body)
	}()
	time.Sleep(200 * time.Millisecond)
	if resp, body := a.do(t, "PUT", "/_matrix/media/v3/upload/example.org/"+id, strings.NewReader("from process a"), withToken(aliceToken)); resp.StatusCode != 200 {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	if g := <-got; g != "200 OK from process a" {
		t.Errorf("download on process b = %q, want 200 with the bytes", g)
	}
}
