//go:build e2e

package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// checkConsole: through nginx (docs/nginx.conf's console location), the
// Dendrite admin signs in to the console with a real access token, finds an
// upload on the recent page, quarantines it with the media page's form, and
// its download then answers 404, then unquarantines it; a user's token is
// refused.
func checkConsole(t *testing.T, c *e2eClient) {
	alice := c.mautrix(t, "alice", "alice-password")
	mod := c.mautrix(t, "mod", "mod-password").AccessToken
	bob := c.mautrix(t, "bob", "bob-password").AccessToken
	up, err := alice.UploadBytes(context.Background(), uniquePNG(t), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	id := up.ContentURI.FileID
	base := c.baseURL + "/_mediarepo/console"
	browser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Transport: c.http.Transport, Timeout: c.http.Timeout}
	}
	fetch := func(cl *http.Client, method, path string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, base+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	signIn := func(cl *http.Client, token string) (int, string) {
		t.Helper()
		_, page := fetch(cl, "GET", "/login", nil)
		m := consoleCSRF.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no sign-in form through the proxy:\n%.500s", page)
		}
		return fetch(cl, "POST", "/login", url.Values{"csrf": {m[1]}, "token": {token}})
	}
	if status, _ := signIn(browser(), bob); status != http.StatusForbidden {
		t.Errorf("a user's sign-in: %d, want 403", status)
	}
	admin := browser()
	if status, page := signIn(admin, mod); status != 200 || !strings.Contains(page, "@mod:"+serverName) {
		t.Fatalf("the Dendrite admin's sign-in: %d\n%.500s", status, page)
	}
	if _, page := fetch(admin, "GET", "/recent", nil); !strings.Contains(page, "/thumbnail/"+serverName+"/"+id) {
		t.Errorf("the upload is not on the recent page")
	}
	_, page := fetch(admin, "GET", "/media/"+serverName+"/"+id, nil)
	m := consoleCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("media page without forms:\n%.500s", page)
	}
	if status, _ := fetch(admin, "POST", "/media/"+serverName+"/"+id+"/quarantine", url.Values{"csrf": {m[1]}}); status != 200 {
		t.Errorf("quarantine through the console: %d", status)
	}
	if resp, _ := c.do(t, "GET", "/_matrix/client/v1/media/download/"+serverName+"/"+id, bob, nil, nil); resp.StatusCode != 404 {
		t.Errorf("download after the console's quarantine: %d, want 404", resp.StatusCode)
	}
	// And back: the later checks read every stored media.
	if status, _ := fetch(admin, "POST", "/media/"+serverName+"/"+id+"/unquarantine", url.Values{"csrf": {m[1]}}); status != 200 {
		t.Errorf("unquarantine through the console: %d", status)
	}
	if resp, _ := c.do(t, "GET", "/_matrix/client/v1/media/download/"+serverName+"/"+id, bob, nil, nil); resp.StatusCode != 200 {
		t.Errorf("download after the console's unquarantine: %d, want 200", resp.StatusCode)
	}
}
