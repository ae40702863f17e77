package api_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/console"
)

// consoleClient is a browser-like client of the console: it keeps the
// cookies the console sets (per path) and sends them back.
type consoleClient struct {
	ts      *testServer
	host    string
	cookies map[string]*http.Cookie
}

func newConsoleClient(ts *testServer, host string) *consoleClient {
	return &consoleClient{ts: ts, host: host, cookies: map[string]*http.Cookie{}}
}

func (c *consoleClient) do(t *testing.T, method, path string, form url.Values, opts ...reqOpt) (*http.Response, string) {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
		opts = append(opts, withHeader("Content-Type", "application/x-www-form-urlencoded"))
	} else {
		body = strings.NewReader("")
	}
	opts = append(opts, withHost(c.host), func(r *http.Request) {
		for _, ck := range c.cookies {
			if strings.HasPrefix(console.Prefix+path, ck.Path) {
				r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
			}
		}
	})
	resp, b := c.ts.do(t, method, console.Prefix+path, body, opts...)
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn posts token to the login form and returns the answer.
func (c *consoleClient) signIn(t *testing.T, token string) (*http.Response, string) {
	t.Helper()
	_, page := c.do(t, "GET", "/login", nil)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("login page without a CSRF field:\n%s", page)
	}
	return c.do(t, "POST", "/login", url.Values{"csrf": {m[1]}, "token": {token}})
}

// csrf is the session's CSRF token, read from a page's forms.
func (c *consoleClient) csrf(t *testing.T) string {
	t.Helper()
	_, page := c.do(t, "GET", "/", nil)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page without a CSRF field:\n%s", page)
	}
	return m[1]
}

