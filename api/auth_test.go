package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mediarepo/mediarepo/config"
)

func TestAuth(t *testing.T) {
	const download = "/_matrix/client/v1/media/download/example.org/abcdef"
	tests := map[string]struct {
		method, path string
		opts         []reqOpt
		wantStatus   int
		wantErrcode  string
	}{
		"no token":             {"GET", download, nil, 401, "M_MISSING_TOKEN"},
		"not bearer":           {"GET", download, []reqOpt{withHeader("Authorization", "Basic abc")}, 401, "M_MISSING_TOKEN"},
		"empty bearer":         {"GET", download, []reqOpt{withHeader("Authorization", "Bearer ")}, 401, "M_MISSING_TOKEN"},
		"unknown token":        {"GET", download, []reqOpt{withToken("wrong")}, 401, "M_UNKNOWN_TOKEN"},
		"query token refused":  {"GET", download + "?access_token=" + aliceToken, nil, 401, "M_MISSING_TOKEN"},
		"auth before params":   {"GET", "/_matrix/client/v1/media/download/example.org/abc?timeout_ms=x", nil, 401, "M_MISSING_TOKEN"},
		"auth before bad path": {"GET", "/_matrix/client/v1/media/download/exa%20mple/%2F%2F", nil, 401, "M_MISSING_TOKEN"},
		"guest may download":   {"GET", download, []reqOpt{withToken(guestToken)}, 404, "M_NOT_FOUND"},
		"guest may not upload": {"POST", "/_matrix/media/v3/upload", []reqOpt{withToken(guestToken)}, 403, "M_GUEST_ACCESS_FORBIDDEN"},
		"guest may not config": {"GET", "/_matrix/client/v1/media/config", []reqOpt{withToken(guestToken)}, 403, "M_GUEST_ACCESS_FORBIDDEN"},
		"shared secret":        {"GET", download, []reqOpt{withToken(sharedToken)}, 404, "M_NOT_FOUND"},
		"lower-case bearer":    {"GET", download, []reqOpt{withHeader("Authorization", "bearer "+aliceToken)}, 404, "M_NOT_FOUND"},
		// The homeserver of example.org answers with a user of other.example.
		"user of another server": {"POST", "/_matrix/media/v3/upload", []reqOpt{withToken(crossToken)}, 403, "M_FORBIDDEN"},
	}
	ts := newTestServer(t, "sqlite", nil)
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			resp, body := ts.do(t, tt.method, tt.path, strings.NewReader(""), tt.opts...)
			wantError(t, resp, body, tt.wantStatus, tt.wantErrcode)
			if tt.wantErrcode == "M_UNKNOWN_TOKEN" && !strings.Contains(string(body), `"soft_logout":true`) {
				t.Errorf("body %s does not relay the homeserver's soft_logout", body)
			}
		})
	}
	if logs := ts.logs.String(); strings.Contains(logs, aliceToken) || strings.Contains(logs, guestToken) ||
		strings.Contains(logs, sharedToken) || strings.Contains(logs, crossToken) || strings.Contains(logs, "wrong") {
		t.Errorf("a token reached the log:\n%s", logs)
	}
	if !strings.Contains(ts.logs.String(), "user_id=\"@quota:other.example\"") {
		t.Errorf("the refused cross-server user is not logged:\n%s", ts.logs.String())
	}
}

func TestSharedSecretUploads(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	id := ts.mustUpload(t, []byte("from a tool"), "text/plain", "", withToken(sharedToken))
	resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(sharedToken))
	if resp.StatusCode != 200 || string(body) != "from a tool" {
		t.Errorf("download = %d %q", resp.StatusCode, body)
	}
	if ts.fake.Calls() != 0 {
		t.Errorf("shared secret was sent to the homeserver %d times", ts.fake.Calls())
	}
}

func TestQueryTokenWhenAllowed(t *testing.T) {
	ts := newTestServer(t, "sqlite", func(c *config.Config) { c.AccessTokens.AllowQueryParameter = true })
	resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/config?access_token="+aliceToken, nil)
	if resp.StatusCode != 200 {
		t.Errorf("config with ?access_token = %d %s, want 200", resp.StatusCode, body)
	}
	if strings.Contains(ts.logs.String(), aliceToken) {
		t.Error("the query-string token reached the log")
	}
}

func TestHomeserverDown(t *testing.T) {
	tests := map[string]int{
		"5xx":         http.StatusInternalServerError,
		"bad gateway": http.StatusBadGateway,
	}
	for name, status := range tests {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, "sqlite", nil)
			ts.fake.FailWith(status)
			resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/config", nil, withToken(aliceToken))
			wantError(t, resp, body, 502, "M_UNKNOWN")
			if !strings.Contains(string(body), "homeserver") {
				t.Errorf("error %s does not say the homeserver is the problem", body)
			}
			// Recovery is immediate: failures are not cached.
			ts.fake.FailWith(0)
			resp, _ = ts.do(t, "GET", "/_matrix/client/v1/media/config", nil, withToken(aliceToken))
			if resp.StatusCode != 200 {
				t.Errorf("after recovery = %d, want 200", resp.StatusCode)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		ts := newTestServer(t, "sqlite", nil)
		ts.fake.Close()
		resp, body := ts.do(t, "POST", "/_matrix/media/v3/upload", strings.NewReader("x"), withToken(aliceToken))
		wantError(t, resp, body, 502, "M_UNKNOWN")
	})
}
