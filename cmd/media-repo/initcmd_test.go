package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
)

// TestInitThenQuickStart does what the README's quick start does on a fresh
// clone: init writes a config whose printed token uploads, downloads and
// thumbnails docs/quickstart.png with no homeserver running.
func TestInitThenQuickStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "media-repo.yaml")
	var out, errOut bytes.Buffer
	if code := runInit([]string{"-config", path}, &out, &errOut); code != 0 {
		t.Fatalf("init = %d: %s", code, errOut.String())
	}
	m := regexp.MustCompile(`export TOKEN=(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("init printed no token:\n%s", out.String())
	}
	token := m[1]
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config file %v, %v; want mode 0600 (it holds the secret)", fi, err)
	}
	// A second init leaves the file (and its token) alone.
	before, _ := os.ReadFile(path)
	if code := runInit([]string{"-config", path}, io.Discard, io.Discard); code != 0 {
		t.Fatal("second init failed")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a second init rewrote the config")
	}

	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// As make run would, but on a free port and under the temp dir.
	cfg.Repo.Port = 0
	cfg.Database.SQLite = filepath.Join(dir, "data", "media-repo.db")
	cfg.Datastores[0].Opts.Path = filepath.Join(dir, "data", "media")
	log := logrus.New()
	log.SetOutput(io.Discard)
	main := NewMain(cfg, log)
	if err := main.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	base := "http://" + main.Addr()
	pic, err := os.ReadFile("../../docs/quickstart.png")
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, url string, body []byte) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Host = "localhost:8000" // what curl sends to http://localhost:8000
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "image/png")
		return send(t, req)
	}
	resp, body := call("POST", base+"/_matrix/media/v3/upload?filename=quickstart.png", pic)
	var up struct {
		ContentURI string `json:"content_uri"`
	}
	if json.Unmarshal(body, &up); resp.StatusCode != 200 || !strings.HasPrefix(up.ContentURI, "mxc://localhost/") {
		t.Fatalf("upload with the printed token = %d %s", resp.StatusCode, body)
	}
	id := strings.TrimPrefix(up.ContentURI, "mxc://localhost/")
	if resp, body := call("GET", base+"/_matrix/client/v1/media/download/localhost/"+id, nil); resp.StatusCode != 200 || !bytes.Equal(body, pic) {
		t.Errorf("download = %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, body = call("GET", base+"/_matrix/client/v1/media/thumbnail/localhost/"+id+"?width=96&height=96&method=crop", nil)
	img, _, err := image.Decode(bytes.NewReader(body))
	if resp.StatusCode != 200 || err != nil || img.Bounds().Dx() != 96 {
		t.Errorf("thumbnail = %d, %v", resp.StatusCode, err)
	}
}

// matrix-media-repo's config, changed only in where the database and files
// are, starts mediarepo.
func TestMMRConfigStarts(t *testing.T) {
	data, err := os.ReadFile("../../config/testdata/mmr-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := strings.Replace(string(data), `postgres: "postgres://user:pass@localhost/mediarepo?sslmode=disable"`,
		`sqlite: "`+filepath.Join(dir, "m.db")+`"`, 1)
	text = strings.Replace(text, "path: /var/matrix/media", "path: "+filepath.Join(dir, "media"), 1)
	text = strings.Replace(text, "port: 8000", "port: 0", 1)
	path := filepath.Join(dir, "media-repo.yaml")
	os.WriteFile(path, []byte(text), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("does not load: %v", err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	m := NewMain(cfg, log)
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("does not start: %v", err)
	}
	defer m.Close()
	resp, _ := send(t, mustRequest(t, "GET", "http://"+m.Addr()+"/healthz", nil))
	if resp.StatusCode != 200 {
		t.Errorf("healthz = %d", resp.StatusCode)
	}
}