func TestConsoleSignIn(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	c := newConsoleClient(ts, "example.org")
	resp, _ := c.do(t, "GET", "/", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != console.Prefix+"/login" {
		t.Fatalf("signed out: %d to %q, want 303 to the login page", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := c.do(t, "GET", "/login", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
		t.Errorf("login page %d, CSP %q", resp.StatusCode, csp)
	}
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Error("the login page has a script")
	}

	for name, token := range map[string]string{"user": bobToken, "unknown token": "nope", "empty": ""} {
		resp, page := newConsoleClient(ts, "example.org").signIn(t, token)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Refused") || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("%s: %d %q, want 403 and a refusal on an HTML page", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// Without the login form's CSRF token.
	resp, _ = newConsoleClient(ts, "example.org").do(t, "POST", "/login", url.Values{"token": {aliceToken}})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Set-Cookie") != "" && strings.Contains(resp.Header.Get("Set-Cookie"), "mediarepo_console=") {
		t.Errorf("login without CSRF: %d", resp.StatusCode)
	}

	resp, _ = c.signIn(t, aliceToken)
	ck := c.cookies["mediarepo_console"]
	if resp.StatusCode != http.StatusSeeOther || ck == nil {
		t.Fatalf("admin sign-in: %d, cookies %v", resp.StatusCode, c.cookies)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != console.Prefix || ck.Secure {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path %s, not Secure over plain HTTP", ck, console.Prefix)
	}
	if resp, page := c.do(t, "GET", "/", nil); resp.StatusCode != 200 || !strings.Contains(page, "@alice:example.org") {
		t.Errorf("overview after sign-in: %d", resp.StatusCode)
	}
	// Behind a TLS-terminating proxy the cookie is Secure.
	tlsClient := newConsoleClient(ts, "example.org")
	_, page = tlsClient.do(t, "GET", "/login", nil)
	m := csrfField.FindStringSubmatch(page)
	tlsClient.do(t, "POST", "/login", url.Values{"csrf": {m[1]}, "token": {aliceToken}}, withHeader("X-Forwarded-Proto", "https"))
	if ck := tlsClient.cookies["mediarepo_console"]; ck == nil || !ck.Secure {
		t.Errorf("session cookie behind TLS: %+v, want Secure", ck)
	}
	// The session is for its Host only.
	other := &consoleClient{ts: ts, host: "other.example", cookies: c.cookies}
	if resp, _ := other.do(t, "GET", "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session of example.org on other.example: %d, want 303 to the login page", resp.StatusCode)
	}
	// Logging the token out of the homeserver ends its console sessions.
	mc := newConsoleClient(ts, "example.org")
	if resp, _ := mc.signIn(t, modToken); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("homeserver admin sign-in: %d", resp.StatusCode)
	}
	if resp, body := ts.do(t, "POST", "/_matrix/client/v3/logout", nil, withToken(modToken)); resp.StatusCode != 200 {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	if resp, _ := mc.do(t, "GET", "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("console after the token's logout: %d, want 303 to the login page", resp.StatusCode)
	}
	// Signing out ends it.
	c.do(t, "POST", "/logout", url.Values{"csrf": {c.csrf(t)}})
	if resp, _ := (&consoleClient{ts: ts, host: "example.org", cookies: map[string]*http.Cookie{"mediarepo_console": ck}}).do(t, "GET", "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after signing out: %d, want 303", resp.StatusCode)
	}
}

func TestConsoleActs(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, nil)
		id := ts.mustUpload(t, photo(t, 400, 300), "image/png", "holiday.png", withToken(carolToken))
		again := ts.mustUpload(t, photo(t, 400, 300), "image/png", "same.png", withToken(bobToken))
		c := newConsoleClient(ts, "example.org")
		c.signIn(t, modToken) // a homeserver admin
		_, page := c.do(t, "GET", "/recent", nil)
		if !strings.Contains(page, console.Prefix+"/thumbnail/example.org/"+id) {
			t.Fatalf("recent page lacks the upload's thumbnail:\n%s", page)
		}
		resp, img := c.do(t, "GET", "/thumbnail/example.org/"+id, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(img) < 100 {
			t.Errorf("thumbnail: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(img))
		}
		_, page = c.do(t, "GET", "/media/example.org/"+id, nil)
		if !strings.Contains(page, "@carol:example.org") || !strings.Contains(page, "mxc://example.org/"+again) {
			t.Errorf("media page lacks the uploader or the other media with the same bytes")
		}
		_, page = c.do(t, "GET", "/search?q=mxc://example.org/"+id, nil)
		for _, q := range []string{"@carol:example.org", strings.Repeat("0", 64)} {
			if resp, _ := c.do(t, "GET", "/search?q="+url.QueryEscape(q), nil); resp.StatusCode != 200 {
				t.Errorf("search %s: %d", q, resp.StatusCode)
			}
		}

		// A form without the session's CSRF token changes nothing.
		resp, _ = c.do(t, "POST", "/media/example.org/"+id+"/quarantine", url.Values{})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("quarantine without CSRF: %d, want 403", resp.StatusCode)
		}
		if resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(bobToken)); resp.StatusCode != 200 {
			t.Fatalf("quarantined without CSRF token: download %d", resp.StatusCode)
		}
		csrf := c.csrf(t)
		resp, _ = c.do(t, "POST", "/media/example.org/"+id+"/quarantine", url.Values{"csrf": {csrf}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("quarantine: %d", resp.StatusCode)
		}
		resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(bobToken))
		wantError(t, resp, body, 404, "M_NOT_FOUND")
		resp, img = c.do(t, "GET", "/thumbnail/example.org/"+id, nil)
		if resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(img, "quarantined") {
			t.Errorf("quarantined media's console thumbnail: %s", resp.Header.Get("Content-Type"))
		}
		_, page = c.do(t, "GET", "/recent", nil)
		if strings.Contains(page, console.Prefix+"/thumbnail/example.org/"+id) || !strings.Contains(page, "quarantined") {
			t.Error("the recent page still shows the quarantined media's picture")
		}
		c.do(t, "POST", "/media/example.org/"+id+"/unquarantine", url.Values{"csrf": {csrf}})
		if resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(bobToken)); resp.StatusCode != 200 {
			t.Errorf("after unquarantine: %d", resp.StatusCode)
		}
		c.do(t, "POST", "/media/example.org/"+again+"/pin", url.Values{"csrf": {csrf}})
		if _, page := c.do(t, "GET", "/media/example.org/"+again, nil); !strings.Contains(page, "never purged") {
			t.Error("pin not shown")
		}
		c.do(t, "POST", "/media/example.org/"+id+"/purge", url.Values{"csrf": {csrf}})
		if resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(bobToken)); resp.StatusCode != 404 {
			t.Errorf("after purge: %d", resp.StatusCode)
		}

		// A homeserver admin sees and acts on their homeserver's media only.
		foreign := ts.mustUpload(t, photo(t, 200, 200), "image/png", "", withToken(carolToken), withHost("other.example"))
		for _, p := range []string{"/media/other.example/" + foreign, "/thumbnail/other.example/" + foreign} {
			if resp, _ := c.do(t, "GET", p, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s as example.org's admin: %d, want 403", p, resp.StatusCode)
			}
		}
		// (400, as the admin API answers it: only your own server's media.)
		if resp, _ := c.do(t, "POST", "/media/other.example/"+foreign+"/quarantine", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("quarantining another homeserver's media: %d, want 400", resp.StatusCode)
		}
		if resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/other.example/"+foreign, nil, withToken(bobToken), withHost("other.example")); resp.StatusCode != 200 {
			t.Errorf("another homeserver's media after the refused quarantine: %d", resp.StatusCode)
		}
		if _, page := c.do(t, "GET", "/recent", nil); strings.Contains(page, foreign) {
			t.Error("example.org's admin sees other.example's uploads")
		}

		// A homeserver admin sees neither the configuration nor the tasks.
		for _, p := range []string{"/config", "/tasks"} {
			if resp, _ := c.do(t, "GET", p, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s as a homeserver admin: %d, want 403", p, resp.StatusCode)
			}
		}
		g := newConsoleClient(ts, "example.org")
		g.signIn(t, sharedToken)
		resp, page = g.do(t, "GET", "/config", nil)
		if resp.StatusCode != 200 || strings.Contains(page, sharedToken) || !strings.Contains(page, "********") {
			t.Errorf("config page %d: the shared secret must be masked", resp.StatusCode)
		}
		if resp, _ := g.do(t, "GET", "/tasks", nil); resp.StatusCode != 200 {
			t.Errorf("tasks for a repository admin: %d", resp.StatusCode)
		}
	})
}

func TestConsoleOff(t *testing.T) {
	ts := newTestServer(t, "sqlite", func(c *config.Config) { c.Console.Enabled = false })
	resp, body := ts.do(t, "GET", console.Prefix+"/login", nil)
	wantError(t, resp, body, 404, "M_UNRECOGNIZED")
}
