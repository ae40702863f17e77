//go:build e2e

// The end-to-end suite: a real homeserver (Dendrite v0.13.8), real reverse
// proxies (nginx and Caddy, configured from the examples in docs/), PostgreSQL
// and SQLite, and real client libraries (mautrix-go here, matrix-js-sdk in
// testdata/e2e/client.mjs), all on 127.0.0.1. Run it with `make e2e`, which
// first installs what is missing (testdata/e2e/setup.sh).
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix"

	"github.com/mediarepo/mediarepo/storage/storagetest"
)

const (
	serverName   = "example.org"
	sharedSecret = "e2e-registration-secret"
	// tokenTTL is the access-token cache of the mediarepo under test: short,
	// so that logouts and homeserver outages show within the suite.
	tokenTTL = 2 * time.Second
)

func TestE2E(t *testing.T) {
	hs := startDendrite(t)
	hs.register(t, "alice", "alice-password", false)
	hs.register(t, "bob", "bob-password", false)
	hs.register(t, "mod", "mod-password", true) // an admin of the homeserver
	repoBin := buildRepo(t)
	pngData := testPNG(t)

	scenarios := []struct {
		name       string
		proxy      string // nginx or caddy
		db         string // postgres or sqlite
		delegation bool   // proxy sets X-Forwarded-Host; useForwardedHost: true
	}{
		{"nginx, postgres, delegation", "nginx", "postgres", true},
		{"caddy, sqlite, delegation", "caddy", "sqlite", true},
		{"nginx, sqlite, no delegation", "nginx", "sqlite", false},
		// The set-up of matrix-media-repo's delegation guide: Traefik with a
		// headers middleware setting X-Forwarded-Host (deploy/kubernetes/traefik.yaml).
		{"traefik, postgres, delegation", "traefik", "postgres", true},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			repo := startRepo(t, repoBin, hs.port, sc.db, sc.delegation)
			proxyPort := startProxy(t, sc.proxy, repo.port, hs.port, sc.delegation)
			c := newE2EClient(t, proxyPort, sc.delegation)

			t.Run("mautrix-go", func(t *testing.T) { checkMautrix(t, c, pngData) })
			t.Run("async upload and URL preview", func(t *testing.T) { checkAsyncAndPreview(t, c, pngData) })
			if sc.delegation {
				// Node's fetch cannot be pointed at example.org, so matrix-js-sdk
				// runs where the proxy's own address is the homeserver URL.
				t.Run("matrix-js-sdk", func(t *testing.T) { checkJSClient(t, c.baseURL, pngData) })
			}
			t.Run("client-sent X-Forwarded-Host cannot pick a tenant", func(t *testing.T) { checkForwardedHost(t, c, pngData) })
			t.Run("logged-out token refused", func(t *testing.T) { checkLogout(t, c) })
			t.Run("homeserver admin quarantines and purges", func(t *testing.T) { checkAdmin(t, c, pngData) })
			if sc.proxy == "nginx" { // docs/nginx.conf routes the console
				t.Run("operator console", func(t *testing.T) { checkConsole(t, c) })
			}
			t.Run("SIGHUP reloads the config", func(t *testing.T) { checkReload(t, c, repo) })
		})
	}

	t.Run("import from Dendrite", func(t *testing.T) { checkDendriteImport(t, hs, repoBin) })

	t.Run("three instances on S3 behind nginx", func(t *testing.T) { checkScaleOut(t, hs, repoBin) })

	t.Run("virus scanning with clamd", func(t *testing.T) { checkAntivirus(t, hs, repoBin, pngData) })

	t.Run("video, audio and WebP thumbnails", func(t *testing.T) { checkFormats(t, hs, repoBin, pngData) })

	t.Run("homeserver outage", func(t *testing.T) {
		repo := startRepo(t, repoBin, hs.port, "sqlite", true)
		proxyPort := startProxy(t, "nginx", repo.port, hs.port, true)
		checkOutage(t, newE2EClient(t, proxyPort, true), hs, pngData)
	})
}

// e2eClient talks to the proxy as a client app would.
type e2eClient struct {
	baseURL string // what a client is configured with
	http    *http.Client
}

