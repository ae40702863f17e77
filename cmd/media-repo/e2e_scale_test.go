//go:build e2e

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/federation/federationtest"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// scaleOut is three mediarepo instances on one PostgreSQL database, one
// bucket of a real S3 server (SeaweedFS), Redis for the rate buckets,
// behind nginx's round robin, as docs/deployment.md describes it.
type scaleOut struct {
	s3       *storagetest.S3Server
	dsn      string
	repos    []*repoProcess
	metrics  []int // each instance's metrics port
	proxy    int
	client   *e2eClient
	s3Bucket string
	remote   *remoteServer
}

// remoteServer is another homeserver's media repository: a real Dendrite
// for remote.example with a mediarepo of its own (SQLite, disk) behind a
// TLS front that publishes remote.example's signing key and counts the
// federation downloads it serves.
type remoteServer struct {
	name      string
	hs        *dendrite
	repo      *repoProcess
	front     *federationtest.Remote
	downloads atomic.Int32
}

const remoteName = "remote.example"

func startScaleOut(t *testing.T, hs *dendrite, bin string) *scaleOut {
	s := &scaleOut{s3: storagetest.StartS3(t), dsn: freshDatabase(t)}
	s.s3Bucket = s.s3.NewBucket(t)
	// example.org signs its federation requests; remote.example checks them
	// against the key example.org's front publishes.
	localKey, remoteKey := mustKey(t, "local"), mustKey(t, "remote")
	localFront := federationtest.Start(t, serverName, keyOnly(t, localKey, serverName, nil))
	s.remote = startRemote(t, bin, remoteKey, localFront)
	keyPath := filepath.Join(t.TempDir(), "signing.key")
	os.WriteFile(keyPath, []byte(localKey.String()), 0o600)
	var ports []int
	for range 3 {
		dir := t.TempDir()
		port, metrics := freePort(t), freePort(t)
		cfg := fmt.Sprintf(`
repo: {bindAddress: 127.0.0.1, port: %d, useForwardedHost: true, freezeUnauthenticatedMedia: false, logLevel: info}
database: {postgres: %q}
homeservers: [{name: %s, csApi: "http://127.0.0.1:%d", signingKeyPath: %q}]
federation: {allowedNetworks: ["127.0.0.0/8"], customCAFiles: [%q], serverOverrides: {%s: %q}}
accessTokens: {maxCacheTimeSeconds: 60}
redis: {enabled: true, shards: [{name: local, addr: "127.0.0.1:6379"}]}
# Every request comes from 127.0.0.1: buckets (shared through Redis) large enough for the suite.
rateLimit: {requestsPerSecond: 2000, burst: 2000, buckets: {downloads: {capacityBytes: 107374182400, drainBytesPerMinute: 107374182400}}}
metrics: {enabled: true, bindAddress: 127.0.0.1, port: %d}
datastores:
  - type: s3
    id: s3
    forKinds: [all]
    opts: {endpoint: %q, accessKeyId: %q, accessSecret: %q, ssl: false, bucketName: %q, region: us-east-1,
           presignedRedirectSeconds: 300, tempPath: %q}
uploads: {maxBytes: %d}
`, port, s.dsn, serverName, hs.port, keyPath, s.remote.front.CAFile, remoteName, s.remote.front.Listener.Addr().String(),
			metrics, s.s3.Endpoint, storagetest.S3AccessKey, storagetest.S3SecretKey,
			s.s3Bucket, filepath.Join(dir, "s3-temp"), 50<<20)
		os.MkdirAll(filepath.Join(dir, "s3-temp"), 0o755)
		s.repos = append(s.repos, startRepoConfig(t, bin, dir, port, cfg))
		s.metrics = append(s.metrics, metrics)
		ports = append(ports, port)
	}
	s.proxy = startProxyTo(t, "nginx", ports, hs.port, true)
	s.client = newE2EClient(t, s.proxy, true)
	return s
}

