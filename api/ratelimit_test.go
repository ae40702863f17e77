package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/ratelimit/memlimit"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// newLimitedServer is a test server with an in-process limiter and the given
// rate-limit config.
func newLimitedServer(t *testing.T, rl config.RateLimit) *testServer {
	return newTestServerOn(t, storagetest.OpenSQLite(t), filepath.Join(t.TempDir(), "blobs"),
		func(c *config.Config) { c.RateLimit = rl },
		func(o *stack) { o.limiter = memlimit.New() })
}

func TestRateLimitPerIP(t *testing.T) {
	ts := newLimitedServer(t, config.RateLimit{Enabled: true, RequestsPerSecond: 0.001, Burst: 3})
	// The peer (loopback) is a trusted proxy: the client is the right-most
	// untrusted address, whatever the client prepends to the header.
	for i := range 3 {
		resp, _ := ts.do(t, "GET", "/_matrix/media/v3/download/example.org/none", nil,
			withHeader("X-Forwarded-For", fmt.Sprintf("10.9.9.%d, 198.51.100.7", i)))
		if resp.StatusCode != 404 {
			t.Fatalf("request %d = %d, want 404 (allowed)", i, resp.StatusCode)
		}
	}
	resp, body := ts.do(t, "GET", "/_matrix/media/v3/download/example.org/none", nil,
		withHeader("X-Forwarded-For", "6.6.6.6, 198.51.100.7"))
	wantError(t, resp, body, 429, "M_LIMIT_EXCEEDED")
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 900 {
		t.Errorf("Retry-After = %q, want about 1000 seconds", resp.Header.Get("Retry-After"))
	}
	var e struct {
		RetryAfterMS int64 `json:"retry_after_ms"`
	}
	json.Unmarshal(body, &e)
	if e.RetryAfterMS < 900_000 {
		t.Errorf("retry_after_ms = %d, want about 1000000", e.RetryAfterMS)
	}
	// Federation requests are not counted: they are signed, and one busy
	// homeserver is one IP. (Unsigned here, so 401, not 429.)
	for range 2 {
		resp, body := ts.do(t, "GET", "/_matrix/federation/v1/media/download/abc", nil,
			withHeader("X-Forwarded-For", "198.51.100.7"))
		if resp.StatusCode == 429 {
			t.Errorf("federation request rate-limited: %s", body)
		}
	}
	// Another client is not affected.
	resp, _ = ts.do(t, "GET", "/_matrix/media/v3/download/example.org/none", nil, withHeader("X-Forwarded-For", "203.0.113.5"))
	if resp.StatusCode != 404 {
		t.Errorf("another IP = %d, want 404", resp.StatusCode)
	}
}