func newE2EClient(t *testing.T, proxyPort int, delegation bool) *e2eClient {
	c := &e2eClient{baseURL: fmt.Sprintf("http://127.0.0.1:%d", proxyPort), http: &http.Client{Timeout: 30 * time.Second}}
	if !delegation {
		// Without delegation clients reach the server name itself: resolve
		// example.org to the proxy, as DNS would.
		c.baseURL = fmt.Sprintf("http://%s:%d", serverName, proxyPort)
		dialer := &net.Dialer{}
		c.http.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, _ := net.SplitHostPort(addr); host == serverName {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return dialer.DialContext(ctx, network, addr)
		}}
	}
	return c
}

func (c *e2eClient) mautrix(t *testing.T, user, password string) *mautrix.Client {
	t.Helper()
	cli, err := mautrix.NewClient(c.baseURL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cli.Client = c.http
	_, err = cli.Login(context.Background(), &mautrix.ReqLogin{
		Type:             mautrix.AuthTypePassword,
		Identifier:       mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: user},
		Password:         password,
		StoreCredentials: true,
	})
	if err != nil {
		t.Fatalf("login %s through the proxy: %v", user, err)
	}
	return cli
}

// do sends a raw request through the proxy.
func (c *e2eClient) do(t *testing.T, method, path, token string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, c.baseURL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func checkMautrix(t *testing.T, c *e2eClient, png []byte) {
	ctx := context.Background()
	cli := c.mautrix(t, "alice", "alice-password")
	up, err := cli.UploadBytesWithName(ctx, png, "image/png", "e2e image.png")
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if up.ContentURI.Homeserver != serverName {
		t.Fatalf("content_uri = %s, want mxc://%s/...", up.ContentURI, serverName)
	}
	got, err := cli.DownloadBytes(ctx, up.ContentURI)
	if err != nil || !bytes.Equal(got, png) {
		t.Fatalf("download = %d bytes, %v; want the %d uploaded", len(got), err, len(png))
	}
	resp, err := cli.DownloadThumbnail(ctx, up.ContentURI, 96, 96, mautrix.DownloadThumbnailExtra{Method: "crop"})
	if err != nil {
		t.Fatalf("thumbnail: %v", err)
	}
	defer resp.Body.Close()
	thumb, _ := io.ReadAll(resp.Body)
	img, _, err := image.Decode(bytes.NewReader(thumb))
	if resp.StatusCode != 200 || err != nil || img.Bounds().Dx() != 96 || img.Bounds().Dy() != 96 {
		t.Errorf("thumbnail = %d %s, decoded %v %v; want a 96x96 image", resp.StatusCode, resp.Header.Get("Content-Type"), img, err)
	}
	cfg, err := cli.GetMediaConfig(ctx)
	if err != nil || cfg.UploadSize != 50<<20 {
		t.Errorf("media config = %+v, %v; want m.upload.size %d", cfg, err, 50<<20)
	}
}

// checkAsyncAndPreview reserves an mxc:// URI, starts a download that waits
// for it, uploads with PUT, and asks for a preview of a page the test serves.
func checkAsyncAndPreview(t *testing.T, c *e2eClient, png []byte) {
	ctx := context.Background()
	cli := c.mautrix(t, "alice", "alice-password")
	created, err := cli.CreateMXC(ctx)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, err := cli.DownloadBytes(ctx, created.ContentURI) // waits for the upload
		if err != nil {
			t.Errorf("waiting download: %v", err)
		}
		got <- b
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := cli.UploadMedia(ctx, mautrix.ReqUploadMedia{MXC: created.ContentURI, ContentBytes: png, ContentType: "image/png"}); err != nil {
		t.Fatalf("PUT to the reserved URI: %v", err)
	}
	if b := <-got; !bytes.Equal(b, png) {
		t.Errorf("waiting download got %d bytes, want the %d uploaded", len(b), len(png))
	}

	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<html><head><meta property="og:title" content="E2E page"><title>x</title></head></html>`)
	}))
	defer site.Close()
	p, err := cli.GetURLPreview(ctx, site.URL+"/page")
	if err != nil || p.Title != "E2E page" {
		t.Errorf("preview = %+v, %v; want og:title E2E page", p, err)
	}
}

func checkJSClient(t *testing.T, baseURL string, png []byte) {
	path := filepath.Join(t.TempDir(), "image.png")
	os.WriteFile(path, png, 0o600)
	out, err := exec.Command("node", "testdata/e2e/client.mjs", baseURL, "bob", "bob-password", path).Output()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, out)
	}
	var r struct {
		Error               string `json:"error"`
		ContentURI          string `json:"content_uri"`
		DownloadStatus      int    `json:"download_status"`
		DownloadMatches     bool   `json:"download_matches"`
		DownloadDisposition string `json:"download_disposition"`
		ThumbnailStatus     int    `json:"thumbnail_status"`
		ThumbnailType       string `json:"thumbnail_type"`
		ThumbnailBytes      int    `json:"thumbnail_bytes"`
		UploadSize          int    `json:"upload_size"`
	}
	// matrix-js-sdk logs to stdout too; the result is the last line.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil || r.Error != "" {
		t.Fatalf("node client said %s (%v)", out, err)
	}
	if !strings.HasPrefix(r.ContentURI, "mxc://"+serverName+"/") {
		t.Errorf("content_uri = %q", r.ContentURI)
	}
	if r.DownloadStatus != 200 || !r.DownloadMatches || r.DownloadDisposition != "inline; filename*=utf-8''from%20js.png" {
		t.Errorf("download = %d, matches %v, disposition %q", r.DownloadStatus, r.DownloadMatches, r.DownloadDisposition)
	}
	if r.ThumbnailStatus != 200 || r.ThumbnailType != "image/jpeg" || r.ThumbnailBytes == 0 {
		t.Errorf("thumbnail = %d %s %d bytes", r.ThumbnailStatus, r.ThumbnailType, r.ThumbnailBytes)
	}
	if r.UploadSize != 50<<20 {
		t.Errorf("m.upload.size = %d", r.UploadSize)
	}
}

func checkForwardedHost(t *testing.T, c *e2eClient, png []byte) {
	cli := c.mautrix(t, "alice", "alice-password")
	resp, body := c.do(t, "POST", "/_matrix/media/v3/upload", cli.AccessToken, png, map[string]string{
		"Content-Type": "image/png", "X-Forwarded-Host": "tenant2.example",
	})
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal(body, &out)
	if resp.StatusCode != 200 || !strings.HasPrefix(out.ContentURI, "mxc://"+serverName+"/") {
		t.Errorf("upload with a client-sent X-Forwarded-Host = %d %s; want media of %s", resp.StatusCode, body, serverName)
	}
}

// checkLogout logs out through the proxy, which sends logout to mediarepo:
// the token is refused at once, not when its cache entry expires.
func checkLogout(t *testing.T, c *e2eClient) {
	cli := c.mautrix(t, "alice", "alice-password")
	token := cli.AccessToken
	other := c.mautrix(t, "alice", "alice-password").AccessToken // a second device
	for _, tok := range []string{token, other} {
		if resp, body := c.do(t, "GET", "/_matrix/client/v1/media/config", tok, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("config before logout = %d %s", resp.StatusCode, body) // and the token is cached now
		}
	}
	if _, err := cli.Logout(context.Background()); err != nil {
		t.Fatalf("logout through the proxy: %v", err)
	}
	resp, body := c.do(t, "GET", "/_matrix/client/v1/media/config", token, nil, nil)
	if resp.StatusCode != 401 || !strings.Contains(string(body), "M_UNKNOWN_TOKEN") {
		t.Errorf("config right after logout = %d %s, want 401 M_UNKNOWN_TOKEN", resp.StatusCode, body)
	}
	if resp, body := c.do(t, "GET", "/_matrix/client/v1/media/config", other, nil, nil); resp.StatusCode != 200 {
		t.Errorf("the other device after one logout = %d %s", resp.StatusCode, body)
	}
	if resp, body := c.do(t, "POST", "/_matrix/client/v3/logout/all", other, []byte("{}"), nil); resp.StatusCode != 200 {
		t.Fatalf("logout/all = %d %s", resp.StatusCode, body)
	}
	if resp, _ := c.do(t, "GET", "/_matrix/client/v1/media/config", other, nil, nil); resp.StatusCode != 401 {
		t.Errorf("after logout/all = %d, want 401", resp.StatusCode)
	}
}

// checkAdmin: a Dendrite admin quarantines and purges through the proxy,
// with matrix-media-repo's and Synapse's routes; a user may not.
func checkAdmin(t *testing.T, c *e2eClient, _ []byte) {
	png := uniquePNG(t) // bytes no other subtest uploaded: quarantine is of bytes
	alice := c.mautrix(t, "alice", "alice-password")
	mod := c.mautrix(t, "mod", "mod-password").AccessToken
	bob := c.mautrix(t, "bob", "bob-password").AccessToken
	up, err := alice.UploadBytes(context.Background(), png, "image/png")
	if err != nil {
		t.Fatal(err)
	}
	id := up.ContentURI.FileID
	dl := "/_matrix/client/v1/media/download/" + serverName + "/" + id
	if resp, body := c.do(t, "POST", "/_matrix/media/unstable/admin/quarantine/"+serverName+"/"+id, bob, nil, nil); resp.StatusCode != 403 {
		t.Errorf("quarantine by a user = %d %s, want 403", resp.StatusCode, body)
	}
	resp, body := c.do(t, "POST", "/_matrix/media/unstable/admin/quarantine/"+serverName+"/"+id, mod, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"num_quarantined":1`) {
		t.Fatalf("quarantine by the Dendrite admin = %d %s", resp.StatusCode, body)
	}
	if resp, _ := c.do(t, "GET", dl, bob, nil, nil); resp.StatusCode != 404 {
		t.Errorf("download of quarantined media = %d, want 404", resp.StatusCode)
	}
	resp, _ = c.do(t, "GET", "/_matrix/client/v1/media/thumbnail/"+serverName+"/"+id+"?width=96&height=96&method=crop", bob, nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("thumbnail of quarantined media = %d %s, want the replacement PNG", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, body := c.do(t, "POST", "/_matrix/media/v3/upload", bob, png, map[string]string{"Content-Type": "image/png"}); resp.StatusCode != 403 {
		t.Errorf("upload of quarantined bytes = %d %s, want 403", resp.StatusCode, body)
	}
	resp, body = c.do(t, "GET", "/_synapse/admin/v1/media/"+serverName+"/"+id, mod, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"quarantined_by":"@mod:`+serverName+`"`) {
		t.Errorf("media info = %d %s", resp.StatusCode, body)
	}
	resp, body = c.do(t, "DELETE", "/_synapse/admin/v1/media/"+serverName+"/"+id, mod, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"total":1`) {
		t.Errorf("delete by the Dendrite admin = %d %s", resp.StatusCode, body)
	}
	resp, body = c.do(t, "GET", "/_synapse/admin/v1/media/"+serverName+"/"+id, mod, nil, nil)
	if resp.StatusCode != 404 {
		t.Errorf("media info after the purge = %d %s, want 404", resp.StatusCode, body)
	}
	// The bytes stay quarantined after the purge: a new upload is refused.
	if resp, _ := c.do(t, "POST", "/_matrix/media/v3/upload", alice.AccessToken, png, map[string]string{"Content-Type": "image/png"}); resp.StatusCode != 403 {
		t.Errorf("upload of purged quarantined bytes = %d, want 403", resp.StatusCode)
	}
	resp, body = c.do(t, "GET", "/_synapse/admin/v1/statistics/users/media", mod, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"users"`) {
		t.Errorf("statistics = %d %s", resp.StatusCode, body)
	}
}

// checkReload rewrites the config and sends the process SIGHUP: alice
// becomes a repository admin without a restart.
func checkReload(t *testing.T, c *e2eClient, repo *repoProcess) {
	alice := c.mautrix(t, "alice", "alice-password").AccessToken
	if resp, _ := c.do(t, "GET", "/_matrix/media/unstable/admin/datastores", alice, nil, nil); resp.StatusCode != 403 {
		t.Fatalf("datastores before the reload = %d, want 403", resp.StatusCode)
	}
	repo.rewrite(t, repo.config+"admins: [\"@alice:"+serverName+"\"]\n")
	if err := repo.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := c.do(t, "GET", "/_matrix/media/unstable/admin/datastores", alice, nil, nil)
		if resp.StatusCode == 200 {
			if !strings.Contains(string(body), `"local"`) {
				t.Errorf("datastores = %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d ten seconds after SIGHUP", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	repo.rewrite(t, repo.config+"admins: [not a user id]\n")
	repo.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(500 * time.Millisecond)
	if resp, _ := c.do(t, "GET", "/_matrix/media/unstable/admin/datastores", alice, nil, nil); resp.StatusCode != 200 {
		t.Errorf("after a bad file = %d, want the config in force kept", resp.StatusCode)
	}
	if !strings.Contains(repo.log(t), "config reload refused") {
		t.Error("the refused reload is not logged")
	}
}

func checkOutage(t *testing.T, c *e2eClient, hs *dendrite, png []byte) {
	cli := c.mautrix(t, "alice", "alice-password")
	resp, body := c.do(t, "POST", "/_matrix/media/v3/upload", cli.AccessToken, png, map[string]string{"Content-Type": "image/png"})
	if resp.StatusCode != 200 {
		t.Fatalf("upload = %d %s", resp.StatusCode, body)
	}
	var up struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal(body, &up)
	legacy := "/_matrix/media/v3/download/" + strings.TrimPrefix(up.ContentURI, "mxc://")

	hs.stop(t)
	time.Sleep(tokenTTL + 500*time.Millisecond)
	resp, body = c.do(t, "GET", "/_matrix/client/v1/media/config", cli.AccessToken, nil, nil)
	if resp.StatusCode != 502 && resp.StatusCode != 503 {
		t.Errorf("authenticated request with the homeserver down = %d %s, want 502/503 (never 401)", resp.StatusCode, body)
	}
	resp, body = c.do(t, "GET", legacy, "", nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, png) {
		t.Errorf("public download with the homeserver down = %d, %d bytes; want 200 and the media", resp.StatusCode, len(body))
	}

	hs.start(t)
	resp, body = c.do(t, "GET", "/_matrix/client/v1/media/config", cli.AccessToken, nil, nil)
	if resp.StatusCode != 200 {
		t.Errorf("after the homeserver is back = %d %s, want 200", resp.StatusCode, body)
	}
}

// ---- Dendrite ----

type dendrite struct {
	bin, dir, config string
	port             int
	cmd              *exec.Cmd
}

func startDendrite(t *testing.T) *dendrite { return startDendriteAs(t, serverName) }

// startDendriteAs starts a Dendrite whose server name is name.
func startDendriteAs(t *testing.T, name string) *dendrite {
	cache := os.Getenv("MEDIAREPO_E2E_CACHE")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache", "mediarepo-e2e")
	}
	bin := filepath.Join(cache, "dendrite-v0.13.8")
	if _, err := os.Stat(filepath.Join(bin, "dendrite")); err != nil {
		t.Fatalf("Dendrite not built: run `make e2e` (testdata/e2e/setup.sh): %v", err)
	}
	d := &dendrite{bin: bin, dir: t.TempDir(), port: freePort(t)}
	key := filepath.Join(d.dir, "matrix_key.pem")
	mustRun(t, filepath.Join(bin, "generate-keys"), "--private-key", key)
	raw := mustRun(t, filepath.Join(bin, "generate-config"), "-ci", "-dir", d.dir, "-server", name)
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	global := cfg["global"].(map[string]any)
	global["private_key"] = key
	global["disable_federation"] = true
	client := cfg["client_api"].(map[string]any)
	client["registration_disabled"] = true
	client["registration_shared_secret"] = sharedSecret
	client["rate_limiting"] = map[string]any{"enabled": false}
	cfg["logging"] = []any{map[string]any{"type": "std", "level": "warn"}}
	out, _ := yaml.Marshal(cfg)
	d.config = filepath.Join(d.dir, "dendrite.yaml")
	os.WriteFile(d.config, out, 0o600)
	d.start(t)
	t.Cleanup(func() { d.stop(t) })
	return d
}

func (d *dendrite) start(t *testing.T) {
	d.cmd = startProcess(t, d.dir, "dendrite", filepath.Join(d.bin, "dendrite"),
		"--config", d.config, "--http-bind-address", fmt.Sprintf("127.0.0.1:%d", d.port))
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/_matrix/client/versions", d.port), 60*time.Second)
}

func (d *dendrite) stop(t *testing.T) {
	if d.cmd != nil {
		stopProcess(d.cmd)
		d.cmd = nil
	}
}

// register creates a user with the registration shared secret (the
// Synapse-compatible admin API Dendrite implements).
func (d *dendrite) register(t *testing.T, user, password string, admin bool) {
	base := fmt.Sprintf("http://127.0.0.1:%d/_synapse/admin/v1/register", d.port)
	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	var n struct {
		Nonce string `json:"nonce"`
	}
	json.NewDecoder(resp.Body).Decode(&n)
	resp.Body.Close()
	mac := hmac.New(sha1.New, []byte(sharedSecret))
	kind := "notadmin"
	if admin {
		kind = "admin"
	}
	fmt.Fprintf(mac, "%s\x00%s\x00%s\x00%s", n.Nonce, user, password, kind)
	body, _ := json.Marshal(map[string]any{
		"nonce": n.Nonce, "username": user, "password": password, "admin": admin, "mac": hex.EncodeToString(mac.Sum(nil)),
	})
	resp, err = http.Post(base, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("register %s: %d %s", user, resp.StatusCode, b)
	}
}

// ---- mediarepo ----

func buildRepo(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "media-repo")
	mustRun(t, "go", "build", "-tags", "nodynamic", "-o", bin, ".") // as the Makefile builds it
	return bin
}

// repoProcess is a running mediarepo and its config.
type repoProcess struct {
	port      int
	cmd       *exec.Cmd
	dir, path string
	config    string // the file as first written
}

func (r *repoProcess) rewrite(t *testing.T, config string) {
	if err := os.WriteFile(r.path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (r *repoProcess) log(t *testing.T) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "media-repo.log"))
	return string(b)
}

func startRepo(t *testing.T, bin string, hsPort int, db string, useForwardedHost bool) *repoProcess {
	return startRepoWith(t, bin, hsPort, db, useForwardedHost, "")
}

// startRepoWith is startRepo with extra top-level config sections.
func startRepoWith(t *testing.T, bin string, hsPort int, db string, useForwardedHost bool, extra string) *repoProcess {
	dir := t.TempDir()
	port := freePort(t)
	database := fmt.Sprintf("{sqlite: %q}", filepath.Join(dir, "media-repo.db"))
	if db == "postgres" {
		database = fmt.Sprintf("{postgres: %q}", freshDatabase(t))
	}
	cfg := fmt.Sprintf(`
repo: {bindAddress: 127.0.0.1, port: %d, useForwardedHost: %t, freezeUnauthenticatedMedia: false, logLevel: info}
database: %s
homeservers:
  - {name: %s, csApi: "http://127.0.0.1:%d"}
  - {name: tenant2.example, csApi: "http://127.0.0.1:%d"}
accessTokens: {maxCacheTimeSeconds: %d}
# The test's own page is on loopback, which previews refuse unless allowed explicitly.
urlPreviews: {enabled: true, allowedNetworks: ["127.0.0.0/8"]}
datastores: [{type: file, id: local, forKinds: [all], opts: {path: %q}}]
uploads: {maxBytes: %d}
%s
`, port, useForwardedHost, database, serverName, hsPort, hsPort, int(tokenTTL.Seconds()), filepath.Join(dir, "media"), 50<<20, extra)
	return startRepoConfig(t, bin, dir, port, cfg)
}

// startRepoConfig starts mediarepo in dir with the config cfg, which
// listens on port.
func startRepoConfig(t *testing.T, bin, dir string, port int, cfg string) *repoProcess {
	path := filepath.Join(dir, "media-repo.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	cmd := startProcess(t, dir, "media-repo", bin, "-config", path)
	r := &repoProcess{port: port, cmd: cmd, dir: dir, path: path, config: cfg}
	t.Cleanup(func() {
		stopProcess(cmd)
		if t.Failed() {
			t.Logf("--- media-repo log (port %d) ---\n%s", port, tail([]byte(r.log(t)), 3000))
		}
	})
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", port), 30*time.Second)
	return r
}

// freshDatabase creates a PostgreSQL database for one run and drops it after.
func freshDatabase(t *testing.T) string {
	base := os.Getenv("MEDIAREPO_TEST_POSTGRES")
	if base == "" {
		base = storagetest.DefaultPostgresDSN
	}
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatal(err)
	}
	name := "mediarepo_e2e_" + randomHex(6)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
	})
	return strings.Replace(base, "/test?", "/"+name+"?", 1)
}

// ---- proxies, configured from the examples in docs/ ----

func startProxy(t *testing.T, kind string, repoPort, hsPort int, delegation bool) int {
	return startProxyTo(t, kind, []int{repoPort}, hsPort, delegation)
}

// startProxyTo starts a proxy in front of one or more mediarepo instances
// (nginx only for more than one: an upstream with a server line each).
func startProxyTo(t *testing.T, kind string, repoPorts []int, hsPort int, delegation bool) int {
	port := freePort(t)
	dir := t.TempDir()
	repoPort := repoPorts[0]
	var cmd *exec.Cmd
	switch kind {
	case "nginx":
		conf := nginxConfig(t, dir, port, repoPorts, hsPort, delegation)
		cmd = startProcess(t, dir, "nginx", "nginx", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	case "caddy":
		conf := caddyConfig(t, dir, port, repoPort, hsPort, delegation)
		cmd = startProcess(t, dir, "caddy", "caddy", "run", "--config", conf, "--adapter", "caddyfile")
	case "traefik":
		conf := traefikConfig(t, dir, port, repoPort, hsPort)
		cmd = startProcess(t, dir, "traefik", traefikBinary(t), "--configFile="+conf)
	}
	t.Cleanup(func() {
		stopProcess(cmd)
		if t.Failed() {
			for _, name := range []string{"error.log", kind + ".log"} {
				if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil && len(b) > 0 {
					t.Logf("--- %s %s ---\n%s", kind, name, tail(b, 3000))
				}
			}
		}
	})
	versions := fmt.Sprintf("http://127.0.0.1:%d/_matrix/client/versions", port)
	waitHTTP(t, versions, 30*time.Second)
	// Traefik listens before its file provider's routers are in: until then it answers 404.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(versions); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
	}
	return port
}

// nginxConfig turns docs/nginx.conf into a runnable config: plain HTTP on a
// loopback port instead of TLS on 443, the test's upstream ports, and, without
// delegation, no X-Forwarded-Host line (as the example's header says).
func nginxConfig(t *testing.T, dir string, port int, repoPorts []int, hsPort int, delegation bool) string {
	servers := ""
	for _, p := range repoPorts {
		servers += fmt.Sprintf("server 127.0.0.1:%d; ", p)
	}
	doc := readDoc(t, "nginx.conf")
	var lines []string
	for _, l := range strings.Split(doc, "\n") {
		trim := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(trim, "listen 443"):
			l = fmt.Sprintf("    listen 127.0.0.1:%d;", port)
		case strings.HasPrefix(trim, "listen [::]:443"), strings.HasPrefix(trim, "http2 on"):
			continue
		case strings.Contains(trim, "X-Forwarded-Host") && !delegation:
			continue
		}
		l = strings.ReplaceAll(l, "server 127.0.0.1:8000; ", servers)
		l = strings.ReplaceAll(l, "127.0.0.1:8008", fmt.Sprintf("127.0.0.1:%d", hsPort))
		lines = append(lines, l)
	}
	user := ""
	if os.Geteuid() == 0 {
		// Workers would run as nobody, who cannot write the temporary files
		// of large responses under the test's directory.
		user = "user root;"
	}
	conf := fmt.Sprintf(`daemon off;
%[3]s
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, strings.Join(lines, "\n"), user)
	path := filepath.Join(dir, "nginx.conf")
	os.WriteFile(path, []byte(conf), 0o600)
	return path
}

// caddyConfig turns docs/Caddyfile into a runnable config the same way.
func caddyConfig(t *testing.T, dir string, port, repoPort, hsPort int, delegation bool) string {
	doc := readDoc(t, "Caddyfile")
	doc = strings.Replace(doc, "matrix.example.com {", fmt.Sprintf("http://127.0.0.1:%d {", port), 1)
	doc = strings.ReplaceAll(doc, "127.0.0.1:8000", fmt.Sprintf("127.0.0.1:%d", repoPort))
	doc = strings.ReplaceAll(doc, "127.0.0.1:8008", fmt.Sprintf("127.0.0.1:%d", hsPort))
	if !delegation {
		doc = strings.ReplaceAll(doc, "header_up X-Forwarded-Host example.org", "")
	}
	path := filepath.Join(dir, "Caddyfile")
	os.WriteFile(path, []byte(doc), 0o600)
	return path
}

// traefikConfig turns the Kubernetes CRDs of deploy/kubernetes/traefik.yaml
// (the Middleware and IngressRoute of matrix-media-repo's delegation guide)
// into Traefik's file provider: the same routers, rules, priorities,
// middleware and services, with plain HTTP on a loopback port and the
// test's upstream ports.
func traefikConfig(t *testing.T, dir string, port, repoPort, hsPort int) string {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", "traefik.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{"mediarepo": repoPort, "synapse": hsPort}
	routers, middlewares, services := map[string]any{}, map[string]any{}, map[string]any{}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var crd struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Headers     map[string]any `yaml:"headers"`
				EntryPoints []string       `yaml:"entryPoints"`
				Routes      []struct {
					Match       string `yaml:"match"`
					Priority    int    `yaml:"priority"`
					Middlewares []struct {
						Name string `yaml:"name"`
					} `yaml:"middlewares"`
					Services []struct {
						Name string `yaml:"name"`
					} `yaml:"services"`
				} `yaml:"routes"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &crd); err != nil {
			t.Fatal(err)
		}
		switch crd.Kind {
		case "Middleware":
			middlewares[crd.Metadata.Name] = map[string]any{"headers": crd.Spec.Headers}
		case "IngressRoute":
			for i, r := range crd.Spec.Routes {
				var mws []string
				for _, m := range r.Middlewares {
					mws = append(mws, m.Name)
				}
				svc := r.Services[0].Name
				services[svc] = map[string]any{"loadBalancer": map[string]any{
					"servers": []any{map[string]any{"url": fmt.Sprintf("http://127.0.0.1:%d", ports[svc])}}}}
				routers[fmt.Sprintf("%s-%d", crd.Metadata.Name, i)] = map[string]any{
					"rule":     strings.ReplaceAll(r.Match, "Host(`matrix.example.com`)", "Host(`127.0.0.1`)"),
					"priority": r.Priority, "entryPoints": crd.Spec.EntryPoints, "middlewares": mws, "service": svc,
				}
			}
		}
	}
	if len(routers) == 0 || len(middlewares) == 0 {
		t.Fatal("traefik.yaml has no IngressRoute or Middleware")
	}
	dynamic, _ := yaml.Marshal(map[string]any{"http": map[string]any{"routers": routers, "middlewares": middlewares, "services": services}})
	dynPath := filepath.Join(dir, "dynamic.yaml")
	os.WriteFile(dynPath, dynamic, 0o600)
	static, _ := yaml.Marshal(map[string]any{
		"entryPoints": map[string]any{"websecure": map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", port)}},
		"providers":   map[string]any{"file": map[string]any{"filename": dynPath}},
		"log":         map[string]any{"level": "WARN"},
	})
	path := filepath.Join(dir, "traefik.yaml")
	os.WriteFile(path, static, 0o600)
	return path
}

func traefikBinary(t *testing.T) string {
	cache := os.Getenv("MEDIAREPO_E2E_CACHE")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache", "mediarepo-e2e")
	}
	bin := filepath.Join(cache, "traefik-v3.7.13", "traefik")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Traefik not built: run `make e2e` (testdata/e2e/setup.sh): %v", err)
	}
	return bin
}

func readDoc(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// uniquePNG is a 200x150 image of random colours, new bytes each call.
func uniquePNG(t *testing.T) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 200, 150))
	rand.Read(img.Pix)
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// testPNG is an opaque 400x300 image: big enough to be thumbnailed.
func testPNG(t *testing.T) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 400, 300))
	for y := 0; y < 300; y++ {
		for x := 0; x < 400; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
