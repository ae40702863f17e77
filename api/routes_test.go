package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mediarepo/mediarepo/config"
)

func TestRouting(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	tests := map[string]struct {
		method, path string
		host         string
		wantStatus   int
		wantErrcode  string
	}{
		"unknown path":             {"GET", "/_matrix/media/v3/nope", "", 404, "M_UNRECOGNIZED"},
		"unknown version":          {"GET", "/_matrix/media/v9/config", "", 404, "M_UNRECOGNIZED"},
		"outside matrix":           {"GET", "/index.html", "", 404, "M_UNRECOGNIZED"},
		"wrong method on upload":   {"GET", "/_matrix/media/v3/upload", "", 405, "M_UNRECOGNIZED"},
		"wrong method, download":   {"DELETE", "/_matrix/client/v1/media/download/example.org/abc", "", 405, "M_UNRECOGNIZED"},
		"dot segments not cleaned": {"GET", "/_matrix/media/v3/download/example.org/../../etc/passwd", "", 404, "M_UNRECOGNIZED"},
		"unknown host":             {"GET", "/_matrix/media/v3/download/example.org/abc", "evil.example", 404, "M_NOT_FOUND"},
		"unknown host, bad path":   {"GET", "/nope", "evil.example", 404, "M_NOT_FOUND"},
		"config needs a token r0":  {"GET", "/_matrix/media/r0/config", "", 401, "M_MISSING_TOKEN"},
		"config needs a token v1":  {"GET", "/_matrix/media/v1/config", "", 401, "M_MISSING_TOKEN"},
		"client v1 config":         {"GET", "/_matrix/client/v1/media/config", "", 401, "M_MISSING_TOKEN"},
		"upload r0":                {"POST", "/_matrix/media/r0/upload", "", 401, "M_MISSING_TOKEN"},
		"upload v1":                {"POST", "/_matrix/media/v1/upload", "", 401, "M_MISSING_TOKEN"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var opts []reqOpt
			if tt.host != "" {
				opts = append(opts, withHost(tt.host))
			}
			resp, body := ts.do(t, tt.method, tt.path, nil, opts...)
			wantError(t, resp, body, tt.wantStatus, tt.wantErrcode)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("error response Access-Control-Allow-Origin = %q, want *", got)
			}
		})
	}
	if !strings.Contains(ts.logs.String(), "host=evil.example host_header=Host") {
		t.Errorf("unknown host not logged with its header:\n%s", ts.logs.String())
	}
}

func TestHealthzNeedsNoHost(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	resp, body := ts.do(t, "GET", "/healthz", nil, withHost("whatever.invalid"))
	if resp.StatusCode != 200 || !strings.Contains(string(body), "ok") {
		t.Errorf("/healthz = %d %s", resp.StatusCode, body)
	}
}

func TestOptionsPreflight(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	for _, path := range []string{
		"/_matrix/media/v3/upload",
		"/_matrix/client/v1/media/download/example.org/abc",
		"/_matrix/media/v3/anything/at/all",
	} {
		resp, body := ts.do(t, "OPTIONS", path, nil)
		if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
			t.Errorf("OPTIONS %s = %d %q, want 204 and no body", path, resp.StatusCode, body)
		}
		h := resp.Header
		if h.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("OPTIONS %s CORS headers = %v", path, h)
		}
	}
}

func TestForwardedHost(t *testing.T) {
	tests := map[string]struct {
		useForwarded bool
		host, xfh    string
		wantStatus   int
	}{
		"ignored when off":          {false, "matrix.example.com", "example.org", 404},
		"host used when off":        {false, "example.org", "evil.example", 401},
		"honoured when on":          {true, "matrix.example.com", "example.org", 401},
		"first value when on":       {true, "matrix.example.com", "example.org, evil.example", 401},
		"unknown forwarded refused": {true, "example.org", "evil.example", 404},
		"falls back to Host":        {true, "example.org", "", 401},
		"case and port ignored":     {true, "x", "EXAMPLE.org:443", 401},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, "sqlite", func(c *config.Config) { c.Repo.UseForwardedHost = tt.useForwarded })
			opts := []reqOpt{withHost(tt.host)}
			if tt.xfh != "" {
				opts = append(opts, withHeader("X-Forwarded-Host", tt.xfh))
			}
			resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/config", nil, opts...)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d (404: host refused, 401: host accepted, no token)", resp.StatusCode, tt.wantStatus)
			}
		})
	}
}

func TestConfigEndpoint(t *testing.T) {
	tests := map[string]struct {
		maxBytes, reported int64
		want               string
	}{
		"max bytes":     {1000, 0, `{"m.upload.size":1000}`},
		"reported":      {1000, 500, `{"m.upload.size":500}`},
		"reported none": {1000, -1, `{}`},
		"unlimited":     {0, 0, `{}`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, "sqlite", func(c *config.Config) {
				c.Uploads.MaxBytes, c.Uploads.ReportedMaxBytes = tt.maxBytes, tt.reported
			})
			for _, path := range []string{"/_matrix/media/v3/config", "/_matrix/client/v1/media/config"} {
				resp, body := ts.do(t, "GET", path, nil, withToken(aliceToken))
				if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != tt.want {
					t.Errorf("%s = %d %s, want %s", path, resp.StatusCode, body, tt.want)
				}
			}
		})
	}
}
