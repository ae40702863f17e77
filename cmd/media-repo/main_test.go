package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg" // decodes thumbnails
	"image/png"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/homeserver/homeservertest"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

const token = "e2e-token"

// startMain runs the real program on 127.0.0.1:0 with a temp config whose
// database section is db, and returns its base URL.
func startMain(t *testing.T, db string) (*Main, string, *bytes.Buffer) {
	t.Helper()
	return startMainWith(t, db, "")
}

// startMainWith is startMain with more top-level config appended.
func startMainWith(t *testing.T, db, extra string) (*Main, string, *bytes.Buffer) {
	t.Helper()
	fake := homeservertest.WhoAmI(t, map[string]homeservertest.User{token: {UserID: "@e2e:example.org"}})
	dir := t.TempDir()
	path := filepath.Join(dir, "media-repo.yaml")
	yaml := fmt.Sprintf(`
repo: {bindAddress: 127.0.0.1, port: 0, logLevel: debug}
database: %s
homeservers:
  - name: example.org
    csApi: %q
datastores:
  - {type: file, id: disk1, forKinds: [local_media], opts: {path: %q}}
  - {type: file, id: disk2, forKinds: [thumbnails, remote_media], opts: {path: %q}}
`, db, fake.URL, filepath.Join(dir, "media"), filepath.Join(dir, "other")) + extra
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := logrus.New()
	log.SetOutput(logs)
	m := NewMain(cfg, log)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, "http://" + m.Addr(), logs
}

func TestEndToEnd(t *testing.T) {
	dbs := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return fmt.Sprintf("{sqlite: %q}", filepath.Join(t.TempDir(), "m.db")) },
		"postgres": func(t *testing.T) string { return fmt.Sprintf("{postgres: %q}", storagetest.PostgresDSN(t)) },
	}
	for name, db := range dbs {
		t.Run(name, func(t *testing.T) {
			m, base, _ := startMain(t, db(t))
			content := bytes.Repeat([]byte("e2e media bytes "), 4096)

			req := mustRequest(t, "POST", base+"/_matrix/media/v3/upload?filename=report%20final.txt", bytes.NewReader(content))
			req.Header.Set("Content-Type", "text/plain")
			resp, body := send(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("upload = %d %s", resp.StatusCode, body)
			}
			var up struct {
				ContentURI string `json:"content_uri"`
			}
			json.Unmarshal(body, &up)
			id := strings.TrimPrefix(up.ContentURI, "mxc://example.org/")
			dl := base + "/_matrix/client/v1/media/download/example.org/" + id

			resp, body = send(t, mustRequest(t, "GET", dl, nil))
			if resp.StatusCode != 200 || !bytes.Equal(body, content) {
				t.Fatalf("download = %d, %d bytes", resp.StatusCode, len(body))
			}
			h := resp.Header
			for k, want := range map[string]string{
				"Content-Type":                "text/plain",
				"Content-Disposition":         "inline; filename*=utf-8''report%20final.txt",
				"Access-Control-Allow-Origin": "*",
				"X-Content-Type-Options":      "nosniff",
				"Accept-Ranges":               "bytes",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}

			req = mustRequest(t, "GET", dl, nil)
			req.Header.Set("Range", "bytes=16-31")
			resp, body = send(t, req)
			if resp.StatusCode != 206 || string(body) != "e2e media bytes " {
				t.Errorf("ranged = %d %q", resp.StatusCode, body)
			}

			req = mustRequest(t, "GET", dl, nil)
			req.Header.Set("If-None-Match", h.Get("ETag"))
			resp, body = send(t, req)
			if resp.StatusCode != 304 || len(body) != 0 {
				t.Errorf("conditional = %d with %d bytes, want 304 empty", resp.StatusCode, len(body))
			}

			// An image gets thumbnails, stored in the thumbnails datastore.
			img := image.NewNRGBA(image.Rect(0, 0, 300, 200))
			for i := range img.Pix {
				img.Pix[i] = 200 // grey
				if i%4 == 3 {
					img.Pix[i] = 255 // opaque
				}
			}
			var pngData bytes.Buffer
			png.Encode(&pngData, img)
			req = mustRequest(t, "POST", base+"/_matrix/media/v3/upload", &pngData)
			req.Header.Set("Content-Type", "image/png")
			_, body = send(t, req)
			json.Unmarshal(body, &up)
			imgID := strings.TrimPrefix(up.ContentURI, "mxc://example.org/")
			resp, body = send(t, mustRequest(t, "GET", base+"/_matrix/client/v1/media/thumbnail/example.org/"+imgID+"?width=96&height=96&method=crop", nil))
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
				t.Fatalf("thumbnail = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if th, _, err := image.Decode(bytes.NewReader(body)); err != nil || th.Bounds().Dx() != 96 || th.Bounds().Dy() != 96 {
				t.Errorf("thumbnail decodes to %v, %v; want 96x96", th, err)
			}
			// forKinds: uploads went to disk1, thumbnails to disk2.
			if n := countFiles(t, m.Config.Datastores[1].Opts.Path); n == 0 {
				t.Error("no thumbnail in the datastore for thumbnails")
			}
			if n := countFiles(t, m.Config.Datastores[0].Opts.Path); n != 2 {
				t.Errorf("local_media datastore holds %d blobs, want the 2 uploads", n)
			}

			// Frozen by default: the legacy route does not serve it.
			resp, _ = send(t, mustRequest(t, "GET", base+"/_matrix/media/v3/download/example.org/"+id, nil))
			if resp.StatusCode != 404 {
				t.Errorf("legacy download of frozen media = %d, want 404", resp.StatusCode)
			}
		})
	}
}

