package api

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
)

func FuzzContentDisposition(f *testing.F) {
	for _, s := range []string{"a.png", "with space", "a;b", `q"q`, "\r\nX: y", "🐱", "%41", ""} {
		f.Add("image/png", s)
	}
	f.Fuzz(func(t *testing.T, contentType, name string) {
		h := contentDisposition(contentType, name)
		if strings.ContainsAny(h, "\r\n\x00") {
			t.Fatalf("header %q has a control character", h)
		}
		disp, params, err := mime.ParseMediaType(h)
		if err != nil {
			t.Fatalf("ParseMediaType(%q): %v", h, err)
		}
		if disp != "inline" && disp != "attachment" {
			t.Fatalf("disposition %q", disp)
		}
		if params["filename"] != name {
			t.Fatalf("filename %q round-tripped as %q via %q", name, params["filename"], h)
		}
	})
}

func TestClientIP(t *testing.T) {
	tests := map[string]struct {
		trustAny bool
		peer     string
		xff      []string
		want     string
	}{
		"no header":                    {false, "203.0.113.9:5000", nil, "203.0.113.9"},
		"untrusted peer ignored":       {false, "203.0.113.9:5000", []string{"1.2.3.4"}, "203.0.113.9"},
		"proxy on loopback":            {false, "127.0.0.1:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		"spoofed left value ignored":   {false, "127.0.0.1:5000", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		"chain of private proxies":     {false, "10.0.0.1:5000", []string{"198.51.100.7, 10.0.0.2"}, "198.51.100.7"},
		"two header lines":             {false, "127.0.0.1:1", []string{"6.6.6.6", "198.51.100.7"}, "198.51.100.7"},
		"garbage stops the walk":       {false, "127.0.0.1:1", []string{"nonsense"}, "127.0.0.1"},
		"ipv6 peer":                    {false, "[::1]:1", []string{"2001:db8::1"}, "2001:db8::1"},
		"mapped ipv4":                  {false, "[::ffff:127.0.0.1]:1", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		"trust any takes the leftmost": {true, "203.0.113.9:5000", []string{"198.51.100.7, 203.0.113.1"}, "198.51.100.7"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := &Server{live: config.NewLive(&config.Config{Repo: config.Repo{TrustAnyForwardedAddress: tt.trustAny}})}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientIP(r); got != tt.want {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRecoverAnswersJSON(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := &Server{log: log, live: config.NewLive(&config.Config{})}
	h := s.withRequestLog(s.withRecover(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	var body map[string]string
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 500 || body["errcode"] != "M_UNKNOWN" {
		t.Errorf("panic answered %d %s, want 500 M_UNKNOWN", rec.Code, rec.Body)
	}
}

func TestLimitRanges(t *testing.T) {
	const size = 1000
	tests := map[string]struct {
		reqRange, ifRange string
		wantRange         string // the header ServeContent then sees
		wantBytes         int64
	}{
		"none":                 {"", "", "", size},
		"one":                  {"bytes=0-99", "", "bytes=0-99", 100},
		"open":                 {"bytes=900-", "", "bytes=900-999", 100},
		"suffix":               {"bytes=-10", "", "bytes=990-999", 10},
		"past the end clamped": {"bytes=990-5000", "", "bytes=990-999", 10},
		"overlapping merged":   {"bytes=0-99, 50-149,10-20", "", "bytes=0-149", 150},
		"adjacent merged":      {"bytes=0-9,10-19", "", "bytes=0-19", 20},
		"sorted":               {"bytes=500-509,0-9", "", "bytes=0-9,500-509", 20},
		"amplification":        {"bytes=" + strings.Repeat("0-0,", 50000), "", "bytes=0-0", 1},
		"too many disjoint":    {"bytes=" + manyRanges(17), "", "", size},
		"at the limit":         {"bytes=" + manyRanges(16), "", "bytes=" + manyRanges(16), 16},
		"unsatisfiable":        {"bytes=5000-6000", "", "bytes=5000-6000", size},
		"garbage left alone":   {"bytes=x-y", "", "bytes=x-y", size},
		"other unit":           {"items=0-1", "", "items=0-1", size},
		"if-range: whole body": {"bytes=0-0", `"etag"`, "bytes=0-0", size},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.reqRange != "" {
				r.Header.Set("Range", tt.reqRange)
			}
			if tt.ifRange != "" {
				r.Header.Set("If-Range", tt.ifRange)
			}
			if got := limitRanges(r, size); got != tt.wantBytes {
				t.Errorf("bytes = %d, want %d", got, tt.wantBytes)
			}
			if got := r.Header.Get("Range"); got != tt.wantRange {
				t.Errorf("Range = %.80q, want %.80q", got, tt.wantRange)
			}
		})
	}
}

// manyRanges is n disjoint one-byte ranges.
func manyRanges(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%d-%d", i*10, i*10)
	}
	return strings.Join(parts, ",")
}

// TestDatastoreURI: matrix-media-repo's datastore listing names a file
// datastore by its path and an S3 one as s3://endpoint/bucket.
func TestDatastoreURI(t *testing.T) {
	for _, c := range []struct {
		ds   config.Datastore
		want string
	}{
		{config.Datastore{Type: "file", Opts: config.DatastoreOpts{Path: "/var/lib/media"}}, "/var/lib/media"},
		{config.Datastore{Type: "s3", Opts: config.DatastoreOpts{Endpoint: "s3.eu-central-1.amazonaws.com", BucketName: "media"}}, "s3://s3.eu-central-1.amazonaws.com/media"},
	} {
		if got := datastoreURI(c.ds); got != c.want {
			t.Errorf("datastoreURI(%s) = %q, want %q", c.ds.Type, got, c.want)
		}
	}
}