func TestRateLimitPerUser(t *testing.T) {
	ts := newLimitedServer(t, config.RateLimit{Enabled: true, RequestsPerSecond: 0.001, Burst: 2})
	// Each request from a new IP, same token: the user's bucket runs out.
	codes := []int{}
	for i := range 3 {
		resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/config", nil, withToken(aliceToken),
			withHeader("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1)))
		codes = append(codes, resp.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("statuses = %v, want [200 200 429]", codes)
	}
}

func TestDownloadByteBucket(t *testing.T) {
	ts := newLimitedServer(t, config.RateLimit{Enabled: true, RequestsPerSecond: 1000, Burst: 1000,
		Buckets: config.RateLimitBuckets{Downloads: config.DownloadBucket{CapacityBytes: 100, DrainBytesPerMinute: 1, OverflowLimitBytes: 10}}})
	id := ts.mustUpload(t, bytes.Repeat([]byte("x"), 80), "text/plain", "")
	path := "/_matrix/client/v1/media/download/example.org/" + id
	if resp, _ := ts.do(t, "HEAD", path, nil, withToken(aliceToken)); resp.StatusCode != 200 {
		t.Fatalf("HEAD = %d", resp.StatusCode)
	}
	if resp, _ := ts.do(t, "GET", path, nil, withToken(aliceToken)); resp.StatusCode != 200 {
		t.Fatalf("first download = %d, want 200 (HEAD is free)", resp.StatusCode)
	}
	resp, body := ts.do(t, "GET", path, nil, withToken(aliceToken))
	wantError(t, resp, body, 429, "M_LIMIT_EXCEEDED") // 160 > 100 + 10
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func TestQuotas(t *testing.T) {
	ts := newTestServer(t, "sqlite", func(c *config.Config) {
		c.Uploads.Quotas = config.Quotas{Enabled: true, Users: []config.QuotaRule{
			{Glob: "@alice:*", MaxBytes: 100, MaxFiles: 10, MaxPending: 1},
		}}
	})
	ts.mustUpload(t, bytes.Repeat([]byte("a"), 60), "", "")
	resp, body := ts.do(t, "POST", "/_matrix/media/v3/upload", bytes.NewReader(bytes.Repeat([]byte("b"), 60)), withToken(aliceToken))
	wantError(t, resp, body, 403, "M_FORBIDDEN")
	ts.mustUpload(t, bytes.Repeat([]byte("c"), 40), "", "") // exactly at the quota
	resp, body = ts.do(t, "POST", "/_matrix/media/v3/upload", strings.NewReader("d"), withToken(aliceToken))
	wantError(t, resp, body, 403, "M_FORBIDDEN")
	// Bob has no rule.
	ts.mustUpload(t, bytes.Repeat([]byte("e"), 500), "", "", withToken(bobToken))

	resp, body = ts.do(t, "GET", "/_matrix/media/unstable/org.matrix.msc4034/usage", nil, withToken(aliceToken))
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"org.matrix.msc4034.storage.files":2,"org.matrix.msc4034.storage.used":100}` {
		t.Errorf("usage = %d %s", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "GET", "/_matrix/client/v1/media/config", nil, withToken(aliceToken))
	if !strings.Contains(string(body), `"org.matrix.msc4034.storage.size":100`) || !strings.Contains(string(body), `"org.matrix.msc4034.storage.max_files":10`) {
		t.Errorf("config = %s, want the MSC4034 limits", body)
	}
	// The rule's maxPending replaces uploads.maxPending.
	ts.mustCreate(t, aliceToken)
	resp, body = ts.do(t, "POST", "/_matrix/media/v1/create", nil, withToken(aliceToken))
	wantError(t, resp, body, 429, "M_LIMIT_EXCEEDED")
}

func TestQuotaRace(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, func(c *config.Config) {
			c.Uploads.Quotas = config.Quotas{Enabled: true, Users: []config.QuotaRule{{Glob: "*", MaxBytes: 250}}}
		})
		const n = 10 // 10 x 100 bytes against a 250-byte quota
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, _ := ts.do(t, "POST", "/_matrix/media/v3/upload", bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 100)), withToken(aliceToken))
				codes[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		ok := 0
		for _, c := range codes {
			switch c {
			case 200:
				ok++
			case 403:
			default:
				t.Errorf("status %d, want 200 or 403", c)
			}
		}
		if ok != 2 {
			t.Errorf("%d parallel uploads stored, want exactly 2 within the quota (statuses %v)", ok, codes)
		}
		// The refused ones left nothing: two blobs, no temp files.
		if n := countBlobs(t, ts.blobs.Root()); n != 2 {
			t.Errorf("datastore holds %d blobs, want the 2 stored", n)
		}
		if n := countTemp(t, ts.blobs.Root()); n != 0 {
			t.Errorf("%d temp files left by refused uploads", n)
		}
	})
}

func TestRefusedUploadsLeaveNothing(t *testing.T) {
	// A user one byte under quota sends ten 9 KiB uploads, with and without a
	// declared length: all refused, and the datastore holds only the first.
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, func(c *config.Config) {
			c.Uploads.Quotas = config.Quotas{Enabled: true, Users: []config.QuotaRule{{Glob: "*", MaxBytes: 1001}}}
		})
		ts.mustUpload(t, bytes.Repeat([]byte("a"), 1000), "", "")
		for i := range 10 {
			body := bytes.Repeat([]byte{byte(i)}, 9<<10)
			var r io.Reader = bytes.NewReader(body)
			if i%2 == 1 {
				r = io.MultiReader(r) // no length known: chunked, refused after reading
			}
			resp, b := ts.do(t, "POST", "/_matrix/media/v3/upload", r, withToken(aliceToken))
			wantError(t, resp, b, 403, "M_FORBIDDEN")
		}
		if n := countBlobs(t, ts.blobs.Root()); n != 1 {
			t.Errorf("datastore holds %d blobs after ten refusals, want 1", n)
		}
		if n := countTemp(t, ts.blobs.Root()); n != 0 {
			t.Errorf("%d temp files left by refused uploads", n)
		}
	})
}

// countTemp counts the temporary files of the disk datastore at root.
func countTemp(t *testing.T, root string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestRangeAmplificationAndCharge(t *testing.T) {
	ts := newLimitedServer(t, config.RateLimit{Enabled: true, RequestsPerSecond: 1000, Burst: 1000,
		Buckets: config.RateLimitBuckets{Downloads: config.DownloadBucket{CapacityBytes: 100 << 10, DrainBytesPerMinute: 1, OverflowLimitBytes: 1}}})
	id := ts.mustUpload(t, bytes.Repeat([]byte("x"), 1<<20), "application/octet-stream", "")
	path := "/_matrix/client/v1/media/download/example.org/" + id
	// 50 000 copies of the first byte are one byte.
	resp, body := ts.do(t, "GET", path, nil, withToken(aliceToken), withHeader("Range", "bytes="+strings.Repeat("0-0,", 50000)))
	if resp.StatusCode != 206 || len(body) != 1 || resp.Header.Get("Content-Range") != "bytes 0-0/1048576" {
		t.Fatalf("amplified range = %d, %d bytes, %q; want 206 with one byte", resp.StatusCode, len(body), resp.Header.Get("Content-Range"))
	}
	// Small ranges are charged as what they send: a hundred 1 KiB ranges fit a 100 KiB bucket
	// where a hundred charges of the whole 1 MiB file would not.
	for i := range 99 {
		rng := fmt.Sprintf("bytes=%d-%d", i<<10, i<<10+1023)
		if resp, _ := ts.do(t, "GET", path, nil, withToken(aliceToken), withHeader("Range", rng)); resp.StatusCode != 206 {
			t.Fatalf("range %d = %d, want 206 (charged 1 KiB)", i, resp.StatusCode)
		}
	}
	resp, body = ts.do(t, "GET", path, nil, withToken(aliceToken), withHeader("Range", "bytes=0-2047"))
	wantError(t, resp, body, 429, "M_LIMIT_EXCEEDED")
}