func TestGracefulShutdown(t *testing.T) {
	m, base, logs := startMain(t, fmt.Sprintf("{sqlite: %q}", filepath.Join(t.TempDir(), "m.db")))
	pr, pw := io.Pipe()
	req := mustRequest(t, "POST", base+"/_matrix/media/v3/upload", pr)
	req.ContentLength = -1
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	pw.Write(bytes.Repeat([]byte("x"), 1<<20))
	// The upload is in flight once the handler streams it into a temp file.
	tmp := filepath.Join(m.Config.Datastores[0].Opts.Path, "tmp")
	for i := 0; ; i++ {
		if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
			break
		}
		if i > 500 {
			t.Fatal("upload never reached the datastore")
		}
		time.Sleep(10 * time.Millisecond)
	}

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	// New connections are refused while the upload in flight continues.
	refused := false
	for range 500 {
		if resp, err := http.Get(base + "/healthz"); err != nil {
			refused = true
			break
		} else {
			resp.Body.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !refused {
		t.Error("new connections still accepted after Close began")
	}
	pw.Write([]byte("second half"))
	pw.Close()
	r := <-done
	if r.err != nil || r.status != 200 {
		t.Errorf("in-flight upload = %d, %v; want 200\n%s", r.status, r.err, logs)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestDefaultSQLite(t *testing.T) {
	t.Chdir(t.TempDir())
	_, base, logs := startMain(t, "{}")
	resp, _ := send(t, mustRequest(t, "GET", base+"/_matrix/client/v1/media/config", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("config = %d", resp.StatusCode)
	}
	if _, err := os.Stat("data/media-repo.db"); err != nil {
		t.Errorf("default database not created: %v", err)
	}
	if !strings.Contains(logs.String(), "using the embedded SQLite default") {
		t.Errorf("start-up log does not say SQLite is the default:\n%s", logs)
	}
}

func TestRunReportsConfigErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	os.WriteFile(path, []byte("repo:\n  useForwaredHost: true\nhomeservers:\n  - {name: example.org, csApi: nope}\n"), 0o600)
	tests := map[string]struct {
		args []string
		env  map[string]string
	}{
		"flag":    {[]string{"-config", path}, nil},
		"env var": {nil, map[string]string{"REPO_CONFIG": path}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &stderr, nil)
			if code != 1 {
				t.Errorf("exit code = %d, want 1", code)
			}
			out := stderr.String()
			for _, want := range []string{
				path + ":2: repo.useForwaredHost: unknown key, did you mean useForwardedHost?",
				"homeservers[0].csApi: must be an absolute http(s) URL",
				"datastores: at least one datastore is required",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("stderr lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// countFiles counts blob files under a datastore, outside its tmp directory.
func countFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "tmp" {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "example.org"
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestRunJSONLogsAndWarnings(t *testing.T) {
	fake := homeservertest.WhoAmI(t, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "media-repo.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`
repo: {port: 0, jsonLogs: true}
database: {sqlite: %q}
homeservers: [{name: example.org, csApi: %q}]
datastores: [{type: file, id: d, forKinds: [all], opts: {path: %q}}]
identicons: {enabled: true}
`, filepath.Join(dir, "m.db"), fake.URL, filepath.Join(dir, "media"))), 0o600)

	stderr := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"-config", path}, func(string) string { return "" }, stderr, nil) }()
	for i := 0; !strings.Contains(stderr.String(), `"msg":"listening"`); i++ {
		if i > 500 {
			t.Fatalf("server did not start:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // as SIGTERM does
	if c := <-code; c != 0 {
		t.Errorf("exit code after shutdown = %d, want 0", c)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	warned := false
	for _, l := range lines {
		var entry map[string]any
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Errorf("log line is not JSON: %q", l)
		}
		if entry["level"] == "warning" && strings.Contains(fmt.Sprint(entry["msg"]), "identicons: matrix-media-repo option not implemented") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning for the unimplemented identicons key:\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Error("shutdown not logged")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))

	got := tuneGC(func(string) string { return "" }, 192<<20)
	if got.percent != defaultGCPercent || got.limit != 384<<20 {
		t.Errorf("defaults = %+v, want %d%% and 384 MiB (the decode budget and the headroom)", got, defaultGCPercent)
	}
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(123 << 20)
	env := map[string]string{"GOGC": "150", "GOMEMLIMIT": "123MiB"}
	got = tuneGC(func(k string) string { return env[k] }, 192<<20)
	if got.percent != 150 || got.limit != 123<<20 {
		t.Errorf("with GOGC and GOMEMLIMIT set = %+v, want them left alone", got)
	}
}

func TestFederationStartupErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	tests := map[string]struct {
		extra string
		want  string
	}{
		"missing signing key": {"", "homeservers[0].signingKeyPath"},
		"bad CA file":         {fmt.Sprintf("federation: {customCAFiles: [%q]}", notPEM), "federation.customCAFiles[0]"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			key := filepath.Join(dir, "missing.key")
			if tt.extra != "" {
				key = ""
			}
			cfg, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
repo: {port: 0}
database: {sqlite: %q}
homeservers: [{name: example.org, csApi: "http://127.0.0.1:1", signingKeyPath: %q}]
datastores: [{type: file, id: d, forKinds: [all], opts: {path: %q}}]
%s
`, filepath.Join(t.TempDir(), "m.db"), key, filepath.Join(t.TempDir(), "media"), tt.extra)))
			if err != nil {
				t.Fatal(err)
			}
			log := logrus.New()
			log.SetOutput(io.Discard)
			m := NewMain(cfg, log)
			err = m.Run(context.Background())
			if err == nil {
				m.Close()
				t.Fatal("Run succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run error = %v, want it to name %s", err, tt.want)
			}
		})
	}
}

func TestShutdownCutsAStalledUpload(t *testing.T) {
	fake := homeservertest.WhoAmI(t, map[string]homeservertest.User{token: {UserID: "@e2e:example.org"}})
	dir := t.TempDir()
	path := filepath.Join(dir, "media-repo.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`
repo: {port: 0}
database: {sqlite: %q}
homeservers: [{name: example.org, csApi: %q}]
datastores: [{type: file, id: d, forKinds: [all], opts: {path: %q}}]
timeouts: {shutdownGraceSeconds: 1}
`, filepath.Join(dir, "m.db"), fake.URL, filepath.Join(dir, "media"))), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMain(cfg, logrus.New())
	m.Log.SetOutput(io.Discard)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	req := mustRequest(t, "POST", "http://"+m.Addr()+"/_matrix/media/v3/upload", pr)
	req.ContentLength = -1
	go http.DefaultClient.Do(req)
	pw.Write(bytes.Repeat([]byte("x"), 1<<16)) // then the client stalls
	tmp := filepath.Join(dir, "media", "tmp")
	for i := 0; ; i++ {
		if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
			break
		}
		if i > 500 {
			t.Fatal("upload never reached the datastore")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close = %v, want a clean shutdown once the grace period is over", err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("the stalled upload left %d temp files", len(entries))
	}
}

func TestRunReportsAnUnopenableDatabase(t *testing.T) {
	fake := homeservertest.WhoAmI(t, nil)
	tests := map[string]struct {
		database string
		want     string
	}{
		"postgres port closed": {`{postgres: "postgres://postgres@127.0.0.1:1/none?sslmode=disable"}`, "database.postgres: connect to postgres"},
		"sqlite under /proc":   {`{sqlite: "/proc/mediarepo/m.db"}`, "database.sqlite:"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "media-repo.yaml")
			os.WriteFile(path, []byte(fmt.Sprintf(`
repo: {port: 0}
database: %s
homeservers: [{name: example.org, csApi: %q}]
datastores: [{type: file, id: d, forKinds: [all], opts: {path: %q}}]
`, tt.database, fake.URL, filepath.Join(dir, "media"))), 0o600)
			var stderr bytes.Buffer
			code := run(context.Background(), []string{"-config", path}, func(string) string { return "" }, &stderr, nil)
			if code != 1 {
				t.Errorf("exit code = %d, want 1", code)
			}
			if out := stderr.String(); !strings.Contains(out, "start-up failed") || !strings.Contains(out, tt.want) || strings.Contains(out, "panic") {
				t.Errorf("stderr does not name the database error (%q):\n%s", tt.want, out)
			}
		})
	}
}