func checkScaleOut(t *testing.T, hs *dendrite, bin string) {
	s := startScaleOut(t, hs, bin)
	t.Run("S3: upload, ranged download, redirects", func(t *testing.T) { s.checkS3(t) })
	t.Run("60 first thumbnails over three instances: one generation per size", func(t *testing.T) { s.checkThumbnails(t) })
	t.Run("50 first downloads of remote media over three instances: one fetch", func(t *testing.T) { s.checkRemoteOnce(t) })
	t.Run("logout on one instance refused on the others", func(t *testing.T) { s.checkLogout(t) })
	// nginx keeps a client on one instance for the console (docs/nginx.conf).
	t.Run("operator console behind three instances", func(t *testing.T) { checkConsole(t, s.client) })
	t.Run("60 concurrent uploads over three instances: unique IDs", func(t *testing.T) { s.checkUniqueIDs(t) })
	t.Run("an instance killed with kill -9 mid-upload", func(t *testing.T) { s.checkKill(t) })
	t.Run("S3 stopped, then restarted", func(t *testing.T) { s.checkS3Outage(t) })
}

// noRedirects is the client without following redirects.
func (s *scaleOut) noRedirects() *http.Client {
	c := *s.client.http
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (s *scaleOut) get(t *testing.T, c *http.Client, path, token string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.client.baseURL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (s *scaleOut) upload(t *testing.T, token string, body []byte, contentType string) (string, int) {
	t.Helper()
	resp, b := s.client.do(t, "POST", "/_matrix/media/v3/upload?filename=f.bin", token, body, map[string]string{"Content-Type": contentType})
	var up struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal(b, &up)
	return strings.TrimPrefix(up.ContentURI, "mxc://"+serverName+"/"), resp.StatusCode
}

func (s *scaleOut) checkS3(t *testing.T) {
	cli := s.client.mautrix(t, "alice", "alice-password")
	ctx := context.Background()
	body := bytes.Repeat([]byte("0123456789"), 3<<20/10) // 3 MiB
	up, err := cli.UploadBytesWithName(ctx, body, "application/octet-stream", "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	// mautrix-go follows the authenticated route's redirect to the bucket.
	got, err := cli.DownloadBytes(ctx, up.ContentURI)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("download through the redirect = %d bytes, %v; want the %d uploaded", len(got), err, len(body))
	}
	id := up.ContentURI.FileID
	auth := "/_matrix/client/v1/media/download/" + serverName + "/" + id
	resp, _ := s.get(t, s.noRedirects(), auth, cli.AccessToken, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(loc, s.s3.Endpoint) || !strings.Contains(loc, "X-Amz-Expires=300") {
		t.Errorf("authenticated download = %d Location %q; want 307 to a presigned URL of the bucket", resp.StatusCode, loc)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("redirect Cache-Control = %q, want no-store", resp.Header.Get("Cache-Control"))
	}
	// The bucket answers the presigned URL with mediarepo's headers.
	if r, err := http.Get(loc); err == nil {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || !bytes.Equal(b, body) || !strings.Contains(r.Header.Get("Content-Disposition"), "big.bin") {
			t.Errorf("presigned URL = %d, %d bytes, Content-Disposition %q", r.StatusCode, len(b), r.Header.Get("Content-Disposition"))
		}
	}
	// Legacy route: bytes, unless the client allows a redirect.
	legacy := "/_matrix/media/v3/download/" + serverName + "/" + id
	resp, b := s.get(t, s.noRedirects(), legacy, "", map[string]string{"Range": "bytes=1000-1999"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, body[1000:2000]) ||
		resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 1000-1999/%d", len(body)) {
		t.Errorf("ranged legacy download = %d %q, %d bytes; want 206 and bytes 1000-1999", resp.StatusCode, resp.Header.Get("Content-Range"), len(b))
	}
	resp, _ = s.get(t, s.noRedirects(), legacy+"?allow_redirect=true", "", nil)
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("legacy download with allow_redirect=true = %d, want 307", resp.StatusCode)
	}
	// Ranged through the redirect: the bucket serves the range.
	resp, b = s.get(t, s.client.http, auth, cli.AccessToken, map[string]string{"Range": "bytes=-10"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, body[len(body)-10:]) {
		t.Errorf("ranged authenticated download = %d, %q", resp.StatusCode, b)
	}
}

// generated sums mediarepo_thumbnails_generated_total over the instances.
func (s *scaleOut) generated(t *testing.T) int {
	total := 0
	re := regexp.MustCompile(`(?m)^mediarepo_thumbnails_generated_total (\d+)`)
	for _, port := range s.metrics {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := re.FindSubmatch(b); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			total += n
		}
	}
	return total
}

func (s *scaleOut) rows(t *testing.T, query string, args ...any) int {
	db, err := sql.Open("postgres", s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (s *scaleOut) checkThumbnails(t *testing.T) {
	cli := s.client.mautrix(t, "bob", "bob-password")
	before := s.generated(t)
	id, status := s.upload(t, cli.AccessToken, testPNG(t), "image/png")
	if status != 200 {
		t.Fatalf("upload = %d", status)
	}
	path := "/_matrix/client/v1/media/thumbnail/" + serverName + "/" + id + "?width=96&height=96&method=crop"
	bodies := make([][]byte, 60)
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, b := s.get(t, s.client.http, path, cli.AccessToken, nil)
			if resp.StatusCode != 200 {
				t.Errorf("thumbnail %d = %d", i, resp.StatusCode)
			}
			bodies[i] = b
		}()
	}
	wg.Wait()
	for i, b := range bodies {
		if !bytes.Equal(b, bodies[0]) {
			t.Fatalf("thumbnail %d differs from the first", i)
		}
	}
	stored := s.rows(t, `SELECT COUNT(*) FROM thumbnails WHERE media_id = $1`, id)
	if made := s.generated(t) - before; made != stored || stored == 0 {
		t.Errorf("%d thumbnails generated over the three instances, %d stored; want each size made once", made, stored)
	}
}

func (s *scaleOut) checkLogout(t *testing.T) {
	cli := s.client.mautrix(t, "alice", "alice-password")
	id, _ := s.upload(t, cli.AccessToken, []byte("logout test"), "text/plain")
	path := "/_matrix/client/v1/media/download/" + serverName + "/" + id
	for range 6 { // round robin: every instance caches the token
		if resp, _ := s.get(t, s.client.http, path, cli.AccessToken, nil); resp.StatusCode != 200 {
			t.Fatalf("before logout = %d", resp.StatusCode)
		}
	}
	if _, err := cli.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	loggedOut := time.Now()
	refused := 0
	for i := 0; i < 6 && time.Since(loggedOut) < 2*time.Second; {
		resp, _ := s.get(t, s.client.http, path, cli.AccessToken, nil)
		if resp.StatusCode == 401 {
			refused++
			i++
		} else {
			refused, i = 0, 0 // start again: every instance must refuse it
			time.Sleep(5 * time.Millisecond)
		}
	}
	if refused < 6 {
		t.Errorf("the logged-out token was still served 2 s after the logout (token cache: 60 s)")
	}
	t.Logf("refused by every instance %s after the logout", time.Since(loggedOut).Round(time.Millisecond))
}

func (s *scaleOut) checkUniqueIDs(t *testing.T) {
	cli := s.client.mautrix(t, "bob", "bob-password")
	ids := make([]string, 60)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, status := s.upload(t, cli.AccessToken, []byte(fmt.Sprintf("upload %d", i)), "text/plain")
			if status != 200 {
				t.Errorf("upload %d = %d", i, status)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, id := range ids {
		if seen[id] {
			t.Errorf("media ID %s handed out twice", id)
		}
		seen[id] = true
		resp, b := s.get(t, s.client.http, "/_matrix/media/v3/download/"+serverName+"/"+id, "", nil)
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("upload %d", i) {
			t.Errorf("media %d = %d %q", i, resp.StatusCode, b)
		}
	}
}

// checkKill kills one instance with SIGKILL while uploads run through the
// proxy: every upload answered 200 is served by the others with its bytes,
// and every row has its object.
func (s *scaleOut) checkKill(t *testing.T) {
	cli := s.client.mautrix(t, "bob", "bob-password")
	victim := s.repos[1]
	var mu sync.Mutex
	answered := map[string][32]byte{}
	var wg sync.WaitGroup
	started := make(chan struct{}, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bytes.Repeat([]byte{byte(i)}, (i+1)*200<<10) // 200 KiB to 6 MiB
			started <- struct{}{}
			// Uploads in flight to the killed instance fail (502 or a closed connection).
			req, _ := http.NewRequest("POST", s.client.baseURL+"/_matrix/media/v3/upload", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+cli.AccessToken)
			resp, err := s.client.http.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var up struct {
				ContentURI string `json:"content_uri"`
			}
			if resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&up) == nil {
				mu.Lock()
				answered[strings.TrimPrefix(up.ContentURI, "mxc://"+serverName+"/")] = sha256.Sum256(body)
				mu.Unlock()
			}
		}()
	}
	for range 10 {
		<-started
	}
	time.Sleep(50 * time.Millisecond)
	syscall.Kill(-victim.cmd.Process.Pid, syscall.SIGKILL)
	wg.Wait()
	if len(answered) == 0 {
		t.Fatal("no upload was answered")
	}
	for id, sum := range answered {
		resp, b := s.get(t, s.client.http, "/_matrix/media/v3/download/"+serverName+"/"+id, "", nil)
		if resp.StatusCode != 200 || sha256.Sum256(b) != sum {
			t.Errorf("answered upload %s after the kill: %d, %d bytes", id, resp.StatusCode, len(b))
		}
	}
	// Every row has its object: read each back through the surviving instances.
	db, err := sql.Open("postgres", s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT media_id, size_bytes FROM media WHERE origin = $1`, serverName)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		var size int
		rows.Scan(&id, &size)
		n++
		resp, b := s.get(t, s.client.http, "/_matrix/media/v3/download/"+serverName+"/"+id, "", nil)
		if resp.StatusCode != 200 || len(b) != size {
			t.Errorf("row %s: download %d, %d bytes of %d", id, resp.StatusCode, len(b), size)
		}
	}
	t.Logf("%d of 30 uploads answered 200 while instance 1 was killed; %d rows, each with its object", len(answered), n)
}

// checkS3Outage stops the S3 server: downloads answer 503 with a Matrix
// error and Retry-After, at once; once it is back they are served again.
func (s *scaleOut) checkS3Outage(t *testing.T) {
	cli := s.client.mautrix(t, "alice", "alice-password")
	body := []byte("stored before the outage")
	id, status := s.upload(t, cli.AccessToken, body, "text/plain")
	if status != 200 {
		t.Fatalf("upload = %d", status)
	}
	legacy := "/_matrix/media/v3/download/" + serverName + "/" + id
	s.s3.Stop()
	start := time.Now()
	resp, b := s.get(t, s.client.http, legacy, "", nil)
	var e struct {
		Errcode string `json:"errcode"`
	}
	json.Unmarshal(b, &e)
	if resp.StatusCode != 503 || e.Errcode == "" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("download with S3 down = %d %s (Retry-After %q); want 503 with a Matrix error and Retry-After",
			resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the 503 took %s", d)
	}
	if _, status := s.upload(t, cli.AccessToken, []byte("during the outage"), "text/plain"); status != 503 {
		t.Errorf("upload with S3 down = %d, want 503", status)
	}
	s.s3.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, b = s.get(t, s.client.http, legacy, "", nil)
		if resp.StatusCode == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp.StatusCode != 200 || !bytes.Equal(b, body) {
		t.Errorf("download after S3 is back = %d %q", resp.StatusCode, b)
	}
}

func mustKey(t *testing.T, version string) *federation.SigningKey {
	k, err := federation.GenerateSigningKey(version)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyOnly serves name's key document at /_matrix/key/v2/server (the
// homeserver's job) and everything else with next, or 404.
func keyOnly(t *testing.T, key *federation.SigningKey, name string, next http.Handler) http.Handler {
	doc, err := key.KeyResponse(name, time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_matrix/key/v2/server" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(doc)
			return
		}
		if next == nil {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// startRemote starts remote.example: its Dendrite, its mediarepo and the
// TLS front the instances under test reach it through.
func startRemote(t *testing.T, bin string, key *federation.SigningKey, localFront *federationtest.Remote) *remoteServer {
	r := &remoteServer{name: remoteName, hs: startDendriteAs(t, remoteName)}
	r.hs.register(t, "carol", "carol-password", false)
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "signing.key")
	os.WriteFile(keyPath, []byte(key.String()), 0o600)
	port := freePort(t)
	cfg := fmt.Sprintf(`
repo: {bindAddress: 127.0.0.1, port: %d, freezeUnauthenticatedMedia: false, logLevel: info}
database: {sqlite: %q}
homeservers: [{name: %s, csApi: "http://127.0.0.1:%d", signingKeyPath: %q}]
federation: {allowedNetworks: ["127.0.0.0/8"], customCAFiles: [%q], serverOverrides: {%s: %q}}
datastores: [{type: file, id: local, forKinds: [all], opts: {path: %q}}]
`, port, filepath.Join(dir, "m.db"), remoteName, r.hs.port, keyPath, localFront.CAFile, serverName,
		localFront.Listener.Addr().String(), filepath.Join(dir, "media"))
	r.repo = startRepoConfig(t, bin, dir, port, cfg)
	target, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	proxy := httputil.NewSingleHostReverseProxy(target)
	r.front = federationtest.Start(t, remoteName, keyOnly(t, key, remoteName, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/_matrix/federation/v1/media/download/") {
			r.downloads.Add(1)
		}
		proxy.ServeHTTP(w, req) // Host stays remote.example
	})))
	return r
}

// upload stores body at the remote as its user carol and returns the media ID.
func (r *remoteServer) upload(t *testing.T, body []byte) string {
	c := &e2eClient{baseURL: fmt.Sprintf("http://127.0.0.1:%d", r.hs.port), http: &http.Client{Timeout: 30 * time.Second}}
	token := c.mautrix(t, "carol", "carol-password").AccessToken
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/_matrix/media/v3/upload", r.repo.port), bytes.NewReader(body))
	req.Host = remoteName
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var up struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload at the remote = %d, %v", resp.StatusCode, err)
	}
	return strings.TrimPrefix(up.ContentURI, "mxc://"+remoteName+"/")
}

// checkRemoteOnce: 50 first downloads of one remote media, spread over the
// three instances by nginx, are one federation request at the remote.
func (s *scaleOut) checkRemoteOnce(t *testing.T) {
	body := bytes.Repeat([]byte("from far away "), 20000)
	id := s.remote.upload(t, body)
	cli := s.client.mautrix(t, "alice", "alice-password")
	path := "/_matrix/client/v1/media/download/" + remoteName + "/" + id
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, b := s.get(t, s.client.http, path, cli.AccessToken, nil)
			if resp.StatusCode != 200 || !bytes.Equal(b, body) {
				t.Errorf("download %d of the remote media = %d, %d bytes", i, resp.StatusCode, len(b))
			}
		}()
	}
	wg.Wait()
	if n := s.remote.downloads.Load(); n != 1 {
		t.Errorf("the remote served %d federation downloads for 50 first requests over three instances, want 1", n)
	}
}
