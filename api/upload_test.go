package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

func TestUploadThenDownload(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, nil)
		content := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 3000)
		resp, body := ts.do(t, "POST", "/_matrix/media/v3/upload?filename=cat.png", bytes.NewReader(content),
			withToken(aliceToken), withHeader("Content-Type", "img/png"))
		if resp.StatusCode != 200 {
			t.Fatalf("upload = %d %s", resp.StatusCode, body)
		}
		var out struct {
			ContentURI string `json:"content_uri"`
		}
		json.Unmarshal(body, &out)
		if !regexp.MustCompile(`^mxc://example\.org/[A-Za-z0-9_-]{24,}$`).MatchString(out.ContentURI) {
			t.Fatalf("content_uri = %q, want mxc://example.org/<24+ safe chars>", out.ContentURI)
		}
		id := strings.TrimPrefix(out.ContentURI, "mxc://example.org/")

		resp, got := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken))
		if resp.StatusCode != 200 || !bytes.Equal(got, content) {
			t.Fatalf("download = %d, %d bytes; want 200, the %d uploaded", resp.StatusCode, len(got), len(content))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "img/png" {
			t.Errorf("Content-Type = %q, want img/png kept verbatim", ct)
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename=cat.png" {
			t.Errorf("Content-Disposition = %q, want attachment (img/png is not a safe type)", cd)
		}
		if !strings.Contains(ts.logs.String(), "user_id=\"@alice:example.org\"") {
			t.Error("access log does not name the uploader")
		}
	})
}

func TestUploadOriginFollowsHost(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	id := ts.mustUpload(t, []byte("hello other"), "text/plain", "", withHost("other.example"))
	resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/other.example/"+id, nil,
		withToken(aliceToken), withHost("other.example"))
	if resp.StatusCode != 200 || string(body) != "hello other" {
		t.Errorf("download on other.example = %d %q", resp.StatusCode, body)
	}
	// The same media is not local to example.org, so it is not served there.
	resp, body = ts.do(t, "GET", "/_matrix/client/v1/media/download/other.example/"+id, nil, withToken(aliceToken))
	wantError(t, resp, body, 404, "M_NOT_FOUND")
}

func TestUploadDefaultsAndValidation(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	id := ts.mustUpload(t, []byte("no type given"), "", "")
	resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken))
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type = %q, want application/octet-stream", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != "attachment" {
		t.Errorf("Content-Disposition = %q, want attachment without a filename", cd)
	}

	bad := map[string]string{
		"invalid UTF-8 filename": "/_matrix/media/v3/upload?filename=%FF%FE",
		"over-long filename":     "/_matrix/media/v3/upload?filename=" + strings.Repeat("a", 1025),
	}
	for name, path := range bad {
		t.Run(name, func(t *testing.T) {
			resp, body := ts.do(t, "POST", path, strings.NewReader("x"), withToken(aliceToken))
			wantError(t, resp, body, 400, "M_INVALID_PARAM")
		})
	}
}

func TestUploadDeduplicates(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	a := ts.mustUpload(t, []byte("same bytes"), "text/plain", "a.txt")
	b := ts.mustUpload(t, []byte("same bytes"), "text/plain", "b.txt")
	if a == b {
		t.Fatal("two uploads got one media ID")
	}
	if n := countBlobs(t, ts.blobs.Root()); n != 1 {
		t.Errorf("datastore holds %d blobs, want 1", n)
	}
	for id, name := range map[string]string{a: "a.txt", b: "b.txt"} {
		resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken))
		if cd := resp.Header.Get("Content-Disposition"); cd != "inline; filename="+name {
			t.Errorf("Content-Disposition = %q, want inline; filename=%s", cd, name)
		}
	}
}

func TestUploadTooLarge(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, func(c *config.Config) { c.Uploads.MaxBytes = 1000 })
		tests := map[string]struct {
			body    io.Reader
			chunked bool
		}{
			"content-length over": {bytes.NewReader(make([]byte, 1001)), false},
			"chunked over":        {io.MultiReader(bytes.NewReader(make([]byte, 600)), bytes.NewReader(make([]byte, 600))), true},
		}
		for name, tt := range tests {
			t.Run(name, func(t *testing.T) {
				resp, body := ts.do(t, "POST", "/_matrix/media/v3/upload", tt.body, withToken(aliceToken),
					func(r *http.Request) {
						if tt.chunked {
							r.ContentLength = -1
						}
					})
				wantError(t, resp, body, 413, "M_TOO_LARGE")
			})
		}
		if n := countBlobs(t, ts.blobs.Root()); n != 0 {
			t.Errorf("datastore holds %d blobs after refused uploads, want 0", n)
		}
		if n := countFiles(t, filepath.Join(ts.blobs.Root(), "tmp")); n != 0 {
			t.Errorf("temp dir holds %d files after refused uploads, want 0", n)
		}
		// Exactly at the limit is fine.
		ts.mustUpload(t, make([]byte, 1000), "", "")
	})
}

func TestUploadTooSmall(t *testing.T) {
	ts := newTestServer(t, "sqlite", func(c *config.Config) { c.Uploads.MinBytes = 10 })
	resp, body := ts.do(t, "POST", "/_matrix/media/v3/upload", strings.NewReader("tiny"), withToken(aliceToken))
	wantError(t, resp, body, 400, "M_TOO_SMALL")
	if n := countBlobs(t, ts.blobs.Root()); n != 0 {
		t.Errorf("datastore holds %d blobs, want 0", n)
	}
	id := ts.mustUpload(t, []byte("0123456789abc"), "", "")
	resp, got := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken))
	if string(got) != "0123456789abc" {
		t.Errorf("download = %d %q; the bytes read for the minimum check were lost", resp.StatusCode, got)
	}
}

// countBlobs counts stored blobs (files outside tmp/).
func countBlobs(t *testing.T, root string) int { return storagetest.CountBlobs(t, root) }

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestSlowBodiesAreCutOff(t *testing.T) {
	ts := newTestServer(t, "sqlite", func(c *config.Config) {
		c.Timeouts.BodyIdleSeconds, c.Timeouts.MinBodyBytesPerSecond = 1, 1000
	})
	// upload sends a request head declaring 100 000 bytes, then body by send,
	// and returns the status line the server answers with.
	upload := func(send func(net.Conn)) string {
		conn, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: example.org\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n", aliceToken)
		go send(conn)
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return strings.TrimSpace(line)
	}
	tests := map[string]func(net.Conn){
		"stalls after 10 bytes": func(c net.Conn) { c.Write([]byte("0123456789")) },
		"trickles 20 bytes a second": func(c net.Conn) {
			for range 200 {
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		},
	}
	for name, send := range tests {
		t.Run(name, func(t *testing.T) {
			if got := upload(send); got != "HTTP/1.1 408 Request Timeout" {
				t.Errorf("answer = %q, want 408", got)
			}
			if n := countTemp(t, ts.blobs.Root()); n != 0 {
				t.Errorf("%d temp files left behind", n)
			}
		})
	}
	// A body that keeps coming is not affected.
	if got := upload(func(c net.Conn) {
		for range 10 {
			c.Write(bytes.Repeat([]byte("y"), 10000))
		}
	}); got != "HTTP/1.1 200 OK" {
		t.Errorf("paced upload = %q, want 200", got)
	}
}
